"""The local event source mapping against a real emulator: AWS's rules, end to end.

The handler is the sample project's (``tests/sample_project``): it records each order
once, sends a poison body to the DLQ with its reason (``dlq_now``, while the function has
``DEAD_LETTER_QUEUE_URL``) or reports it failed (``retry``), and keeps a FIFO group's
order. Tests that are about the mapping's rules give it a handler of their own. Both run
in this process (:class:`InProcessEnvironment`, as under ``run --debug``), where a handler
may be a closure over the test's state; what execution environments add (worker
processes, timeouts, memory) is tested in ``test_local_esm_environments``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sqs_lambda_tools.cli import app
from sqs_lambda_tools.endpoint import Endpoint
from sqs_lambda_tools.esm import (
    Handler,
    LocalEventSourceMapping,
    MappingSettings,
    MappingStats,
)
from sqs_lambda_tools.in_process import InProcessEnvironment
from sqs_lambda_tools.pytest_plugin import ProvisionedResources
from sqs_lambda_tools.testing import make_sqs_event

pytestmark = pytest.mark.integration

# Each test on a standard queue, on a FIFO queue, or on both.
BOTH = pytest.mark.parametrize("sqsl_project", ["standard", "fifo"], indirect=True)
FIFO = pytest.mark.parametrize("sqsl_project", ["fifo"], indirect=True)

# Short enough that failed messages come back within a test, as they would after the
# real visibility timeout.
VISIBILITY_SECONDS = 2
# The function timeout may not be longer than the queue's visibility timeout (AWS refuses
# the mapping): the tests' queues have VISIBILITY_SECONDS.
TIMEOUT_SECONDS = VISIBILITY_SECONDS


@pytest.fixture
def queue(sqsl_resources: ProvisionedResources) -> ProvisionedResources:
    """The test's own resources, with a short visibility timeout and maxReceiveCount 2."""
    redrive = {"deadLetterTargetArn": sqsl_resources.dead_letter_queue_arn, "maxReceiveCount": 2}
    sqsl_resources.sqs.set_queue_attributes(
        QueueUrl=sqsl_resources.source_queue_url,
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_SECONDS),
            "RedrivePolicy": json.dumps(redrive),
        },
    )
    return sqsl_resources


def with_deployed_visibility(queue: ProvisionedResources) -> None:
    """The project's visibility timeout, for tests whose batches take longer than 2 s."""
    queue.sqs.set_queue_attributes(
        QueueUrl=queue.source_queue_url,
        Attributes={"VisibilityTimeout": str(queue.project.queue.visibility_timeout_seconds)},
    )


def send_orders(
    queue: ProvisionedResources, bodies: list[str], groups: list[str] | None = None
) -> None:
    """Send ``bodies`` one by one, in order; FIFO: in ``groups`` (default: each body's
    userId, the sample project's group key)."""
    for index, body in enumerate(bodies):
        if queue.resources.fifo and groups is not None:
            queue.send([{"MessageBody": body, "MessageGroupId": groups[index]}])
        else:
            queue.send([body])


def order(order_id: str, user_id: str = "u-1", **switches: object) -> str:
    """An order of the sample project; ``switches`` ask its handler to sleep, fail, crash."""
    return json.dumps({"orderId": order_id, "userId": user_id, **switches})


def mapping(
    queue: ProvisionedResources,
    handler: Handler,
    *,
    batch_size: int = 10,
    window: float = 0,
    max_concurrency: int = 2,
    timeout: float = TIMEOUT_SECONDS,
) -> LocalEventSourceMapping:
    """The mapping, ``handler`` in this process (the timeout reported, not enforced)."""
    return LocalEventSourceMapping(
        queue.sqs,
        queue_url=queue.source_queue_url,
        queue_arn=queue.source_queue_arn,
        region=queue.project.region,
        environments=InProcessEnvironment(handler),
        settings=MappingSettings(
            batch_size=batch_size,
            batching_window_seconds=window,
            max_concurrency=max_concurrency,
            function_timeout_seconds=timeout,
            fifo=queue.resources.fifo,
            wait_time_seconds=1,
        ),
    )


def depth(queue: ProvisionedResources) -> tuple[int, int]:
    source = queue.depths().source
    return source.visible, source.in_flight


