"""A local event source mapping: poll a queue, invoke the handler in process, apply the
response by AWS's rules.

What it reproduces, from "Lambda parameters for Amazon SQS event source mappings" and
"Handling errors for an SQS event source in Lambda":

- batches of up to ``batch_size`` records; with a batching window the poller keeps
  receiving until the batch is full or the window has passed, without one it invokes as
  soon as a receive returns messages;
- at most ``max_concurrency`` invocations at once (``ScalingConfig.MaximumConcurrency``);
- a context whose remaining time follows the function timeout; an invocation that runs
  past it counts as timed out;
- ``ReportBatchItemFailures``: the records of the response's ``batchItemFailures`` stay
  in the queue and every other record is deleted. The whole batch fails, nothing deleted,
  when the handler raises, times out, returns something that is not JSON of that shape,
  or names an ``itemIdentifier`` that is empty or not a messageId of the batch;
- failed messages are not touched: they come back after the queue's visibility timeout
  with a higher receive count, and the queue's redrive policy moves them to the DLQ;
- FIFO: two in-flight batches never hold the same message group.

The handler runs in this process, so a debugger's breakpoints work in it.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .lambda_context import FakeLambdaContext
from .sqs_events import lambda_event

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

Handler = Callable[[dict[str, Any], Any], object]

# SQS hands out at most 10 messages per receive, and deletes at most 10 per call.
SQS_MAX_MESSAGES = 10
SQS_MAX_WAIT_SECONDS = 20
# Lambda starts polling a standard queue with five parallel long polls.
MAX_POLLERS = 5
# Pollers start this far apart in all, so their long polls are not in step: an emulator
# that re-checks the queue on a timer during a long poll (MiniStack: every 100 ms) then
# answers one of them soon after a message arrives.
POLLER_SPREAD_SECONDS = 0.1


@dataclass(frozen=True)
class MappingSettings:
    """The event source mapping's settings, the IaC's values by default (see config)."""

    batch_size: int
    batching_window_seconds: float
    max_concurrency: int
    function_timeout_seconds: float
    fifo: bool
    # Long-poll wait of an idle receive; 20 s as the ESM does, shorter in scripts and tests.
    wait_time_seconds: int = SQS_MAX_WAIT_SECONDS


@dataclass(frozen=True)
class BatchResult:
    """What happened to one invocation's batch."""

    message_ids: tuple[str, ...]
    deleted: int
    failed_ids: tuple[str, ...]
    whole_batch_failed: bool
    reason: str  # "ok", "partial", or why the whole batch failed
    seconds: float


@dataclass
class MappingStats:
    received: int = 0
    invocations: int = 0
    deleted: int = 0
    failed: int = 0
    whole_batch_failures: int = 0
    released: int = 0  # FIFO messages handed back because their group was in flight
    in_flight: int = 0
    results: list[BatchResult] = field(default_factory=list)


class InvalidResponseError(ValueError):
    """The handler's response does not follow the partial batch response contract."""


def failed_message_ids(response: object, message_ids: Sequence[str]) -> set[str]:
    """The messageIds a partial batch response reports as failed.

    ``None``, ``{}`` and an empty or null ``batchItemFailures`` mean success. Raises
    :class:`InvalidResponseError` where Lambda would fail the whole batch.
    """
    if response is None:
        return set()
    try:
        response = json.loads(json.dumps(response))
    except (TypeError, ValueError) as error:
        raise InvalidResponseError(f"response is not JSON: {error}") from None
    if not isinstance(response, dict):
        raise InvalidResponseError(f"response is a {type(response).__name__}, not an object")
    items = response.get("batchItemFailures")
    if items is None:
        return set()
    if not isinstance(items, list):
        raise InvalidResponseError("batchItemFailures is not a list")
    known = set(message_ids)
    failed: set[str] = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or not identifier:
            raise InvalidResponseError(f"itemIdentifier missing or empty in {item!r}")
        if identifier not in known:
            raise InvalidResponseError(f"itemIdentifier {identifier!r} is not in the batch")
        failed.add(identifier)
    return failed


