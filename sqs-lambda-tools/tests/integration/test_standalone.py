"""The tools on a Lambda project they have never seen: a handler module and a SAM
template.yaml written here, not rendered from the template, once with a [tool.sqsl]
table and once without one (the settings then come from the template). The installed
`sqsl` runs on each, in a process of its own: `up` provisions its queues and table on
the session's emulator, `run --until-empty` processes what `send` sent, `invoke` runs an
event file, `preflight` checks the template.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from sqs_lambda_tools.endpoint import Endpoint

pytestmark = pytest.mark.integration

# SAM's own layout (`sam init`): the function's folder is its CodeUri, the handler a
# module in it.
HANDLER = '''\
"""Records each event's id in a table; a body without one is reported failed."""

import json
import os

import boto3


def lambda_handler(event, context):
    table = os.environ["EVENTS_TABLE"]
    dynamodb = boto3.client("dynamodb")
    failures = []
    for record in event["Records"]:
        try:
            event_id = json.loads(record["body"])["id"]
        except (ValueError, KeyError, TypeError):
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        dynamodb.put_item(TableName=table, Item={"id": {"S": str(event_id)}})
    return {"batchItemFailures": failures}
'''

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Dlq:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: {name}-dlq
      MessageRetentionPeriod: 1209600
      SqsManagedSseEnabled: true
  Events:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: {name}
      VisibilityTimeout: 60
      SqsManagedSseEnabled: true
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Dlq.Arn
        maxReceiveCount: 2
  EventsTable:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: {name}-events
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - AttributeName: id
          AttributeType: S
      KeySchema:
        - AttributeName: id
          KeyType: HASH
  Recorder:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: {name}
      CodeUri: recorder/
      Handler: app.lambda_handler
      Runtime: python3.13
      Architectures: [arm64]
      Timeout: 10
      Environment:
        Variables:
          EVENTS_TABLE: !Ref EventsTable
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt Events.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: 2
"""

# The same settings, declared: what a project that wants its settings in one table writes.
SETTINGS = """\
[project]
name = "{name}"
version = "0.1.0"

[tool.sqsl.function]
name = "{name}"
handler = "app.lambda_handler"
code = "recorder"
runtime = "python3.13"
architecture = "arm64"
timeout = 10

[tool.sqsl.function.environment]
EVENTS_TABLE = "{{tables.events}}"

[tool.sqsl.mapping]
batch_size = 5
maximum_concurrency = 2

[tool.sqsl.queue]
name = "{name}"
visibility_timeout = 60

[tool.sqsl.dlq]
name = "{name}-dlq"
max_receive_count = 2

[tool.sqsl.tables.events]
name = "{name}-events"
key = "id"

[tool.sqsl.iac]
kind = "sam"
"""


@dataclass(frozen=True)
class Standalone:
    root: Path
    name: str
    endpoint: Endpoint

    def sqsl(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The installed `sqsl`, run in the project's folder, at the session's emulator."""
        executable = Path(sys.executable).with_name("sqsl")
        command = (
            [str(executable)] if executable.exists() else [sys.executable, "-m", "sqs_lambda_tools"]
        )
        environment = {
            key: value
            for key, value in os.environ.items()
            if key != "SQSL_PROJECT" and not key.startswith("AWS_")
        }
        environment.update(self.endpoint.environment(), COLUMNS="200")
        result = subprocess.run(
            [*command, "--project", str(self.root), *arguments],
            cwd=self.root,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check:
            assert result.returncode == 0, (
                f"sqsl {' '.join(arguments)}:\n{result.stdout}{result.stderr}"
            )
        return result

    def recorded(self) -> set[str]:
        items = self.endpoint.dynamodb().scan(TableName=f"{self.name}-events")["Items"]
        return {item["id"]["S"] for item in items}

    def dead_letters(self) -> list[str]:
        sqs = self.endpoint.sqs()
        url = sqs.get_queue_url(QueueName=f"{self.name}-dlq")["QueueUrl"]
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [message["Body"] for message in messages.get("Messages", [])]

    def delete(self) -> None:
        sqs, dynamodb = self.endpoint.sqs(), self.endpoint.dynamodb()
        for queue in (self.name, f"{self.name}-dlq"):
            with suppress(BotoCoreError, ClientError):
                sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"])
        with suppress(BotoCoreError, ClientError):
            dynamodb.delete_table(TableName=f"{self.name}-events")


@pytest.fixture(params=["with a settings table", "without a settings table"])
def standalone(
    request: pytest.FixtureRequest, tmp_path: Path, sqsl_emulator: Endpoint
) -> Iterator[Standalone]:
    """GIVEN a Lambda project written by hand: recorder/app.py and template.yaml, and a
    pyproject.toml with [tool.sqsl] or no pyproject.toml at all."""
    name = f"standalone-{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    (root / "recorder").mkdir(parents=True)
    (root / "recorder" / "app.py").write_text(HANDLER, encoding="utf-8")
    (root / "template.yaml").write_text(TEMPLATE.format(name=name), encoding="utf-8")
    if request.param == "with a settings table":
        (root / "pyproject.toml").write_text(SETTINGS.format(name=name), encoding="utf-8")
    project = Standalone(root=root, name=name, endpoint=sqsl_emulator)
    yield project
    project.delete()
    shutil.rmtree(root / ".local", ignore_errors=True)


def test_run_processes_what_was_sent_and_dead_letters_the_poison(standalone: Standalone) -> None:
    standalone.sqsl("up")
    messages = standalone.root / "messages.jsonl"
    messages.write_text('{"id": "e-1"}\n{"id": "e-2"}\nnot an event\n', encoding="utf-8")
    standalone.sqsl("send", "--file", str(messages), "--raw")

    # A failed message is retried at once (--retry-after 0) until its redrive policy
    # (maxReceiveCount 2) moves it to the DLQ.
    result = standalone.sqsl("run", "--until-empty", "--retry-after", "0")

    assert standalone.recorded() == {"e-1", "e-2"}, result.stdout
    assert standalone.dead_letters() == ["not an event"]


def test_invoke_runs_an_event_file_against_the_emulators_table(standalone: Standalone) -> None:
    standalone.sqsl("up")
    event = standalone.root / "event.json"
    records = [
        {"messageId": message_id, "body": body, "receiptHandle": "r", "eventSource": "aws:sqs"}
        for message_id, body in (("m-1", '{"id": "e-3"}'), ("m-2", "{"))
    ]
    event.write_text(json.dumps({"Records": records}), encoding="utf-8")

    result = standalone.sqsl("invoke", str(event))

    response = json.loads(result.stdout[result.stdout.index("{") :])
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    assert standalone.recorded() == {"e-3"}


def test_preflight_checks_the_template(standalone: Standalone) -> None:
    result = standalone.sqsl("preflight", "--format", "json", check=False)

    report = json.loads(result.stdout)
    assert report["sources"] == [str(standalone.root / "template.yaml")]
    # No error: the table, when there is one, agrees with the template (SQSL013); the
    # only finding is that no alarm watches the DLQ.
    assert result.returncode == 0, result.stderr
    assert [finding["rule"] for finding in report["findings"]] == ["SQSL012"]


@pytest.mark.parametrize("standalone", ["with a settings table"], indirect=True)
def test_a_table_that_disagrees_with_the_template_is_reported(standalone: Standalone) -> None:
    pyproject = standalone.root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8").replace("batch_size = 5", "batch_size = 10"),
        encoding="utf-8",
    )

    result = standalone.sqsl("preflight", "--format", "json", check=False)

    assert result.returncode == 1
    findings = json.loads(result.stdout)["findings"]
    [drift] = [finding["message"] for finding in findings if finding["rule"] == "SQSL013"]
    assert drift.startswith(
        "pyproject.toml [tool.sqsl.mapping] batch_size is 10, template.yaml says 5:"
    )
