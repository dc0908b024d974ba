"""Stopping the local event source mapping loses nothing.

``stop()`` lets the invocations under way finish and applies their responses; messages
not yet handed to the handler stay in the queue, visible again now or after the
visibility timeout. None is lost, none deleted unprocessed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from sqs_lambda_tools.endpoint import Endpoint
from sqs_lambda_tools.esm import (
    Handler,
    LocalEventSourceMapping,
    MappingSettings,
    MappingStats,
)
from sqs_lambda_tools.in_process import InProcessEnvironment
from sqs_lambda_tools.project import PROJECT_VARIABLE
from sqs_lambda_tools.pytest_plugin import ProvisionedResources

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("sqsl_project", ["standard", "fifo"], indirect=True),
]

# Messages a stopped mapping leaves hidden come back within the test after this.
VISIBILITY_SECONDS = 2
HANDLER_SECONDS = 1.0
ORDERS = 6
# The long polls of the `run` that gets Ctrl-C.
LONG_POLL_SECONDS = 10


@pytest.fixture
def queue(sqsl_resources: ProvisionedResources) -> ProvisionedResources:
    """The test's own resources, with a short visibility timeout."""
    sqsl_resources.sqs.set_queue_attributes(
        QueueUrl=sqsl_resources.source_queue_url,
        Attributes={"VisibilityTimeout": str(VISIBILITY_SECONDS)},
    )
    return sqsl_resources


def send_orders(queue: ProvisionedResources, order_ids: list[str]) -> None:
    """One message each, in order (FIFO: all in one group, user u-1's)."""
    for order_id in order_ids:
        queue.send([json.dumps({"orderId": order_id, "userId": "u-1"})])


def order_ids(queue: ProvisionedResources) -> list[str]:
    return sorted(str(item["orderId"]) for item in queue.table_items("orders"))


def left_in_queue(queue: ProvisionedResources, expected: int, limit: float) -> list[str]:
    """The orderIds still in the queue, visible now or once their visibility timeout ends.

    Each is deleted once read, so a FIFO group's next messages become available.
    """
    found: list[str] = []
    deadline = time.monotonic() + limit
    while len(found) < expected and time.monotonic() < deadline:
        messages = queue.sqs.receive_message(
            QueueUrl=queue.source_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        for message in messages:
            found.append(json.loads(message["Body"])["orderId"])
            queue.sqs.delete_message(
                QueueUrl=queue.source_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    return sorted(found)


def test_stopping_mid_batch_finishes_the_batch_and_loses_no_message(
    queue: ProvisionedResources, sqsl_handler: Handler
) -> None:
    # GIVEN a handler that takes a second per batch, and a mapping running in a thread
    in_flight = threading.Event()
    first_batch: list[str] = []

    def slow(event: dict[str, Any], context: Any) -> object:
        if not in_flight.is_set():
            first_batch.extend(json.loads(r["body"])["orderId"] for r in event["Records"])
            in_flight.set()
        time.sleep(HANDLER_SECONDS)
        return sqsl_handler(event, context)

    esm = LocalEventSourceMapping(
        queue.sqs,
        queue_url=queue.source_queue_url,
        queue_arn=queue.source_queue_arn,
        region=queue.project.region,
        environments=InProcessEnvironment(slow),
        settings=MappingSettings(
            batch_size=2,
            batching_window_seconds=0,
            max_concurrency=2,
            function_timeout_seconds=VISIBILITY_SECONDS,
            fifo=queue.resources.fifo,
            wait_time_seconds=1,
        ),
    )
    outcome: list[MappingStats | BaseException] = []

    def run() -> None:
        try:
            outcome.append(esm.run())
        except BaseException as error:  # handed to the test thread, which fails on it
            outcome.append(error)

    sent = [f"o-{n}" for n in range(ORDERS)]
    send_orders(queue, sent)
    runner = threading.Thread(target=run, name="esm", daemon=True)
    runner.start()

    # WHEN the mapping is stopped while a batch is in the handler
    assert in_flight.wait(timeout=15), "no batch reached the handler"
    esm.stop()
    runner.join(timeout=15)

    # THEN run() returned once that batch was done, and applied its response
    assert not runner.is_alive(), "run() did not return after stop()"
    [stats] = outcome
    assert isinstance(stats, MappingStats), stats
    assert stats.in_flight == 0
    assert stats.invocations >= 1
    assert stats.results, "the in-flight batch was not recorded"
    for result in stats.results:
        assert not result.whole_batch_failed, result.reason
        assert result.deleted == len(result.message_ids)
    processed = order_ids(queue)
    assert first_batch
    assert set(first_batch) <= set(processed)
    assert stats.deleted == len(processed)  # deleted exactly what the handler recorded
    # AND every other message is still in the queue: none lost, none processed twice
    remaining = left_in_queue(queue, ORDERS - len(processed), limit=VISIBILITY_SECONDS + 10)
    assert sorted(processed + remaining) == sent
    assert not set(processed) & set(remaining)


def test_ctrl_c_leaves_no_message_hidden_by_a_long_poll_still_open(
    queue: ProvisionedResources, sqsl_emulator: Endpoint
) -> None:
    # GIVEN the deployed visibility timeout: a message a lost long poll took stays hidden
    # that long
    queue.sqs.set_queue_attributes(
        QueueUrl=queue.source_queue_url,
        Attributes={"VisibilityTimeout": str(queue.project.queue.visibility_timeout_seconds)},
    )
    # AND `sqsl run` on the project in a process of its own, its pollers in 10 s long polls
    # on an empty queue
    environment = {
        **os.environ,
        **sqsl_emulator.environment(),
        PROJECT_VARIABLE: str(queue.project.root),
    }
    command = [sys.executable, "-m", "sqs_lambda_tools", "run", "--suffix", queue.suffix]
    command += ["--wait", str(LONG_POLL_SECONDS), "--max-concurrency", "5"]
    process = subprocess.Popen(
        command, env=environment, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    output: list[str] = []
    polling = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            output.append(line)
            if line.startswith("Polling"):
                polling.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert polling.wait(timeout=30), "".join(output)
        time.sleep(2)  # every poller is in its long poll

        # WHEN it gets Ctrl-C, and orders are sent right then, and again once it has ended
        process.send_signal(signal.SIGINT)
        send_orders(queue, ["o-1", "o-2"])
        code = process.wait(timeout=LONG_POLL_SECONDS + 20)
        send_orders(queue, ["o-3", "o-4"])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=5)

    # THEN it stopped cleanly, and every order is processed or promptly received afresh:
    # none waits out the visibility timeout
    assert code == 0, "".join(output)
    processed = order_ids(queue)
    received = left_in_queue(queue, 4 - len(processed), limit=5)
    assert sorted(processed + received) == ["o-1", "o-2", "o-3", "o-4"], "".join(output)
    # AND stopping did not use up their receives: none went to the DLQ
    dead = queue.sqs.receive_message(QueueUrl=queue.dead_letter_queue_url, MaxNumberOfMessages=10)
    assert dead.get("Messages", []) == []