class LocalEventSourceMapping:
    """Polls ``queue_url`` and feeds ``handler`` the way Lambda's SQS poller does."""

    def __init__(
        self,
        sqs: SQSClient,
        *,
        queue_url: str,
        queue_arn: str,
        region: str,
        handler: Handler,
        settings: MappingSettings,
        on_batch: Callable[[BatchResult, MappingStats], None] | None = None,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._region = region
        self._handler = handler
        self._settings = settings
        self._on_batch = on_batch
        self._stats = MappingStats()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(settings.max_concurrency)
        self._in_flight_groups: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._budget: int | None = None
        self._until_empty = False
        self._poller_error: BaseException | None = None

    @property
    def stats(self) -> MappingStats:
        return self._stats

    def stop(self) -> None:
        """Stop polling; invocations under way finish and their responses are applied."""
        self._stopping.set()

    def run(self, *, until_empty: bool = False, max_messages: int | None = None) -> MappingStats:
        """Poll until :meth:`stop`, Ctrl-C, an empty queue (``until_empty``) or
        ``max_messages`` received; then wait for the invocations under way.

        Like Lambda's pollers, several long polls run at once (up to ``MAX_POLLERS``, and
        never more than ``max_concurrency``): a message is picked up by whichever answers
        first, and batches for concurrent invocations are gathered in parallel.
        """
        self._budget = max_messages
        self._until_empty = until_empty
        executor = ThreadPoolExecutor(
            max_workers=self._settings.max_concurrency, thread_name_prefix="invoke"
        )
        count = min(MAX_POLLERS, self._settings.max_concurrency)
        pollers = [
            threading.Thread(
                target=self._poll,
                args=(executor, n * POLLER_SPREAD_SECONDS / count),
                name=f"poller-{n}",
                daemon=True,
            )
            for n in range(count)
        ]
        for poller in pollers:
            poller.start()
        try:
            while any(poller.is_alive() for poller in pollers):
                for poller in pollers:
                    poller.join(timeout=0.2)
        except KeyboardInterrupt:
            # Ctrl-C: nothing is lost. Batches under way finish below. A poller still in a
            # long poll releases what it receives, or, if the process ends first, leaves
            # it to come back after the visibility timeout, undeleted.
            self._stopping.set()
            for poller in pollers:
                poller.join(timeout=1)
        finally:
            executor.shutdown(wait=True)
        if self._poller_error is not None:
            raise self._poller_error
        return self._stats

    def _poll(self, executor: ThreadPoolExecutor, delay: float) -> None:
        """One poller: take a free invocation slot, gather a batch, hand it over."""
        try:
            self._stopping.wait(delay)
            while not self._stopping.is_set():
                if not self._acquire_slot():
                    return
                limit = self._reserve(self._settings.batch_size)
                if limit == 0:  # max_messages are received or reserved by other pollers
                    self._slots.release()
                    return
                batch = self._assemble_batch(limit)
                self._unreserve(limit - len(batch))
                if not batch:
                    self._slots.release()
                    if self._until_empty and self._idle():
                        self._stopping.set()
                    continue
                with self._lock:
                    self._stats.in_flight += 1
                executor.submit(self._invoke, batch)
        except BaseException as error:  # an SQS error: stop everything, report it
            self._poller_error = error
            self._stopping.set()

    def _reserve(self, wanted: int) -> int:
        """How many more messages this poller may receive under ``max_messages``."""
        with self._lock:
            if self._budget is None:
                return wanted
            granted = min(wanted, self._budget)
            self._budget -= granted
            return granted

    def _unreserve(self, unused: int) -> None:
        with self._lock:
            if self._budget is not None:
                self._budget += unused

    # -- polling ------------------------------------------------------------------------

    def _acquire_slot(self) -> bool:
        """Wait for a free invocation slot (MaximumConcurrency); False once stopping."""
        while not self._stopping.is_set():
            if self._slots.acquire(timeout=0.2):
                return True
        return False

    def _assemble_batch(self, limit: int) -> list[MessageTypeDef]:
        """Receive up to ``limit`` messages for one invocation.

        Idle, it long-polls. Once a first message is in, it invokes at once when there is
        no batching window, else keeps receiving until the batch is full or the window,
        counted from that first message, has passed.
        """
        window = self._settings.batching_window_seconds
        batch: list[MessageTypeDef] = []
        deadline = 0.0
        try:
            while len(batch) < limit and not self._stopping.is_set():
                if batch:
                    remaining = deadline - time.monotonic()
                    if window <= 0 or remaining <= 0:
                        break
                    wait = min(SQS_MAX_WAIT_SECONDS, math.ceil(remaining))
                else:
                    wait = self._settings.wait_time_seconds
                messages = self._receive(min(SQS_MAX_MESSAGES, limit - len(batch)), wait)
                admitted = self._admit(messages)
                if admitted and not batch:
                    deadline = time.monotonic() + window
                batch.extend(admitted)
                if not messages and not batch:
                    break  # an idle poll came back empty: let the caller decide
        except BaseException:
            self._release(batch)
            raise
        if self._stopping.is_set() and batch:
            self._release(batch)  # stopping: hand them back rather than start a batch
            return []
        with self._lock:
            self._stats.received += len(batch)
        return batch

    def _receive(self, count: int, wait_seconds: int) -> list[MessageTypeDef]:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return response.get("Messages", [])

    def _admit(self, messages: list[MessageTypeDef]) -> list[MessageTypeDef]:
        """FIFO: refuse messages whose group is in flight in another batch.

        SQS itself never hands out a group with a message in flight; an emulator might.
        A refused message is made visible again at once, so it keeps its place.
        """
        if not self._settings.fifo:
            return messages
        admitted: list[MessageTypeDef] = []
        refused: list[MessageTypeDef] = []
        with self._lock:
            for message in messages:
                group = message.get("Attributes", {}).get("MessageGroupId", "")
                (refused if self._in_flight_groups[group] else admitted).append(message)
            self._stats.released += len(refused)
        self._release(refused)
        return admitted

    def _release(self, messages: Sequence[MessageTypeDef]) -> None:
        for start in range(0, len(messages), SQS_MAX_MESSAGES):
            chunk = messages[start : start + SQS_MAX_MESSAGES]
            self._sqs.change_message_visibility_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(chunk)
                ],
            )

    def _idle(self) -> bool:
        """No visible message left and no invocation under way."""
        with self._lock:
            if self._stats.in_flight:
                return False
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", "0")) == 0

    # -- invoking -----------------------------------------------------------------------

    def _invoke(self, batch: list[MessageTypeDef]) -> None:
        groups = [m.get("Attributes", {}).get("MessageGroupId", "") for m in batch]
        if self._settings.fifo:
            with self._lock:
                self._in_flight_groups.update(groups)
        started = time.monotonic()
        try:
            result = self._invoke_and_apply(batch, started)
        except Exception as error:  # an SQS call failed: report it, as the handler's failures
            message_ids = tuple(m["MessageId"] for m in batch)
            result = self._whole_batch_failed(
                message_ids, f"mapping error: {type(error).__name__}: {error}", started
            )
        finally:
            with self._lock:
                if self._settings.fifo:
                    self._in_flight_groups.subtract(groups)
                    self._in_flight_groups += Counter()  # drop the zero counts
                self._stats.in_flight -= 1
            self._slots.release()
        with self._lock:
            stats = self._stats
            stats.invocations += 1
            stats.deleted += result.deleted
            stats.failed += len(result.failed_ids)
            stats.whole_batch_failures += int(result.whole_batch_failed)
            stats.results.append(result)
        if self._on_batch is not None:
            self._on_batch(result, self._stats)

    def _invoke_and_apply(self, batch: list[MessageTypeDef], started: float) -> BatchResult:
        message_ids = tuple(m["MessageId"] for m in batch)
        event = lambda_event(batch, queue_arn=self._queue_arn, region=self._region)
        outcome = self._call_with_timeout(event)
        if outcome.error is not None:
            return self._whole_batch_failed(message_ids, outcome.error, started)
        try:
            failed = failed_message_ids(outcome.response, message_ids)
        except InvalidResponseError as error:
            return self._whole_batch_failed(message_ids, f"invalid response: {error}", started)
        succeeded = [m for m in batch if m["MessageId"] not in failed]
        deleted, not_deleted = self._delete(succeeded)
        reason = "partial" if failed else "ok"
        if not_deleted:
            # Processed, yet still in the queue: it comes back after the visibility timeout
            # and is processed again, as after a failed delete in Lambda (hence idempotency).
            reason = f"{reason}; {not_deleted} not deleted"
        return BatchResult(
            message_ids=message_ids,
            deleted=deleted,
            failed_ids=tuple(i for i in message_ids if i in failed),
            whole_batch_failed=False,
            reason=reason,
            seconds=time.monotonic() - started,
        )

    def _call_with_timeout(self, event: dict[str, Any]) -> _Outcome:
        """Run the handler in its own thread, waiting no longer than the function timeout.

        A thread cannot be killed: a handler that overruns goes on in the background, but
        its batch has already been failed, as Lambda fails a timed-out invocation.
        """
        outcome = _Outcome()
        context = FakeLambdaContext(timeout_seconds=self._settings.function_timeout_seconds)

        def call() -> None:
            try:
                outcome.response = self._handler(event, context)
            except Exception as error:
                outcome.error = f"handler raised {type(error).__name__}: {error}"

        thread = threading.Thread(target=call, name="handler", daemon=True)
        thread.start()
        thread.join(self._settings.function_timeout_seconds)
        if thread.is_alive():
            outcome.error = (
                f"timed out after {self._settings.function_timeout_seconds:g} s "
                "(the function timeout)"
            )
        return outcome

    def _whole_batch_failed(
        self, message_ids: tuple[str, ...], reason: str, started: float
    ) -> BatchResult:
        return BatchResult(
            message_ids=message_ids,
            deleted=0,
            failed_ids=message_ids,
            whole_batch_failed=True,
            reason=reason,
            seconds=time.monotonic() - started,
        )

    def _delete(self, messages: Sequence[MessageTypeDef]) -> tuple[int, int]:
        """Delete ``messages``; how many were deleted, and how many SQS refused."""
        refused = 0
        for start in range(0, len(messages), SQS_MAX_MESSAGES):
            chunk = messages[start : start + SQS_MAX_MESSAGES]
            response = self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )
            refused += len(response.get("Failed", []))
        return len(messages) - refused, refused


@dataclass
class _Outcome:
    response: object = None
    error: str | None = None
