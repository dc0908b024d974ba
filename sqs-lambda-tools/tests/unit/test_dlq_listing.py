"""`dlq` on an 80-column terminal: why each message failed, readable, not cut to `failure_rea…`.

The queue is moto's; the command's console is given the terminal's width.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws
from rich.console import Console
from typer.testing import CliRunner, Result

from sqs_lambda_tools import queues_cli
from sqs_lambda_tools.cli import app
from sqs_lambda_tools.endpoint import Endpoint
from sqs_lambda_tools.project import Project

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import SendMessageRequestTypeDef

pytestmark = pytest.mark.unit

LONG_REASON = (
    "1 validation error for Order: userId: String should have at most 64 characters "
    "[type=string_too_long, input_type=str]"
)
FAILURE_TYPE = "SchemaValidationError"
# The id the function logged: the source queue's, not the DLQ copy's.
SOURCE_MESSAGE_ID = str(uuid.uuid4())


@pytest.fixture(params=["standard", "fifo"])
def project(request: pytest.FixtureRequest, make_sample_project: Callable[..., Project]) -> Project:
    """GIVEN a copy of the sample project, with standard or FIFO queues, the current one."""
    return make_sample_project(fifo=request.param == "fifo", name=f"sample-{request.param}")


@pytest.fixture
def dlq_url(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """GIVEN the project's DLQ in moto, where the commands reach "AWS"."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", project.region)
    with mock_aws():
        sqs: SQSClient = boto3.client("sqs", region_name=project.region)
        attributes: dict[QueueAttributeNameType, str] = (
            {"FifoQueue": "true"} if project.queue.fifo else {}
        )
        yield sqs.create_queue(QueueName=project.dlq.name, Attributes=attributes)["QueueUrl"]


def dead_letter(project: Project, url: str, reason: str) -> str:
    """A poison message on the DLQ, as a handler leaves one: with why it failed."""
    request: SendMessageRequestTypeDef = {
        "QueueUrl": url,
        "MessageBody": '{"orderId": "o-1", "userId": "' + "x" * 300 + '"}',
        "MessageAttributes": {
            "failure_reason": {"DataType": "String", "StringValue": reason},
            "failure_type": {"DataType": "String", "StringValue": FAILURE_TYPE},
            "source_message_id": {"DataType": "String", "StringValue": SOURCE_MESSAGE_ID},
            "source_receive_count": {"DataType": "Number", "StringValue": "1"},
        },
    }
    if project.queue.fifo:
        request["MessageGroupId"] = "u-1"
        request["MessageDeduplicationId"] = uuid.uuid4().hex
    sqs: SQSClient = boto3.client("sqs", region_name=project.region)
    return sqs.send_message(**request)["MessageId"]


def dlq_at(columns: int, monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.setattr(queues_cli, "console", Console(width=columns, soft_wrap=True))
    monkeypatch.setattr(
        queues_cli,
        "resolve_endpoint",
        lambda *, aws=False, project=None: Endpoint(url=None, source="aws"),
    )
    return CliRunner().invoke(app, ["dlq"])


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("columns", [80, 120])
def test_the_failure_reason_is_whole_at_the_terminals_width(
    project: Project, dlq_url: str, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    message_id = dead_letter(project, dlq_url, LONG_REASON)

    result = dlq_at(columns, monkeypatch)

    assert result.exit_code == 0, result.output
    assert max(len(line.rstrip()) for line in result.stdout.splitlines()) <= columns
    assert "failure_reason" in result.stdout
    assert FAILURE_TYPE in result.stdout
    assert SOURCE_MESSAGE_ID in result.stdout
    assert message_id not in result.stdout
    if columns == 80:  # one block per message: the reason's lines follow each other
        assert words(LONG_REASON) in words(result.stdout)
    else:  # a table: the reason wraps in its column, beside the others
        for word in LONG_REASON.split():
            assert word in result.stdout
    assert "failure_rea…" not in result.stdout
    # A FIFO DLQ's listing names each message's group.
    assert ("group" in result.stdout) is project.queue.fifo
