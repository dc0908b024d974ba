"""`send`, `dlq`, `redrive` and `purge` against a real emulator, as a developer types them.

Each test works on queues of its own (the plugin's ``sqsl_resources``), named to the
commands with their hidden ``--source-queue`` and ``--dead-letter-queue`` options; the
project is a copy of the sample project, with standard or FIFO queues.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner, Result

from sqs_lambda_tools import endpoint
from sqs_lambda_tools.cli import app
from sqs_lambda_tools.project import Project
from sqs_lambda_tools.pytest_plugin import ProvisionedResources
from sqs_lambda_tools.testing import make_context, make_sqs_event

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef, MessageTypeDef

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("sqsl_project", ["standard", "fifo"], indirect=True),
]

ORDER = '{"orderId": "o-1", "userId": "u-7"}'


@dataclass(frozen=True)
class Cli:
    """``sqsl`` pointed at the emulator and at this test's queues."""

    resources: ProvisionedResources
    environment: Mapping[str, str]

    def __call__(self, *arguments: str, answer: str | None = None) -> Result:
        names = self.resources.resources
        return CliRunner().invoke(
            app,
            [
                *arguments,
                "--source-queue",
                names.source_queue,
                "--dead-letter-queue",
                names.dead_letter_queue,
            ],
            env=dict(self.environment),
            input=answer,
        )


@pytest.fixture
def resources(sqsl_resources: ProvisionedResources) -> ProvisionedResources:
    """GIVEN this test's fresh queues and tables."""
    return sqsl_resources


@pytest.fixture
def cli(resources: ProvisionedResources, sqsl_emulator: endpoint.Endpoint) -> Cli:
    """GIVEN the CLI on this test's fresh queues, on a terminal wide enough for tables."""
    return Cli(resources, {**sqsl_emulator.environment(), "COLUMNS": "200"})


def is_fifo(resources: ProvisionedResources) -> bool:
    return resources.resources.fifo


def take_all(resources: ProvisionedResources, url: str) -> list[MessageTypeDef]:
    """Every message in a queue, in the order received, deleted as read.

    Deleting lets a FIFO queue hand out a group's next messages; the queue is this
    test's own, so nothing else is lost.
    """
    messages: list[MessageTypeDef] = []
    while True:
        received = resources.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=30,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return messages
        messages.extend(received)
        resources.sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(received)
            ],
        )


def depth(resources: ProvisionedResources, url: str) -> int:
    attributes = resources.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def put(
    resources: ProvisionedResources,
    url: str,
    body: str,
    attributes: Mapping[str, MessageAttributeValueTypeDef] | None = None,
    *,
    group: str = "u-1",
) -> str:
    """Send one message straight to a queue (FIFO: in ``group``); return its id."""
    if is_fifo(resources):
        return resources.sqs.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageAttributes=dict(attributes or {}),
            MessageGroupId=group,
            MessageDeduplicationId=uuid.uuid4().hex,
        )["MessageId"]
    return resources.sqs.send_message(
        QueueUrl=url, MessageBody=body, MessageAttributes=dict(attributes or {})
    )["MessageId"]


def dead_letter(
    resources: ProvisionedResources, body: str, *, group: str = "u-1", **extra: str
) -> str:
    """Put a poison message on the DLQ as the handler does: with the reason it failed."""
    attributes: dict[str, MessageAttributeValueTypeDef] = {
        "failure_reason": {"DataType": "String", "StringValue": "body is not valid JSON"},
        "failure_type": {"DataType": "String", "StringValue": "MalformedMessageError"},
        "source_message_id": {"DataType": "String", "StringValue": str(uuid.uuid4())},
        "source_receive_count": {"DataType": "Number", "StringValue": "1"},
    }
    for name, value in extra.items():
        attributes[name] = {"DataType": "String", "StringValue": value}
    return put(resources, resources.dead_letter_queue_url, body, attributes, group=group)


def strings(message: MessageTypeDef) -> dict[str, str]:
    """A received message's string attributes, by name."""
    return {
        name: value["StringValue"]
        for name, value in message.get("MessageAttributes", {}).items()
        if "StringValue" in value
    }


# -- send ----------------------------------------------------------------------------------


