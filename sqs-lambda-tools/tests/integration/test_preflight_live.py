"""`preflight --live` on the emulator: queues, a function and its mappings created broken
raise the rules they break; a sound set passes.

Only configurations AWS itself accepts are created, so the tests hold on any endpoint
(MiniStack, moto server, LocalStack, AWS): a mapping AWS refuses (a FIFO batch of 20, a
batch of 50 without a window, a visibility timeout below the function timeout) or a FIFO
queue with a standard DLQ is tested from IaC instead (tests/unit/test_preflight_sources.py).
The function's role is created in IAM, in the account STS names. An emulator's own event
source mapping may run the stub function: harmless, the queues stay empty.
"""

from __future__ import annotations

import io
import json
import os
import re
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError
from typer.testing import CliRunner

from sqs_lambda_tools.cli import app
from sqs_lambda_tools.endpoint import Endpoint
from sqs_lambda_tools.preflight import live
from sqs_lambda_tools.preflight.rules import evaluate
from sqs_lambda_tools.project import Project

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_lambda.literals import RuntimeType
    from mypy_boto3_sqs.literals import QueueAttributeNameType

pytestmark = pytest.mark.integration

# A stub the emulator can run: every batch succeeds.
HANDLER_SOURCE = "def handler(event, context):\n    return {'batchItemFailures': []}\n"
# Lambda assumes the function's role: the trust policy every execution role has.
LAMBDA_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
RUNTIME: RuntimeType = "python3.12"
PARTIAL = ["ReportBatchItemFailures"]


@dataclass
class Stack:
    """What one test created, deleted afterwards."""

    clients: live.Clients
    iam: IAMClient
    prefix: str = field(default_factory=lambda: f"pf-{uuid.uuid4().hex[:8]}")
    queue_urls: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)

    def role(self, *, may_send_to: str | None = None) -> str:
        """Create the functions' execution role (in the caller's account, as STS says);
        ``may_send_to``: a queue ARN it may send to (AWS checks that permission when a
        function names a DeadLetterConfig). Its ARN."""
        name = f"{self.prefix}-role"
        arn = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST_POLICY)[
            "Role"
        ]["Arn"]
        self.roles.append(name)
        if may_send_to is not None:
            self.iam.put_role_policy(
                RoleName=name,
                PolicyName="dead-letter",
                PolicyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "sqs:SendMessage",
                                "Resource": may_send_to,
                            }
                        ],
                    }
                ),
            )
        return arn

    def queue(self, name: str, **settings: str) -> str:
        """Create a queue with these attributes; its ARN."""
        attributes: dict[QueueAttributeNameType, str] = {}
        if name.endswith(".fifo"):
            attributes["FifoQueue"] = "true"
        for attribute, value in settings.items():
            attributes[attribute] = value  # type: ignore[index]
        url = self.clients.sqs.create_queue(
            QueueName=f"{self.prefix}-{name}", Attributes=attributes
        )["QueueUrl"]
        self.queue_urls.append(url)
        arn = self.clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return arn["Attributes"]["QueueArn"]

    def function(self, name: str, *, role: str | None = None, **settings: Any) -> str:
        """Create a function running the stub, with ``role`` (default: a new role of its
        own); its name."""
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("stub.py", HANDLER_SOURCE)
        function_name = f"{self.prefix}-{name}"
        self.clients.lambda_.create_function(
            FunctionName=function_name,
            Runtime=RUNTIME,
            Role=role or self.role(),
            Handler="stub.handler",
            Code={"ZipFile": archive.getvalue()},
            **settings,
        )
        self.functions.append(function_name)
        return function_name

    def reports_encryption(self, queue_arn: str) -> bool:
        """Whether the endpoint reports SqsManagedSseEnabled for the queue (AWS does)."""
        url = self.queue_urls[
            [u.rsplit("/", 1)[-1] for u in self.queue_urls].index(queue_arn.rsplit(":", 1)[-1])
        ]
        attributes = self.clients.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["SqsManagedSseEnabled"]
        ).get("Attributes", {})
        return "SqsManagedSseEnabled" in attributes

    def map(self, queue_arn: str, function_name: str, **settings: Any) -> None:
        self.clients.lambda_.create_event_source_mapping(
            EventSourceArn=queue_arn, FunctionName=function_name, **settings
        )

    def alarm_on(self, queue_arn: str) -> None:
        name = f"{self.prefix}-dlq-not-empty"
        self.clients.cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/SQS",
            MetricName="ApproximateNumberOfMessagesVisible",
            Dimensions=[{"Name": "QueueName", "Value": queue_arn.rsplit(":", 1)[-1]}],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )
        self.alarms.append(name)

    def delete(self) -> None:
        lambda_ = self.clients.lambda_
        for name in self.functions:
            with suppress(BotoCoreError, ClientError):
                mappings = lambda_.list_event_source_mappings(FunctionName=name)
                for mapping in mappings["EventSourceMappings"]:
                    lambda_.delete_event_source_mapping(UUID=mapping["UUID"])
            with suppress(BotoCoreError, ClientError):
                lambda_.delete_function(FunctionName=name)
        for url in self.queue_urls:
            with suppress(BotoCoreError, ClientError):
                self.clients.sqs.delete_queue(QueueUrl=url)
        if self.alarms:
            with suppress(BotoCoreError, ClientError):
                self.clients.cloudwatch.delete_alarms(AlarmNames=self.alarms)
        for name in self.roles:
            with suppress(BotoCoreError, ClientError):
                for policy in self.iam.list_role_policies(RoleName=name)["PolicyNames"]:
                    self.iam.delete_role_policy(RoleName=name, PolicyName=policy)
                self.iam.delete_role(RoleName=name)


