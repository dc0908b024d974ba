"""The local pace (``run --retry-after``): failed messages come back in seconds, so the
retries and the redrive to the DLQ that take minutes when deployed show within a run.

The queues keep the project's visibility timeout (the sample project's: 180 s): without
the pace, each retry below would wait that long.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from sqs_lambda_tools import project as projects
from sqs_lambda_tools.cli import app
from sqs_lambda_tools.endpoint import Endpoint
from sqs_lambda_tools.project import Project
from sqs_lambda_tools.pytest_plugin import ProvisionedResources
from sqs_lambda_tools.samples import OutgoingMessage, outgoing, sample_orders

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("sqsl_project", ["standard", "fifo"], indirect=True),
]

# Receives before the redrive policy moves a message, on the test's queue: few, so the
# test is short whatever max_receive_count the project chose.
MAX_RECEIVES = 3
PACE_SECONDS = 1
# Well under a minute: MAX_RECEIVES retries at the local pace, and the polling around them.
LIMIT_SECONDS = 40


@pytest.fixture
def queue(sqsl_resources: ProvisionedResources) -> ProvisionedResources:
    """The test's own resources, as deployed but for a redrive after MAX_RECEIVES receives."""
    redrive = {
        "deadLetterTargetArn": sqsl_resources.dead_letter_queue_arn,
        "maxReceiveCount": MAX_RECEIVES,
    }
    sqsl_resources.sqs.set_queue_attributes(
        QueueUrl=sqsl_resources.source_queue_url,
        Attributes={
            "VisibilityTimeout": str(sqsl_resources.project.queue.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps(redrive),
        },
    )
    return sqsl_resources


@pytest.fixture(params=["dlq_now", "retry"])
def policy(request: pytest.FixtureRequest, sqsl_project: Project) -> Iterator[str]:
    """The poison policy: ``dlq_now``, the sample project's (its handler sends a poison
    message to the DLQ it gets as DEAD_LETTER_QUEUE_URL), or ``retry`` (the same project
    without that variable: the handler reports the failure, the redrive policy moves it)."""
    if request.param == "dlq_now":
        yield request.param
        return
    function = sqsl_project.function
    environment = {k: v for k, v in function.environment.items() if k != "DEAD_LETTER_QUEUE_URL"}
    retrying = dataclasses.replace(
        sqsl_project, function=dataclasses.replace(function, environment=environment)
    )
    projects.use(retrying)
    try:
        yield request.param
    finally:
        projects.use(sqsl_project)


def send(queue: ProvisionedResources, messages: list[OutgoingMessage]) -> None:
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        response = queue.sqs.send_message_batch(
            QueueUrl=queue.source_queue_url,
            Entries=[message.entry(str(i)) for i, message in enumerate(chunk)],
        )
        assert not response.get("Failed"), response


def order(order_id: str, user_id: str, **switches: object) -> OutgoingMessage:
    return outgoing(json.dumps({"orderId": order_id, "userId": user_id, **switches}))


def run_paced(queue: ProvisionedResources, emulator: Endpoint) -> tuple[str, float]:
    """``run --until-empty --retry-after 1``: its output (one line per paragraph) and time."""
    started = time.monotonic()
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--until-empty",
            "--retry-after",
            str(PACE_SECONDS),
            "--suffix",
            queue.suffix,
        ],
        env=emulator.environment(),
    )
    seconds = time.monotonic() - started
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split()), seconds


def order_ids(queue: ProvisionedResources) -> set[str]:
    return {str(item["orderId"]) for item in queue.table_items("orders")}


def dlq_bodies(queue: ProvisionedResources) -> list[str]:
    return [message["Body"] for message in queue.dlq_messages(wait=1)]


def depth(queue: ProvisionedResources) -> tuple[int, int]:
    source = queue.depths().source
    return source.visible, source.in_flight