def test_send_puts_the_body_on_the_source_queue(cli: Cli, resources: ProvisionedResources) -> None:
    result = cli("send", ORDER)

    assert result.exit_code == 0, result.output
    assert "Sent 1 message to" in result.output
    [message] = take_all(resources, resources.source_queue_url)
    assert message["Body"] == ORDER
    if is_fifo(resources):
        # The group is the order's user: one user's orders stay in order.
        assert message["Attributes"]["MessageGroupId"] == "u-7"


def test_send_to_the_dlq_leaves_the_source_queue_alone(
    cli: Cli, resources: ProvisionedResources
) -> None:
    result = cli("send", ORDER, "--queue", "dlq")

    assert result.exit_code == 0, result.output
    assert [m["Body"] for m in take_all(resources, resources.dead_letter_queue_url)] == [ORDER]
    assert depth(resources, resources.source_queue_url) == 0


def test_send_a_file_sends_each_line_and_skips_blank_ones(
    cli: Cli, resources: ProvisionedResources, tmp_path: Path
) -> None:
    bodies = [json.dumps({"orderId": f"o-{n}", "userId": "u-1"}) for n in range(12)]
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(bodies[:5]) + "\n\n   \n" + "\n".join(bodies[5:]) + "\n")

    result = cli("send", "--file", str(path))

    assert result.exit_code == 0, result.output
    assert "Sent 12 messages" in result.output
    received = [message["Body"] for message in take_all(resources, resources.source_queue_url)]
    if is_fifo(resources):
        assert received == bodies  # one user: one group, in file order
    else:
        assert sorted(received) == sorted(bodies)


def test_a_line_that_is_not_json_fails_naming_it_and_nothing_is_sent(
    cli: Cli, resources: ProvisionedResources, tmp_path: Path
) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text(f"{ORDER}\n\n{ORDER[:-1]}\n{ORDER}\n")

    result = cli("send", "--file", str(path))

    assert result.exit_code == 1
    assert "line 3" in result.stderr
    assert "--raw" in result.stderr
    assert depth(resources, resources.source_queue_url) == 0


def test_raw_sends_a_line_that_is_not_json_as_it_is(
    cli: Cli, resources: ProvisionedResources, tmp_path: Path
) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text(f"{ORDER}\n{ORDER[:-1]}\n")

    result = cli("send", "--file", str(path), "--raw")

    assert result.exit_code == 0, result.output
    received = [message["Body"] for message in take_all(resources, resources.source_queue_url)]
    assert sorted(received) == sorted([ORDER, ORDER[:-1]])


def test_a_body_that_is_not_json_is_refused_without_raw(
    cli: Cli, resources: ProvisionedResources
) -> None:
    result = cli("send", "not json")

    assert result.exit_code == 1
    assert "not valid JSON" in result.stderr
    assert depth(resources, resources.source_queue_url) == 0


def test_sample_sends_duplicates_and_one_poison_message(
    cli: Cli, resources: ProvisionedResources
) -> None:
    result = cli("send", "--sample", "20", "--poison")

    assert result.exit_code == 0, result.output
    assert "Sent 20 messages" in result.output
    messages = take_all(resources, resources.source_queue_url)
    assert len(messages) == 20  # duplicates were delivered, not deduplicated away
    orders, malformed = [], []
    for message in messages:
        try:
            orders.append(json.loads(message["Body"]))
        except ValueError:
            malformed.append(message["Body"])
    assert len(malformed) == 1
    sent_twice = [key for key, times in Counter(o["orderId"] for o in orders).items() if times > 1]
    assert sent_twice
    if is_fifo(resources):
        groups = {message["Attributes"]["MessageGroupId"] for message in messages}
        assert len(groups) > 1
        assert {o["userId"] for o in orders} <= groups


def test_a_fifo_group_can_be_given_and_a_standard_queue_refuses_one(
    cli: Cli, resources: ProvisionedResources
) -> None:
    result = cli("send", ORDER, "--group", "g-fixed")

    if is_fifo(resources):
        assert result.exit_code == 0, result.output
        [message] = take_all(resources, resources.source_queue_url)
        assert message["Attributes"]["MessageGroupId"] == "g-fixed"
    else:
        assert result.exit_code == 1
        assert "only apply to a FIFO queue" in result.stderr