@pytest.fixture
def stack(sqsl_emulator: Endpoint, sqsl_project: Project) -> Iterator[Stack]:
    clients = live.Clients.for_endpoint(sqsl_emulator, sqsl_project.region)
    created = Stack(clients, iam=iam_client(sqsl_emulator, sqsl_project.region))
    yield created
    created.delete()


@pytest.fixture
def at_the_emulator(sqsl_emulator: Endpoint, monkeypatch: pytest.MonkeyPatch) -> Endpoint:
    """The CLI's endpoint is the test emulator (AWS_ENDPOINT_URL)."""
    for name, value in sqsl_emulator.environment().items():
        monkeypatch.setenv(name, value)
    return sqsl_emulator


def iam_client(endpoint: Endpoint, region: str) -> IAMClient:
    """IAM at ``endpoint``, with the credentials :meth:`live.Clients.for_endpoint` uses."""
    environment = endpoint.environment()
    return boto3.client(
        "iam",
        region_name=os.environ.get("AWS_DEFAULT_REGION", region),
        endpoint_url=endpoint.url,
        aws_access_key_id=environment.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=environment.get("AWS_SECRET_ACCESS_KEY"),
    )


def redrive(dlq_arn: str, count: int) -> str:
    return json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": count})


def rules_fired(stack: Stack, function_name: str) -> set[tuple[str, str]]:
    deployment = live.load(function_name, stack.clients, "the emulator")
    return {(finding.rule, finding.severity) for finding in evaluate(deployment)}


def sound(stack: Stack) -> str:
    """GIVEN the pattern done right on the emulator; the function's name."""
    dlq = stack.queue("dlq", MessageRetentionPeriod="1209600", SqsManagedSseEnabled="true")
    source = stack.queue(
        "orders",
        VisibilityTimeout="180",
        MessageRetentionPeriod="345600",
        SqsManagedSseEnabled="true",
        RedrivePolicy=redrive(dlq, 5),
    )
    stack.alarm_on(dlq)
    function = stack.function("consumer", Timeout=30)
    stack.map(
        source,
        function,
        BatchSize=10,
        FunctionResponseTypes=PARTIAL,
        ScalingConfig={"MaximumConcurrency": 5},
    )
    return function