def drain(
    queue: ProvisionedResources, make: Callable[[], LocalEventSourceMapping], limit: float = 30
) -> MappingStats:
    """Run until the source queue is empty, failed messages' retries included."""
    total = MappingStats()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        stats = make().run(until_empty=True)
        total.received += stats.received
        total.invocations += stats.invocations
        total.deleted += stats.deleted
        total.failed += stats.failed
        total.whole_batch_failures += stats.whole_batch_failures
        total.results.extend(stats.results)
        if depth(queue) == (0, 0):
            return total
        time.sleep(0.5)
    raise AssertionError(f"the queue did not drain in {limit} s: {depth(queue)}")


def order_ids(queue: ProvisionedResources) -> list[str]:
    return sorted(str(item["orderId"]) for item in queue.table_items("orders"))


def dlq_bodies(queue: ProvisionedResources) -> list[str]:
    return [message["Body"] for message in queue.dlq_messages(wait=1)]


def cli(emulator: Endpoint, *arguments: str) -> Any:
    """``sqsl ARGUMENTS`` in process, pointed at the emulator."""
    return CliRunner().invoke(app, list(arguments), env=emulator.environment())


@BOTH
def test_sent_orders_are_processed_once_each(
    queue: ProvisionedResources, sqsl_handler: Handler
) -> None:
    send_orders(queue, [order(f"o-{n}") for n in range(12)] + [order("o-3"), order("o-7")])

    stats = drain(queue, lambda: mapping(queue, sqsl_handler))

    assert order_ids(queue) == sorted(f"o-{n}" for n in range(12))
    assert stats.deleted == 14
    assert dlq_bodies(queue) == []


@BOTH
@pytest.mark.parametrize("policy", ["dlq_now", "retry"])
def test_a_poison_message_reaches_the_dlq_and_its_neighbours_are_deleted(
    queue: ProvisionedResources,
    sqsl_handler: Handler,
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
) -> None:
    if policy == "retry":  # the handler has no DLQ of its own: it reports the failure
        monkeypatch.delenv("DEAD_LETTER_QUEUE_URL")
    poison = '{"orderId": '
    send_orders(queue, [order("o-1"), poison, order("o-2")], groups=["a", "b", "c"])

    stats = drain(queue, lambda: mapping(queue, sqsl_handler))

    assert order_ids(queue) == ["o-1", "o-2"]
    assert dlq_bodies(queue) == [poison]
    if policy == "dlq_now":
        # Sent there by the handler and acknowledged, on the first receive.
        assert stats.failed == 0
    else:
        # Reported on each receive until the queue's redrive policy (maxReceiveCount 2
        # here) moved it to the DLQ.
        assert stats.failed == 2


@BOTH
def test_a_handler_crash_loses_nothing(queue: ProvisionedResources, sqsl_handler: Handler) -> None:
    crashed = threading.Event()

    def crashing_once(event: dict[str, Any], context: Any) -> object:
        if not crashed.is_set():
            crashed.set()
            raise RuntimeError("the function crashed mid-batch")
        return sqsl_handler(event, context)

    send_orders(queue, [order(f"o-{n}") for n in range(5)])

    stats = drain(queue, lambda: mapping(queue, crashing_once))

    assert stats.whole_batch_failures == 1
    assert order_ids(queue) == [f"o-{n}" for n in range(5)]
    assert dlq_bodies(queue) == []


def test_a_body_asking_the_handler_to_crash_fails_its_whole_batch(
    queue: ProvisionedResources, sqsl_handler: Handler
) -> None:
    send_orders(queue, [order("o-1", crash=True)])

    stats = mapping(queue, sqsl_handler).run(max_messages=1)

    [result] = stats.results
    assert result.whole_batch_failed
    assert result.reason == "handler raised RuntimeError: asked to crash by o-1"
    assert stats.deleted == 0
    assert depth(queue) == (0, 1)  # kept, back after the visibility timeout


@BOTH
@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"foo": "x"}]},
        {"batchItemFailures": "everything"},
        "not an object",
    ],
    ids=["unknown-id", "empty-id", "no-id", "not-a-list", "not-an-object"],
)
def test_a_malformed_response_fails_the_whole_batch(
    queue: ProvisionedResources, response: object
) -> None:
    send_orders(queue, [order("o-1"), order("o-2")], groups=["a", "b"])

    stats = mapping(queue, lambda event, context: response).run(max_messages=2)

    assert stats.whole_batch_failures == stats.invocations >= 1
    assert stats.deleted == 0
    assert depth(queue) == (0, 2)  # kept, invisible for now