def test_sending_to_a_queue_that_does_not_exist_says_how_to_create_it(
    sqsl_project: Project, sqsl_emulator: endpoint.Endpoint
) -> None:
    missing = f"missing-{uuid.uuid4().hex[:8]}{'.fifo' if sqsl_project.queue.fifo else ''}"
    result = CliRunner().invoke(
        app, ["send", ORDER, "--source-queue", missing], env=sqsl_emulator.environment()
    )

    assert result.exit_code == 1
    assert f"queue {missing} does not exist" in result.stderr
    assert "sqsl up" in result.stderr


def test_without_an_endpoint_a_command_fails_and_says_how_to_get_one(
    sqsl_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no AWS_ENDPOINT_URL, and no emulator recorded in the project's state folder
    assert not endpoint.state_file(sqsl_project).exists()
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)

    result = CliRunner().invoke(app, ["send", ORDER])

    assert result.exit_code == 1
    assert "no emulator endpoint" in result.stderr
    assert "--aws" in result.stderr


# -- dlq -----------------------------------------------------------------------------------


def test_dlq_lists_a_dead_lettered_message_with_its_failure_and_leaves_it_there(
    cli: Cli, resources: ProvisionedResources
) -> None:
    source_message_id = str(uuid.uuid4())
    message_id = dead_letter(resources, ORDER[:-1], source_message_id=source_message_id)

    table = cli("dlq")
    listed = cli("dlq", "--json")

    assert table.exit_code == 0, table.output
    # The table shows the id the function logged, the source queue's; --json has both.
    assert source_message_id in table.output
    assert message_id not in table.output
    assert "MalformedMessageError" in table.output
    assert "body is not valid JSON" in table.output
    assert listed.exit_code == 0, listed.output
    [entry] = json.loads(listed.stdout)
    assert entry["messageId"] == message_id
    assert entry["sourceMessageId"] == source_message_id
    assert entry["failureType"] == "MalformedMessageError"
    assert entry["failureReason"] == "body is not valid JSON"
    assert entry["receiveCount"] == 1
    assert entry["body"] == ORDER[:-1]
    # Still there, and visible at once: listing is not consuming.
    assert [m["MessageId"] for m in take_all(resources, resources.dead_letter_queue_url)] == [
        message_id
    ]


def test_dlq_lists_more_than_one_receive_returns(cli: Cli, resources: ProvisionedResources) -> None:
    # One group each: FIFO hands out no more of a group while its first messages are read.
    sent = {dead_letter(resources, f"bad {n}", group=f"u-{n}") for n in range(15)}

    result = cli("dlq", "--json")

    assert result.exit_code == 0, result.output
    assert {entry["messageId"] for entry in json.loads(result.stdout)} == sent
    assert depth(resources, resources.dead_letter_queue_url) == 15


def test_dlq_says_when_it_is_empty(
    resources: ProvisionedResources, sqsl_emulator: endpoint.Endpoint
) -> None:
    # --suffix: the plugin names this test's queues <name><suffix>, as `run` expects.
    result = CliRunner().invoke(
        app, ["dlq", "--suffix", resources.suffix], env=sqsl_emulator.environment()
    )

    assert result.exit_code == 0, result.output
    assert "is empty" in result.output


# -- redrive -------------------------------------------------------------------------------


def test_redrive_moves_the_dlq_back_to_the_source_and_names_the_path(
    cli: Cli, resources: ProvisionedResources
) -> None:
    bodies = [json.dumps({"orderId": f"o-{n}", "userId": "u-1"}) for n in range(12)]
    for body in bodies:
        dead_letter(resources, body)

    result = cli("redrive")

    assert result.exit_code == 0, result.output
    assert "Moved 12 messages" in result.output
    # MiniStack has no StartMessageMoveTask: the fallback says so and why.
    assert "by StartMessageMoveTask" in result.output or (
        "by receive/send/delete" in result.output and "StartMessageMoveTask" in result.output
    )
    assert depth(resources, resources.dead_letter_queue_url) == 0
    received = [m["Body"] for m in take_all(resources, resources.source_queue_url)]
    if is_fifo(resources):
        assert received == bodies  # one group: its order survives the round trip
    else:
        assert sorted(received) == sorted(bodies)