def test_a_sound_deployment_passes(stack: Stack) -> None:
    assert rules_fired(stack, sound(stack)) == set()


def test_a_standard_queue_created_broken_raises_its_rules(stack: Stack) -> None:
    # GIVEN a DLQ that keeps messages 60 s, with SSE-SQS turned off; a queue that hides
    # messages for twice the function timeout (not 6 x) and dead-letters on the first
    # failure; a function with 2 reserved and a function-level DLQ; a mapping without
    # partial batch responses that may run 5 at once. AWS accepts every one of these.
    dlq = stack.queue("dlq", MessageRetentionPeriod="60", SqsManagedSseEnabled="false")
    source = stack.queue(
        "orders", VisibilityTimeout="60", SqsManagedSseEnabled="true", RedrivePolicy=redrive(dlq, 1)
    )
    function = stack.function(
        "consumer",
        role=stack.role(may_send_to=dlq),
        Timeout=30,
        DeadLetterConfig={"TargetArn": dlq},
    )
    stack.clients.lambda_.put_function_concurrency(
        FunctionName=function, ReservedConcurrentExecutions=2
    )
    stack.map(source, function, BatchSize=10, ScalingConfig={"MaximumConcurrency": 5})

    expected = {
        ("SQSL001", "warning"),  # visibility 60 s < 6 x timeout 30 s
        ("SQSL004", "error"),  # DLQ retention 60 s <= 345600 s
        ("SQSL005", "error"),  # maxReceiveCount 1 with reserved concurrency
        ("SQSL006", "error"),  # no ReportBatchItemFailures
        ("SQSL007", "error"),  # MaximumConcurrency 5 > reserved 2
        ("SQSL010", "warning"),  # function-level DeadLetterConfig
        ("SQSL012", "warning"),  # no alarm on the DLQ
    }
    if stack.reports_encryption(dlq):
        # AWS reports SqsManagedSseEnabled on every queue; an emulator may leave it out,
        # and a queue that says nothing is not a finding.
        expected.add(("SQSL011", "warning"))  # the DLQ turns SSE-SQS off
    assert rules_fired(stack, function) == expected


def test_fifo_and_unprotected_queues_created_broken_raise_their_rules(stack: Stack) -> None:
    # GIVEN a FIFO queue done right, and a second queue with no DLQ and no concurrency
    # cap, both mapped to one function. (A FIFO queue with a standard DLQ, SQSL003, and a
    # FIFO batch above 10, SQSL009, are refused by AWS: they are tested from IaC.)
    dlq = stack.queue("dlq.fifo", MessageRetentionPeriod="1209600", SqsManagedSseEnabled="true")
    fifo = stack.queue(
        "orders.fifo",
        VisibilityTimeout="180",
        SqsManagedSseEnabled="true",
        RedrivePolicy=redrive(dlq, 5),
    )
    stack.alarm_on(dlq)
    plain = stack.queue("audit", VisibilityTimeout="180", SqsManagedSseEnabled="true")
    function = stack.function("consumer", Timeout=30)
    stack.map(
        fifo,
        function,
        BatchSize=10,
        FunctionResponseTypes=PARTIAL,
        ScalingConfig={"MaximumConcurrency": 2},
    )
    stack.map(plain, function, FunctionResponseTypes=PARTIAL)

    assert rules_fired(stack, function) == {
        ("SQSL002", "error"),  # the audit queue has no redrive policy
        ("SQSL007", "warning"),  # the audit mapping has no cap
    }


