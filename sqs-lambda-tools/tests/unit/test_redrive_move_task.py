"""`redrive` by StartMessageMoveTask, the way real SQS does it, with no network.

The emulator has no StartMessageMoveTask, so the integration tests only see the
receive/send/delete fallback. Here botocore's ``Stubber`` answers for SQS: the command
resolves its endpoint (``resolve_endpoint``) and gets a client from it
(``Endpoint.sqs``); both are patched to hand it the stubbed client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner, Result

from sqs_lambda_tools import queues_cli
from sqs_lambda_tools.cli import app
from sqs_lambda_tools.endpoint import Endpoint
from sqs_lambda_tools.project import Project

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.unit

REGION = "us-east-1"
SOURCE = "orders"
DLQ = "orders-dlq"
SOURCE_URL = f"https://sqs.{REGION}.amazonaws.com/123456789012/{SOURCE}"
DLQ_URL = f"https://sqs.{REGION}.amazonaws.com/123456789012/{DLQ}"
SOURCE_ARN = f"arn:aws:sqs:{REGION}:123456789012:{SOURCE}"
DLQ_ARN = f"arn:aws:sqs:{REGION}:123456789012:{DLQ}"
TASK_HANDLE = "task-handle-1"


@pytest.fixture
def sqs(sample_project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """GIVEN an SQS client whose answers the test lists, handed to every command (of the
    sample project, on the queues each test names)."""
    client: SQSClient = boto3.client(
        "sqs",
        region_name=sample_project.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    endpoint = Endpoint(url="http://stubbed.invalid", source="AWS_ENDPOINT_URL")
    monkeypatch.setattr(queues_cli, "resolve_endpoint", lambda *, aws=False, project=None: endpoint)
    monkeypatch.setattr(Endpoint, "sqs", lambda self: client)
    monkeypatch.setattr(queues_cli, "MOVE_TASK_POLL_SECONDS", 0)
    with Stubber(client) as stubber:
        yield stubber


def given_queues(sqs: Stubber, *, dlq_depth: int) -> None:
    """The lookups before the move task: both URLs, the DLQ's depth, both ARNs."""
    sqs.add_response("get_queue_url", {"QueueUrl": SOURCE_URL}, {"QueueName": SOURCE})
    sqs.add_response("get_queue_url", {"QueueUrl": DLQ_URL}, {"QueueName": DLQ})
    sqs.add_response(
        "get_queue_attributes",
        {
            "Attributes": {
                "ApproximateNumberOfMessages": str(dlq_depth),
                "ApproximateNumberOfMessagesNotVisible": "0",
            }
        },
        {
            "QueueUrl": DLQ_URL,
            "AttributeNames": [
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        },
    )
    given_arn(sqs, DLQ_URL, DLQ_ARN)
    given_arn(sqs, SOURCE_URL, SOURCE_ARN)


def given_arn(sqs: Stubber, url: str, arn: str) -> None:
    sqs.add_response(
        "get_queue_attributes",
        {"Attributes": {"QueueArn": arn}},
        {"QueueUrl": url, "AttributeNames": ["QueueArn"]},
    )


def given_task(sqs: Stubber, status: str, moved: int, to_move: int, **extra: Any) -> None:
    """One answer of ListMessageMoveTasks: the newest task on the DLQ."""
    sqs.add_response(
        "list_message_move_tasks",
        {
            "Results": [
                {
                    "TaskHandle": TASK_HANDLE,
                    "Status": status,
                    "SourceArn": DLQ_ARN,
                    "DestinationArn": SOURCE_ARN,
                    "ApproximateNumberOfMessagesMoved": moved,
                    "ApproximateNumberOfMessagesToMove": to_move,
                    **extra,
                }
            ]
        },
        {"SourceArn": DLQ_ARN, "MaxResults": 1},
    )


def given_a_started_move_task(sqs: Stubber, *, dlq_depth: int) -> None:
    """StartMessageMoveTask from the DLQ back to the source queue, then the task's polls."""
    given_queues(sqs, dlq_depth=dlq_depth)
    sqs.add_response(
        "start_message_move_task",
        {"TaskHandle": TASK_HANDLE},
        {"SourceArn": DLQ_ARN, "DestinationArn": SOURCE_ARN},
    )
    given_arn(sqs, DLQ_URL, DLQ_ARN)


def redrive(*args: str) -> Result:
    return CliRunner().invoke(
        app, ["redrive", "--source-queue", SOURCE, "--dead-letter-queue", DLQ, *args]
    )


@pytest.mark.parametrize("method", ["auto", "move-task"])
def test_redrive_starts_a_move_task_from_the_dlq_and_waits_until_it_completes(
    sqs: Stubber, method: str
) -> None:
    # GIVEN three messages in the DLQ, and a move task that takes three polls to finish
    given_a_started_move_task(sqs, dlq_depth=3)
    given_task(sqs, "RUNNING", 0, 3)
    given_task(sqs, "RUNNING", 2, 3)
    given_task(sqs, "COMPLETED", 3, 3)

    # WHEN redrive runs
    result = redrive("--method", method)

    # THEN it moved them by StartMessageMoveTask (the stubbed parameters checked the ARNs)
    # and stopped polling once the task completed
    assert result.exit_code == 0, result.output
    assert f"Moved 3 messages from {DLQ} to {SOURCE} by StartMessageMoveTask." in result.stdout
    sqs.assert_no_pending_responses()


def test_the_moved_count_is_the_tasks_own(sqs: Stubber) -> None:
    # GIVEN a DLQ that held 4 when asked, of which the task moved 5 (one arrived meanwhile)
    given_a_started_move_task(sqs, dlq_depth=4)
    given_task(sqs, "COMPLETED", 5, 5)

    result = redrive()

    assert result.exit_code == 0, result.output
    assert "Moved 5 messages" in result.stdout
    assert "by StartMessageMoveTask" in result.stdout
    sqs.assert_no_pending_responses()


def test_a_failed_move_task_is_reported_with_exit_status_1(sqs: Stubber) -> None:
    given_a_started_move_task(sqs, dlq_depth=3)
    given_task(sqs, "RUNNING", 1, 3)
    given_task(sqs, "FAILED", 1, 3, FailureReason="AWS.SimpleQueueService.AccessDenied")

    result = redrive("--method", "move-task")

    assert result.exit_code == 1, result.output
    assert "the message move task ended FAILED" in result.stderr
    assert "AccessDenied" in result.stderr
    assert "1 moved" in result.stderr
    assert "Moved" not in result.stdout
    sqs.assert_no_pending_responses()


def test_an_empty_dlq_starts_no_move_task(sqs: Stubber) -> None:
    sqs.add_response("get_queue_url", {"QueueUrl": SOURCE_URL}, {"QueueName": SOURCE})
    sqs.add_response("get_queue_url", {"QueueUrl": DLQ_URL}, {"QueueName": DLQ})
    sqs.add_response(
        "get_queue_attributes",
        {
            "Attributes": {
                "ApproximateNumberOfMessages": "0",
                "ApproximateNumberOfMessagesNotVisible": "0",
            }
        },
    )

    result = redrive()

    assert result.exit_code == 0, result.output
    assert "nothing to move" in result.stdout
    sqs.assert_no_pending_responses()  # and no StartMessageMoveTask was called


@pytest.mark.parametrize(
    ("code", "status", "said"),
    [
        ("InternalFailure", 500, "StartMessageMoveTask failed"),
        ("InvalidAction", 400, "no StartMessageMoveTask on this endpoint"),
    ],
)
def test_a_move_task_that_cannot_start_falls_back_to_receive_send_delete(
    sqs: Stubber, monkeypatch: pytest.MonkeyPatch, code: str, status: int, said: str
) -> None:
    # GIVEN an endpoint that answers StartMessageMoveTask with an error that is not about
    # permissions (moto server's 500; MiniStack's unknown action)
    given_queues(sqs, dlq_depth=3)
    sqs.add_client_error(
        "start_message_move_task",
        service_error_code=code,
        service_message="not this time",
        http_status_code=status,
    )
    resent: list[int] = []

    def resend(queues: object, progress: object, expected: int) -> tuple[int, int]:
        resent.append(expected)
        return expected, 0

    monkeypatch.setattr(queues_cli, "_resend", resend)

    result = redrive()

    # THEN it moves them by receive/send/delete, and says which path it took and why
    assert result.exit_code == 0, result.output
    assert resent == [3]
    assert f"Moved 3 messages from {DLQ} to {SOURCE} by receive/send/delete ({said}:" in (
        result.stdout
    )
    sqs.assert_no_pending_responses()


def test_a_move_task_refused_for_permissions_is_reported_not_gone_around(
    sqs: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    given_queues(sqs, dlq_depth=3)
    sqs.add_client_error(
        "start_message_move_task",
        service_error_code="AccessDenied",
        service_message="not authorized to perform sqs:StartMessageMoveTask",
        http_status_code=403,
    )
    monkeypatch.setattr(queues_cli, "_resend", lambda *args: pytest.fail("resent anyway"))

    result = redrive()

    assert result.exit_code == 1, result.output
    assert "sqs:StartMessageMoveTask" in result.stderr
    assert "Moved" not in result.stdout