@BOTH
def test_no_more_than_max_concurrency_invocations_at_once(queue: ProvisionedResources) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def busy(event: dict[str, Any], context: Any) -> object:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.3)
        with lock:
            running -= 1
        return None

    send_orders(queue, [order(f"o-{n}") for n in range(12)], groups=[f"g-{n}" for n in range(12)])

    stats = mapping(queue, busy, batch_size=1, max_concurrency=3).run(max_messages=12)

    assert stats.deleted == 12
    assert 1 < peak <= 3


@BOTH
def test_every_record_has_lambdas_shape(queue: ProvisionedResources) -> None:
    seen: list[dict[str, Any]] = []
    contexts: list[Any] = []

    def capture(event: dict[str, Any], context: Any) -> object:
        seen.extend(event["Records"])
        contexts.append(context)
        assert context.get_remaining_time_in_millis() > 0
        return None

    entry: dict[str, Any] = {
        "MessageBody": order("o-1"),
        "MessageAttributes": {"trace": {"DataType": "String", "StringValue": "abc"}},
    }
    if queue.resources.fifo:
        entry |= {"MessageGroupId": "u-1", "MessageDeduplicationId": "d-1"}
    queue.send([entry])

    mapping(queue, capture).run(max_messages=1)

    [record] = seen
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue.source_queue_arn
    assert record["awsRegion"] == queue.project.region
    assert record["body"] == order("o-1")
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["trace"] == {
        "stringValue": "abc",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert len(record["md5OfBody"]) == 32
    if queue.resources.fifo:
        assert record["attributes"]["MessageGroupId"] == "u-1"
        assert record["attributes"]["MessageDeduplicationId"] == "d-1"
        assert record["attributes"]["SequenceNumber"]
    [context] = contexts
    assert context.timeout_seconds == TIMEOUT_SECONDS  # the mapping's function timeout


@FIFO
def test_fifo_group_order_of_side_effects_holds_when_a_record_fails(
    queue: ProvisionedResources, sqsl_handler: Callable[[Any, Any], Any]
) -> None:
    # GIVEN the sample handler, whose first delivery of a-2 fails (a transient error)
    effects: list[str] = []
    failed_once: set[str] = set()
    lock = threading.Lock()

    def flaky(event: dict[str, Any], context: Any) -> Any:
        records = event["Records"]
        for record in records:
            payload = json.loads(record["body"])
            with lock:
                if payload["orderId"] == "a-2" and "a-2" not in failed_once:
                    failed_once.add("a-2")
                    record["body"] = json.dumps({**payload, "fail": True})
        response = sqsl_handler(event, context)
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        # What the handler recorded, in the order it processed the records.
        with lock:
            effects.extend(
                json.loads(r["body"])["orderId"] for r in records if r["messageId"] not in failed
            )
        return response

    ids = ["a-1", "b-1", "a-2", "b-2", "a-3", "b-3", "a-4"]
    send_orders(queue, [order(i) for i in ids], groups=[i[0] for i in ids])

    # WHEN the mapping drains the queue, two batches at once
    drain(queue, lambda: mapping(queue, flaky, max_concurrency=2))

    # THEN each group's orders were recorded in their order, a-2 retried before a-3
    for group in "ab":
        in_group = [effect for effect in effects if effect.startswith(group)]
        assert in_group == sorted(in_group), f"group {group} out of order: {effects}"
    assert sorted(effects) == sorted(ids)
    assert order_ids(queue) == sorted(ids)
    assert failed_once == {"a-2"}


def test_a_batching_window_gathers_more_than_one_receive(queue: ProvisionedResources) -> None:
    sizes: list[int] = []

    def count(event: dict[str, Any], context: Any) -> object:
        sizes.append(len(event["Records"]))
        return None

    send_orders(queue, [order(f"o-{n}") for n in range(25)])

    stats = mapping(queue, count, batch_size=25, window=2).run(max_messages=25)

    assert stats.deleted == 25
    assert max(sizes) > 10  # one receive returns at most 10


def test_until_empty_waits_for_the_batches_pollers_are_still_gathering(
    queue: ProvisionedResources,
) -> None:
    # GIVEN more messages than one receive returns, and a batching window of 2 s: several
    # pollers each gather part of them for up to the window (the deployed visibility
    # timeout, longer than the window, keeps them hidden meanwhile)
    with_deployed_visibility(queue)
    sizes: list[int] = []

    def count(event: dict[str, Any], context: Any) -> object:
        sizes.append(len(event["Records"]))
        return None

    send_orders(queue, [order(f"o-{n}") for n in range(20)])

    # WHEN one run goes until the queue is empty, with five pollers
    stats = mapping(queue, count, batch_size=50, window=2, max_concurrency=5).run(until_empty=True)

    # THEN an idle poller's empty receive did not end it while others held messages
    assert (stats.received, stats.deleted) == (20, 20)
    assert sum(sizes) == 20
    assert depth(queue) == (0, 0)


def test_the_run_command_with_a_long_window_processes_until_empty(
    queue: ProvisionedResources, sqsl_emulator: Endpoint
) -> None:
    with_deployed_visibility(queue)
    sent = [f"o-{n}" for n in range(20)]
    send_orders(queue, [order(order_id) for order_id in sent])

    result = cli(
        sqsl_emulator,
        "run",
        "--until-empty",
        "--suffix",
        queue.suffix,
        "--batch-size",
        "50",
        "--window",
        "2",
        "--max-concurrency",
        "5",
    )

    assert result.exit_code == 0, result.output
    assert "batch 50, window 2 s, concurrency 5" in result.output
    assert order_ids(queue) == sorted(sent)
    assert depth(queue) == (0, 0)


@BOTH
def test_the_run_command_processes_until_empty(
    queue: ProvisionedResources, sqsl_emulator: Endpoint
) -> None:
    # GIVEN two orders and a poison message, on queues named as the project's plus a suffix
    send_orders(queue, [order("o-1"), "not json", order("o-2")], groups=["a", "b", "c"])

    # WHEN `run` drains them with the project's handler and settings (the timeout within
    # the test queue's visibility timeout)
    result = cli(sqsl_emulator, "run", "--until-empty", "--suffix", queue.suffix, "--timeout", "2")

    # THEN the orders are recorded in this test's table and the poison is in its DLQ,
    # where the function's environment ({dlq.url}) sent it
    assert result.exit_code == 0, result.output
    assert "deleted (processed)" in result.output
    mapping_settings = queue.project.mapping
    window = mapping_settings.batching_window_seconds
    assert (
        f"batch {mapping_settings.batch_size}, window {window} s, "
        f"concurrency {mapping_settings.maximum_concurrency}, timeout 2 s"
    ) in " ".join(result.output.split())
    assert order_ids(queue) == ["o-1", "o-2"]
    assert dlq_bodies(queue) == ["not json"]
    [dead] = queue.dlq_messages(wait=0)
    assert dead["MessageAttributes"]["failure_reason"]["StringValue"].startswith("not JSON")


@BOTH
def test_invoke_runs_the_handler_once_on_an_event_file(
    sqsl_resources: ProvisionedResources, sqsl_emulator: Endpoint, tmp_path: Path
) -> None:
    # GIVEN an event file of two orders and a poison body
    event = make_sqs_event(
        [order("o-1"), "not json", order("o-2", "u-2")],
        queue_arn=sqsl_resources.source_queue_arn,
    )
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")

    # WHEN `invoke` runs the project's handler on it, against this test's resources
    result = cli(sqsl_emulator, "invoke", str(path), "--suffix", sqsl_resources.suffix)

    # THEN it prints the handler's response, and the handler reached the tables and DLQ
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"batchItemFailures": []}
    assert order_ids(sqsl_resources) == ["o-1", "o-2"]
    assert dlq_bodies(sqsl_resources) == ["not json"]
    assert sqsl_resources.depths().source.total == 0  # nothing was taken from a queue


def test_invoke_refuses_a_file_that_is_not_an_event(
    sqsl_resources: ProvisionedResources, sqsl_emulator: Endpoint, tmp_path: Path
) -> None:
    path = tmp_path / "event.json"
    path.write_text('{"records": []}', encoding="utf-8")

    result = cli(sqsl_emulator, "invoke", str(path), "--suffix", sqsl_resources.suffix)

    assert result.exit_code == 1
    assert "is not an SQS event" in result.stderr