def test_a_failing_message_reaches_the_dlq_within_the_run(
    queue: ProvisionedResources, sqsl_emulator: Endpoint
) -> None:
    # GIVEN an order whose processing always fails (a transient error: retried)
    send(queue, [order("o-1", "u-1"), order("o-2", "u-2", fail=True), order("o-3", "u-3")])

    # WHEN the run goes until the queue is empty, at the local pace
    output, seconds = run_paced(queue, sqsl_emulator)

    # THEN the retries took seconds, not max_receive_count x the visibility timeout, and
    # the redrive policy moved it
    assert seconds < LIMIT_SECONDS
    assert depth(queue) == (0, 0)
    assert order_ids(queue) == {"o-1", "o-3"}
    assert [json.loads(body)["orderId"] for body in dlq_bodies(queue)] == ["o-2"]
    # AND the output says how the pace differs from the deployed settings, what waits, why
    visibility = queue.project.queue.visibility_timeout_seconds
    assert (
        f"local pace: a failed message comes back {PACE_SECONDS} s after its failure on the "
        f"emulator's queue (deployed: when the visibility timeout ends, "
        f"{visibility} s after its receive)"
    ) in output
    assert f"after {MAX_RECEIVES} failed receives the redrive policy moves it to the DLQ" in output
    if queue.resources.fifo:
        assert "group u-2 waits: message" in output
        assert "SQS holds the rest of the group until then" in output
    for receive in range(1, MAX_RECEIVES):
        assert f"failed on receive {receive} of {MAX_RECEIVES}, back at" in output
    last = f"failed on receive {MAX_RECEIVES} of {MAX_RECEIVES}, due to leave for the DLQ at"
    assert last in output
    assert f"{MAX_RECEIVES - 1} more failed receives and the redrive policy moves it" in output
    assert f"It has had its {MAX_RECEIVES} receives" in output
    assert "moved to the DLQ (redrive policy) │ 1" in output


def test_the_sample_with_its_poison_message_ends_with_the_poison_in_the_dlq(
    queue: ProvisionedResources, sqsl_emulator: Endpoint, policy: str
) -> None:
    # GIVEN `sqsl send --sample 20 --poison`'s messages: samples, duplicates, one cut short
    messages = sample_orders(20, poison=True)
    send(queue, messages)
    bodies = [message.body for message in messages]
    poison = next(body for body in bodies if not body.endswith("}"))
    orders = {json.loads(body)["orderId"] for body in bodies if body != poison}

    # WHEN the run goes until the queue is empty, at the local pace
    output, seconds = run_paced(queue, sqsl_emulator)

    # THEN well under a minute later the queue is empty and the poison is in the DLQ
    assert seconds < LIMIT_SECONDS
    assert depth(queue) == (0, 0)
    in_dlq = dlq_bodies(queue)
    assert poison in in_dlq
    processed = order_ids(queue)
    if policy == "dlq_now":
        # Sent there on its first receive; nothing else failed.
        assert in_dlq == [poison]
        assert processed == orders
        assert "failed on receive" not in output
        return
    # retry: received MAX_RECEIVES times, then moved by the redrive policy
    for receive in range(1, MAX_RECEIVES):
        assert f"failed on receive {receive} of {MAX_RECEIVES}, back at" in output
    last = f"failed on receive {MAX_RECEIVES} of {MAX_RECEIVES}, due to leave for the DLQ at"
    assert last in output
    assert "moved to the DLQ (redrive policy)" in output
    if not queue.resources.fifo:
        assert in_dlq == [poison]
        assert processed == orders
        return
    # FIFO: the rest of its group waited behind it, then was processed; an order of the
    # group reported with it on each of its receives (received as often) goes to the DLQ
    # with it, as on AWS, and the output says so.
    group = json.loads(poison + "}")["userId"]
    assert f"group {group} waits: message" in output
    with_it = [json.loads(body) for body in in_dlq if body != poison]
    assert {payload["userId"] for payload in with_it} <= {group}
    assert processed | {payload["orderId"] for payload in with_it} == orders
    if with_it:
        assert "go to the DLQ with it if it gets there" in output