def test_the_fallback_keeps_attributes_and_groups_but_not_the_failure(
    cli: Cli, resources: ProvisionedResources
) -> None:
    first = dead_letter(resources, ORDER, group="u-7", trace_id="t-1")
    dead_letter(resources, ORDER.replace("o-1", "o-2"), group="u-8", trace_id="t-2")

    result = cli("redrive", "--method", "resend")

    assert result.exit_code == 0, result.output
    assert "Moved 2 messages" in result.output
    assert "by receive/send/delete" in result.output
    assert depth(resources, resources.dead_letter_queue_url) == 0
    by_trace = {strings(m)["trace_id"]: m for m in take_all(resources, resources.source_queue_url)}
    assert sorted(by_trace) == ["t-1", "t-2"]
    kept = strings(by_trace["t-1"])
    assert not {"failure_reason", "failure_type"} & kept.keys()
    assert kept["source_message_id"]
    assert by_trace["t-1"]["Body"] == ORDER
    assert by_trace["t-1"]["MessageId"] != first  # a new message, as with a move task
    if is_fifo(resources):
        assert by_trace["t-1"]["Attributes"]["MessageGroupId"] == "u-7"
        assert by_trace["t-2"]["Attributes"]["MessageGroupId"] == "u-8"


def test_what_the_handler_dead_letters_dlq_explains_and_redrive_sends_back(
    cli: Cli, resources: ProvisionedResources, sqsl_handler: Callable[[Any, Any], object]
) -> None:
    # GIVEN the sample handler, which sends a poison message to its DLQ with the reason
    poison = ORDER[:-1]
    event = make_sqs_event([poison], queue_arn=resources.source_queue_arn)

    response = sqsl_handler(event, make_context())
    listed = cli("dlq", "--json")
    table = cli("dlq")
    moved = cli("redrive", "--method", "resend")  # StartMessageMoveTask keeps failure_*

    assert response == {"batchItemFailures": []}  # acknowledged: it is in the DLQ now
    [entry] = json.loads(listed.stdout)
    assert entry["failureType"] is None  # the sample handler records a reason only
    assert entry["failureReason"].startswith("not JSON")
    assert entry["sourceMessageId"] == event["Records"][0]["messageId"]
    assert entry["receiveCount"] == 1
    if is_fifo(resources):
        assert entry["groupId"] == event["Records"][0]["attributes"]["MessageGroupId"]
    # The table shows the id the function saw, and why it failed.
    assert event["Records"][0]["messageId"] in table.output
    assert "not JSON" in table.output
    assert moved.exit_code == 0, moved.output
    [back] = take_all(resources, resources.source_queue_url)
    assert back["Body"] == poison
    assert not any(name.startswith("failure_") for name in back.get("MessageAttributes", {}))


def test_redrive_of_an_empty_dlq_moves_nothing(cli: Cli) -> None:
    result = cli("redrive")

    assert result.exit_code == 0, result.output
    assert "nothing to move" in result.output


# -- purge ---------------------------------------------------------------------------------


def test_purge_with_yes_empties_the_queue(cli: Cli, resources: ProvisionedResources) -> None:
    for n in range(3):
        put(resources, resources.source_queue_url, ORDER.replace("o-1", f"o-{n}"))

    result = cli("purge", "--yes")

    assert result.exit_code == 0, result.output
    assert "60 s" in result.output
    deadline = time.monotonic() + 10  # SQS may take up to 60 s; emulators are quicker
    while depth(resources, resources.source_queue_url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert depth(resources, resources.source_queue_url) == 0


def test_purge_asks_first_and_no_keeps_the_messages(
    cli: Cli, resources: ProvisionedResources
) -> None:
    for n in range(3):
        put(resources, resources.dead_letter_queue_url, f"bad {n}")

    result = cli("purge", "--queue", "dlq", answer="n\n")

    assert result.exit_code == 1
    assert "Delete all 3 messages" in result.output
    assert "cancelled" in result.stderr
    assert depth(resources, resources.dead_letter_queue_url) == 3