def test_the_cli_checks_a_live_function_at_the_endpoint(
    stack: Stack, at_the_emulator: Endpoint
) -> None:
    function = sound(stack)

    result = CliRunner().invoke(
        app, ["preflight", "--live", "--function-name", function, "--format", "json"]
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["findings"] == []
    assert report["sources"] == [f"live: {function} at {at_the_emulator.url}"]


@pytest.mark.usefixtures("at_the_emulator")
def test_an_unknown_function_is_unusable_input() -> None:
    result = CliRunner().invoke(app, ["preflight", "--live", "--function-name", "no-such-fn"])

    assert result.exit_code == 2
    assert "no function named 'no-such-fn'" in result.stderr
    assert "check the name given to --function-name" in result.stderr


def set_key(section: str, key: str, value: str) -> Callable[[str], str]:
    """An edit of the sample project's pyproject.toml: ``key = value`` in ``[section]``."""

    def edit(text: str) -> str:
        header = f"[{section}]\n"
        before, found, after = text.partition(header)
        assert found, f"no [{section}] in the sample project"
        body, next_header, rest = after.partition("\n[")
        body = re.sub(rf"^{key} = .*$", f"{key} = {value}", body, flags=re.MULTILINE)
        if f"{key} = " not in body:
            body += f"\n{key} = {value}"
        return before + header + body + next_header + rest

    return edit


def edits(*changes: Callable[[str], str]) -> Callable[[str], str]:
    def edit(text: str) -> str:
        for change in changes:
            text = change(text)
        return text

    return edit


@pytest.mark.usefixtures("at_the_emulator")
@pytest.mark.parametrize(
    ("kind", "advice"),
    [
        ("sam", "`sqsl deploy-local` deploys this project's SAM stack to the emulator"),
        ("cdk", "`sqsl deploy-local` synthesizes this project's CDK app"),
        ("terraform", "`sqsl down`, `sqsl up --bare` (an emulator with nothing in it)"),
        ("none", "deploy the function to the emulator yourself"),
    ],
)
def test_live_before_a_deploy_says_nothing_is_deployed_and_how_to_deploy(
    make_sample_project: Callable[..., Project], kind: str, advice: str
) -> None:
    """Right after `sqsl up`: queues and tables, and no function yet."""
    missing = f"sample-orders-{uuid.uuid4().hex[:8]}"  # surely not deployed here
    make_sample_project(
        edit=edits(
            set_key("tool.sqsl.function", "name", f'"{missing}"'),
            set_key("tool.sqsl.iac", "kind", f'"{kind}"'),
            set_key("tool.sqsl.iac", "cdk_app", '"sample_infra.app"'),
            set_key("tool.sqsl.iac", "path", '"infra/terraform"' if kind == "terraform" else '"x"'),
        )
    )

    result = CliRunner().invoke(app, ["preflight", "--live"])

    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert f"no function named '{missing}': nothing is deployed there yet" in message
    assert advice in message
    if kind == "terraform":
        assert "apply infra/terraform there with tflocal" in message


@pytest.mark.usefixtures("at_the_emulator")
def test_live_compares_the_projects_deployed_function_with_its_settings(
    stack: Stack, make_sample_project: Callable[..., Project]
) -> None:
    # GIVEN the sound deployment, deployed as the project's (its names, its handler), with
    # more memory than the settings say
    function = sound(stack)
    stack.clients.lambda_.update_function_configuration(FunctionName=function, MemorySize=512)
    make_sample_project(
        edit=edits(
            set_key("tool.sqsl.function", "name", f'"{function}"'),
            set_key("tool.sqsl.function", "handler", '"stub.handler"'),
            set_key("tool.sqsl.function", "runtime", f'"{RUNTIME}"'),
            set_key("tool.sqsl.function", "architecture", '"x86_64"'),
            set_key("tool.sqsl.queue", "name", f'"{stack.prefix}-orders"'),
            set_key("tool.sqsl.dlq", "name", f'"{stack.prefix}-dlq"'),
            set_key("tool.sqsl.dlq", "max_receive_count", "5"),
        )
    )

    result = CliRunner().invoke(app, ["preflight", "--live", "--format", "json"])

    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert [
        (finding["rule"], finding["message"].split(":")[0]) for finding in report["findings"]
    ] == [("SQSL013", "pyproject.toml [tool.sqsl.function] memory is 256, the deployment says 512")]
