"""A local event source mapping: poll a queue, invoke the function in its execution
environments, apply the response by AWS's rules.

What it reproduces, from "Lambda parameters for Amazon SQS event source mappings" and
"Handling errors for an SQS event source in Lambda":

- batches of up to ``batch_size`` records; with a batching window the poller keeps
  receiving until the batch is full or the window has passed, without one it invokes as
  soon as a receive returns messages;
- at most ``max_concurrency`` invocations at once (``ScalingConfig.MaximumConcurrency``),
  each in an execution environment of its own (:mod:`.environments`: a worker process,
  killed when it runs past the function timeout or the function's memory);
- the parameters CreateEventSourceMapping accepts (:func:`refusals`), checked before
  anything is polled;
- ``ReportBatchItemFailures``: the records of the response's ``batchItemFailures`` stay
  in the queue and every other record is deleted. The whole batch fails, nothing deleted,
  when the handler raises, times out, returns something that is not JSON of that shape,
  or names an ``itemIdentifier`` that is empty or not a messageId of the batch;
- failed messages are not touched: they come back after the queue's visibility timeout
  with a higher receive count, and the queue's redrive policy moves them to the DLQ;
- FIFO: two in-flight batches never hold the same message group.

Two things are local only. ``retry_after_seconds`` (a local pace, for emulators) makes a
failed message visible again that many seconds after its failure (ChangeMessageVisibility),
where Lambda leaves it for the rest of the visibility timeout: retries and the redrive to
the DLQ then take seconds, not minutes. And stopping (``stop()``, Ctrl-C) waits for the long
polls still open and releases what they receive, so nothing stays hidden after the process.

Under ``run --debug`` the environment is this process (:mod:`.in_process`), so that a
debugger's breakpoints work in the handler.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .invocations import Environments, InitError, Invocation
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
# An emulator may answer a long poll only when it re-checks the queue, on a timer
# (MiniStack: every 100 ms from the poll's start). Idle pollers start their long polls at
# phases of this period spread evenly among them, so that one of them answers soon after a
# message arrives. (SQS answers at once: the phases cost nothing there.)
POLLER_SPREAD_SECONDS = 0.1
# CreateEventSourceMapping's limits for an SQS source ("Lambda parameters for Amazon SQS
# event source mappings", and ScalingConfig's).
MAX_BATCH_SIZE = 10_000
MAX_FIFO_BATCH_SIZE = 10
MAX_BATCHING_WINDOW_SECONDS = 300
MIN_MAX_CONCURRENCY = 2
MAX_MAX_CONCURRENCY = 1000


@dataclass(frozen=True)
class MappingSettings:
    """The event source mapping's settings (``run`` takes the project's by default)."""

    batch_size: int
    batching_window_seconds: float
    max_concurrency: int
    function_timeout_seconds: float
    fifo: bool
    # Long-poll wait of an idle receive; 20 s as the ESM does, shorter in scripts and tests.
    wait_time_seconds: int = SQS_MAX_WAIT_SECONDS
    # Local pace (emulators only): a failed message is made visible again this many seconds
    # after its failure; None leaves it for the queue's visibility timeout, as Lambda does.
    retry_after_seconds: int | None = None


@dataclass(frozen=True)
class QueueSettings:
    """What the source queue decides about retries, read from it when a run starts."""

    visibility_timeout_seconds: int
    max_receive_count: int | None  # None: no redrive policy, a failed message comes back forever
    dead_letter_queue_arn: str | None

    @classmethod
    def read(cls, sqs: SQSClient, queue_url: str) -> QueueSettings:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"]
        )["Attributes"]
        redrive: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
        count = redrive.get("maxReceiveCount")
        return cls(
            visibility_timeout_seconds=int(attributes.get("VisibilityTimeout", "30")),
            max_receive_count=int(count) if count is not None else None,
            dead_letter_queue_arn=redrive.get("deadLetterTargetArn"),
        )


@dataclass(frozen=True)
class Retry:
    """A failed message, left in the queue: when it comes back, how often it was received."""

    message_id: str
    group: str | None  # its FIFO message group
    receive_count: int  # ApproximateReceiveCount of the receive that failed
    returns_at: float  # time.time() at which it is visible again


@dataclass(frozen=True)
class BatchResult:
    """What happened to one invocation's batch."""

    message_ids: tuple[str, ...]
    deleted: int
    failed_ids: tuple[str, ...]
    whole_batch_failed: bool
    reason: str  # "ok", "partial", or why the whole batch failed
    seconds: float
    retries: tuple[Retry, ...] = ()  # the failed messages, in batch order
    invocation: Invocation | None = None  # None when no invocation ran (a mapping error)


@dataclass
class MappingStats:
    received: int = 0
    invocations: int = 0
    deleted: int = 0
    failed: int = 0
    whole_batch_failures: int = 0
    # How the invocations went: new environments (their init ran first), and those killed
    # or dead, each failing its batch.
    cold_starts: int = 0
    timeouts: int = 0
    out_of_memory: int = 0
    crashes: int = 0  # the runtime exited (Runtime.ExitError)
    past_timeout: int = 0  # --debug: ran past the timeout, which was not enforced
    released: int = 0  # FIFO messages handed back because their group was in flight
    in_flight: int = 0
    results: list[BatchResult] = field(default_factory=list)
    # Failed messages not received again yet, by messageId.
    waiting: dict[str, Retry] = field(default_factory=dict)
    # Failed messages that left the queue without coming back to this run: with an empty
    # queue at the end of an ``until_empty`` run, the redrive policy moved them to the DLQ.
    dead_lettered: list[Retry] = field(default_factory=list)
    # Messages released when the run stopped: what open long polls received after it was
    # told to stop, and the batch of an environment whose init failed.
    released_on_stop: int = 0


@dataclass(frozen=True)
class Refusal:
    """A mapping parameter that CreateEventSourceMapping refuses, in AWS's words."""

    setting: str  # the MappingSettings field: batch_size, batching_window_seconds, ...
    value: float
    message: str


class MappingSettingsError(ValueError):
    """The mapping's settings are ones AWS would refuse: nothing was polled."""

    def __init__(self, refused: Sequence[Refusal]) -> None:
        super().__init__("; ".join(f"{r.setting} = {r.value:g}: {r.message}" for r in refused))
        self.refused = tuple(refused)


def refusals(
    settings: MappingSettings, *, visibility_timeout_seconds: float, in_process: bool = False
) -> list[Refusal]:
    """What CreateEventSourceMapping (and the function's settings beside the queue's)
    would refuse of ``settings``, each with AWS's message; empty when all is well.

    ``in_process``: ``run --debug``, whose one environment in this process is no mapping
    setting, so a concurrency of 1 is allowed.
    """
    found: list[Refusal] = []

    def refuse(setting: str, value: float, message: str) -> None:
        found.append(Refusal(setting, value, message))

    size, window = settings.batch_size, settings.batching_window_seconds
    if size < 1:
        refuse("batch_size", size, _constraint("batchSize", size, "greater", 1))
    elif settings.fifo and size > MAX_FIFO_BATCH_SIZE:
        refuse("batch_size", size, "Maximum batch size must be between 1 and 10 inclusive")
    elif size > MAX_BATCH_SIZE:
        refuse("batch_size", size, _constraint("batchSize", size, "less", MAX_BATCH_SIZE))
    field = "maximumBatchingWindowInSeconds"
    if window < 0:
        refuse("batching_window_seconds", window, _constraint(field, window, "greater", 0))
    elif window > MAX_BATCHING_WINDOW_SECONDS:
        message = _constraint(field, window, "less", MAX_BATCHING_WINDOW_SECONDS)
        refuse("batching_window_seconds", window, message)
    elif settings.fifo and window > 0:
        refuse(
            "batching_window_seconds", window, "Batching window is not supported for FIFO queues"
        )
    elif not settings.fifo and size > SQS_MAX_MESSAGES and window <= 0:
        refuse(
            "batching_window_seconds",
            window,
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is "
            "greater than 10",
        )
    timeout = settings.function_timeout_seconds
    if timeout > visibility_timeout_seconds:
        refuse(
            "function_timeout_seconds",
            timeout,
            f"Queue visibility timeout: {visibility_timeout_seconds:g} seconds is less than "
            f"Function timeout: {timeout:g} seconds",
        )
    concurrency = settings.max_concurrency
    field = "scalingConfig.maximumConcurrency"
    if concurrency < (1 if in_process else MIN_MAX_CONCURRENCY):
        message = _constraint(field, concurrency, "greater", MIN_MAX_CONCURRENCY)
        refuse("max_concurrency", concurrency, message)
    elif concurrency > MAX_MAX_CONCURRENCY:
        message = _constraint(field, concurrency, "less", MAX_MAX_CONCURRENCY)
        refuse("max_concurrency", concurrency, message)
    return found


def _constraint(field: str, value: float, direction: str, bound: int) -> str:
    """The API's own refusal of a number out of its range."""
    return (
        f"1 validation error detected: Value '{value:g}' at '{field}' failed to satisfy "
        f"constraint: Member must have value {direction} than or equal to {bound}"
    )


class InvalidResponseError(ValueError):
    """The handler's response does not follow the partial batch response contract."""


def failed_message_ids(response: object, message_ids: Sequence[str]) -> set[str]:
    """The messageIds a partial batch response reports as failed.

    ``None``, ``""``, ``[]``, ``{}`` and an empty or null ``batchItemFailures`` mean
    success ("Handling errors for an SQS event source in Lambda"). Raises
    :class:`InvalidResponseError` where Lambda would fail the whole batch.
    """
    try:
        response = json.loads(json.dumps(response))
    except (TypeError, ValueError) as error:
        raise InvalidResponseError(f"response is not JSON: {error}") from None
    if response is None or response == "" or response == []:
        return set()
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
    """Polls ``queue_url`` and invokes the function in ``environments`` the way Lambda's
    SQS poller does.

    The caller owns ``environments`` (and closes them): :class:`.environments.
    ExecutionEnvironments` for worker processes, :class:`.in_process.InProcessEnvironment`
    for the handler in this process.
    """

    def __init__(
        self,
        sqs: SQSClient,
        *,
        queue_url: str,
        queue_arn: str,
        region: str,
        environments: Environments,
        settings: MappingSettings,
        on_batch: Callable[[BatchResult, MappingStats], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
        on_tick: Callable[[MappingStats], None] | None = None,
        queue_settings: QueueSettings | None = None,
    ) -> None:
        """``queue_settings``: the queue's, when the caller has read them already."""
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._region = region
        self._environments = environments
        self._settings = settings
        self._on_batch = on_batch
        self._on_notice = on_notice
        self._on_tick = on_tick
        self._stats = MappingStats()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(settings.max_concurrency)
        self._in_flight_groups: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._budget: int | None = None
        self._until_empty = False
        self._emptied = False
        self._poller_error: BaseException | None = None
        # Pollers not yet returned, and set once none is left (see _join).
        self._pollers_left = 0
        self._pollers_done = threading.Event()
        # Messages received by a poller and not yet handed to an invocation or released.
        self._held = 0
        # Long polls under way (a receive call not yet returned).
        self._open_polls = 0
        # When each message of a batch being gathered or invoked was received (time.time()).
        self._received_at: dict[str, float] = {}
        self._queue: QueueSettings | None = queue_settings
        # What polls received after the run was told to stop, released once all returned.
        self._stopped_with: list[MessageTypeDef] = []
        # The first init that failed while the run went on: it stops the run, then is raised.
        self._init_error: InitError | None = None
        # Where the phases of the pollers' long polls are counted from (time.monotonic()).
        self._phase_origin = 0.0

    @property
    def stats(self) -> MappingStats:
        return self._stats

    @property
    def queue(self) -> QueueSettings:
        """The source queue's visibility timeout and redrive policy (read once)."""
        if self._queue is None:
            self._queue = QueueSettings.read(self._sqs, self._queue_url)
        return self._queue

    def stop(self) -> None:
        """Stop polling; invocations under way finish and their responses are applied, and
        what the long polls still open receive is released."""
        self._stopping.set()

    def run(self, *, until_empty: bool = False, max_messages: int | None = None) -> MappingStats:
        """Poll until :meth:`stop`, Ctrl-C, an empty queue (``until_empty``) or
        ``max_messages`` received; then wait for the invocations under way.

        Before anything is polled, the settings are checked as CreateEventSourceMapping
        checks them (:class:`MappingSettingsError`), and one execution environment goes
        through its init phase, so that a handler that does not import is found with
        nothing received (:class:`.invocations.InitError`). An init that fails later (a
        replacement environment's) stops the run as Ctrl-C does, its batch released, and
        is raised once the run has stopped.

        Like Lambda's pollers, several long polls run at once (up to ``MAX_POLLERS``, and
        never more than ``max_concurrency``): a message is picked up by whichever answers
        first, and batches for concurrent invocations are gathered in parallel.

        ``until_empty`` ends once the queue is empty: no message visible, in flight or
        delayed, none held by a poller and no invocation under way. Failed messages waiting
        for their visibility timeout are still in the queue: the run waits for them to
        come back, or for the redrive policy to move them to the DLQ.
        """
        self._budget = max_messages
        self._until_empty = until_empty
        refused = refusals(
            self._settings,
            visibility_timeout_seconds=self.queue.visibility_timeout_seconds,
            in_process=self._environments.in_process,
        )
        if refused:
            raise MappingSettingsError(refused)
        self._environments.start()
        executor = ThreadPoolExecutor(
            max_workers=self._settings.max_concurrency, thread_name_prefix="invoke"
        )
        count = min(MAX_POLLERS, self._settings.max_concurrency)
        self._pollers_left = count
        self._pollers_done.clear()
        self._phase_origin = time.monotonic()
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
        abandoned = False
        try:
            self._join()
        except KeyboardInterrupt:
            # Ctrl-C: batches under way finish below. Long polls still open would take
            # messages sent now and hide them for the visibility timeout if the process
            # ended first: wait for them, and release what they receive.
            self._stopping.set()
            with self._lock:
                open_polls = self._open_polls
            if open_polls:
                self._notice(
                    f"Stopping: waiting for {open_polls} open long "
                    f"poll{'s' if open_polls > 1 else ''} to return (at most "
                    f"{self._settings.wait_time_seconds} s) to release what they receive. "
                    "Ctrl-C again to quit now."
                )
            try:
                self._join()
            except KeyboardInterrupt:
                abandoned = True
                self._notice(
                    "Quit: what the open long polls receive now stays hidden until the "
                    f"visibility timeout ({self.queue.visibility_timeout_seconds} s) ends."
                )
        finally:
            with self._lock:
                stopped_with, self._stopped_with = self._stopped_with, []
            try:
                self._release(stopped_with)
            finally:
                executor.shutdown(wait=not abandoned, cancel_futures=abandoned)
        if self._poller_error is not None:
            raise self._poller_error
        if self._init_error is not None:
            raise self._init_error
        if self._emptied:
            # The queue is empty, so failed messages that never came back were moved out
            # of it: by the redrive policy, to the DLQ.
            with self._lock:
                self._stats.dead_lettered.extend(self._stats.waiting.values())
                self._stats.waiting.clear()
        return self._stats

    def _join(self) -> None:
        """Wait until every poller has returned.

        Counted by the pollers themselves, not with ``Thread.join``: on CPython 3.11 and
        3.12, a Ctrl-C that interrupts ``join`` can mark a thread that is still in its long
        poll as stopped, and what that poll then receives would never be released.
        """
        ticked = 0.0
        while not self._pollers_done.wait(timeout=0.2):
            if self._on_tick is not None and time.monotonic() - ticked >= 0.5:
                ticked = time.monotonic()
                self._on_tick(self._stats)

    def _notice(self, text: str) -> None:
        if self._on_notice is not None:
            self._on_notice(text)

    def _poll(self, executor: ThreadPoolExecutor, phase: float) -> None:
        """One poller: take a free invocation slot, gather a batch, hand it over.

        After a batch it receives again at once (without waiting: the queue is busy);
        once a receive comes back empty the queue is idle, and its long polls start at
        its ``phase`` (see POLLER_SPREAD_SECONDS).
        """
        busy = False
        try:
            while not self._stopping.is_set():
                if not self._acquire_slot():
                    return
                limit = self._reserve(self._settings.batch_size)
                if limit == 0:  # max_messages are received or reserved by other pollers
                    self._slots.release()
                    return
                batch = self._assemble_batch(limit, phase=None if busy else phase)
                self._unreserve(limit - len(batch))
                busy = bool(batch)
                if not batch:
                    self._slots.release()
                    if self._until_empty and self._idle():
                        self._emptied = True
                        self._stopping.set()
                    continue
                with self._lock:
                    # Handed over: from now on in flight, no longer held by this poller.
                    self._stats.in_flight += 1
                    self._held -= len(batch)
                executor.submit(self._invoke, batch)
        except BaseException as error:  # an SQS error: stop everything, report it
            self._poller_error = error
            self._stopping.set()
        finally:
            with self._lock:
                self._pollers_left -= 1
                if self._pollers_left == 0:
                    self._pollers_done.set()

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

    def _assemble_batch(self, limit: int, *, phase: float | None) -> list[MessageTypeDef]:
        """Receive up to ``limit`` messages for one invocation.

        Idle (``phase`` given), it long-polls from its phase; after a batch (``phase``
        None), its first receive does not wait. Once a first message is in, it invokes at
        once when there is no batching window, else keeps receiving until the batch is
        full or the window, counted from that first message, has passed. Every message it
        receives counts as held (see :meth:`_idle`) until it is handed over or released.
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
                elif phase is None:
                    wait = 0
                else:
                    self._wait_for_phase(phase)
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
            # Stopping: hand them back rather than start a batch, once every poll of this
            # run has returned (see run()). Released now, another of its open polls would
            # receive them again, and each receive counts towards the DLQ.
            with self._lock:
                self._stopped_with.extend(batch)
                self._stats.released_on_stop += len(batch)
            return []
        with self._lock:
            self._stats.received += len(batch)
        return batch

    def _wait_for_phase(self, phase: float) -> None:
        """Until the next time this poller's ``phase`` of POLLER_SPREAD_SECONDS comes
        round (at most that long), or the run stops."""
        elapsed = time.monotonic() - self._phase_origin
        self._stopping.wait((phase - elapsed) % POLLER_SPREAD_SECONDS)

    def _receive(self, count: int, wait_seconds: int) -> list[MessageTypeDef]:
        with self._lock:
            self._open_polls += 1
        try:
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=count,
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            now = time.time()
            with self._lock:
                self._held += len(messages)
                for message in messages:
                    self._received_at[message["MessageId"]] = now
                    self._stats.waiting.pop(message["MessageId"], None)  # it came back
            return messages
        finally:
            with self._lock:
                self._open_polls -= 1

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
        """Make ``messages`` visible again at once; they are no longer held."""
        try:
            self._change_visibility(messages, 0)
        finally:
            with self._lock:
                self._held -= len(messages)
                for message in messages:
                    self._received_at.pop(message["MessageId"], None)

    def _change_visibility(self, messages: Sequence[MessageTypeDef], seconds: int) -> int:
        """ChangeMessageVisibility for ``messages``, in batches; how many SQS refused."""
        refused = 0
        for start in range(0, len(messages), SQS_MAX_MESSAGES):
            chunk = messages[start : start + SQS_MAX_MESSAGES]
            response = self._sqs.change_message_visibility_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "ReceiptHandle": m["ReceiptHandle"],
                        "VisibilityTimeout": seconds,
                    }
                    for i, m in enumerate(chunk)
                ],
            )
            refused += len(response.get("Failed", []))
        return refused

    def _idle(self) -> bool:
        """The queue is empty: no message held by a poller, no invocation under way, and
        none visible, in flight or delayed in the queue.

        A poller's empty receive alone proves nothing: other pollers may be gathering a
        batch (for up to the batching window) with the rest of the messages, and failed
        messages are in flight until their visibility timeout ends.
        """
        with self._lock:
            if self._stats.in_flight or self._held:
                return False
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        if any(int(value) for value in attributes.values()):
            return False
        with self._lock:  # a receive may have returned messages meanwhile
            return not (self._stats.in_flight or self._held)

    # -- invoking -----------------------------------------------------------------------

    def _invoke(self, batch: list[MessageTypeDef]) -> None:
        groups = [m.get("Attributes", {}).get("MessageGroupId", "") for m in batch]
        if self._settings.fifo:
            with self._lock:
                self._in_flight_groups.update(groups)
        started = time.monotonic()
        result: BatchResult | None = None
        try:
            try:
                result = self._invoke_and_apply(batch, started)
            except InitError as error:  # no environment for it: the run stops
                self._stop_for(error, batch)
                return
            except Exception as error:  # an SQS call failed: report it as a failure
                message_ids = tuple(m["MessageId"] for m in batch)
                result = self._whole_batch_failed(
                    message_ids, f"mapping error: {type(error).__name__}: {error}", started
                )
            result = replace(result, retries=self._retries(batch, result.failed_ids))
        finally:
            with self._lock:
                for message in batch:
                    self._received_at.pop(message["MessageId"], None)
                if self._settings.fifo:
                    self._in_flight_groups.subtract(groups)
                    self._in_flight_groups += Counter()  # drop the zero counts
                self._stats.in_flight -= 1
            self._slots.release()
        invocation = result.invocation
        with self._lock:
            stats = self._stats
            stats.invocations += 1
            stats.deleted += result.deleted
            stats.failed += len(result.failed_ids)
            stats.whole_batch_failures += int(result.whole_batch_failed)
            if invocation is not None:
                stats.cold_starts += int(invocation.cold_start)
                stats.timeouts += int(invocation.outcome == "timeout")
                stats.out_of_memory += int(invocation.outcome == "out_of_memory")
                stats.crashes += int(invocation.outcome == "exit_error")
                stats.past_timeout += int(invocation.past_timeout)
            stats.results.append(result)
            for retry in result.retries:
                stats.waiting[retry.message_id] = retry
        if self._on_batch is not None:
            self._on_batch(result, self._stats)

    def _stop_for(self, error: InitError, batch: Sequence[MessageTypeDef]) -> None:
        """A new environment's init failed: stop the run, which then raises ``error``.
        Nothing ran on ``batch``: it is released with what the open polls receive, once
        they have returned (released now, one of them would receive it again)."""
        with self._lock:
            if self._init_error is None:
                self._init_error = error
            self._held += len(batch)  # held again, until released
            self._stopped_with.extend(batch)
            self._stats.released_on_stop += len(batch)
        self._stopping.set()

    def _invoke_and_apply(self, batch: list[MessageTypeDef], started: float) -> BatchResult:
        message_ids = tuple(m["MessageId"] for m in batch)
        event = lambda_event(batch, queue_arn=self._queue_arn, region=self._region)
        # Returns once the invocation is over: a timed-out or out-of-memory one has been
        # killed by then, so none of its code runs once its batch is failed below.
        invocation = self._environments.invoke(
            event, timeout_seconds=self._settings.function_timeout_seconds
        )
        if not invocation.succeeded:
            failure = self._whole_batch_failed(message_ids, invocation.failure_reason(), started)
            return replace(failure, invocation=invocation)
        try:
            failed = failed_message_ids(invocation.response, message_ids)
        except InvalidResponseError as error:
            failure = self._whole_batch_failed(message_ids, f"invalid response: {error}", started)
            return replace(failure, invocation=invocation)
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
            invocation=invocation,
        )

    def _retries(
        self, batch: Sequence[MessageTypeDef], failed_ids: Iterable[str]
    ) -> tuple[Retry, ...]:
        """The failed messages of ``batch``: when each comes back, and at which receive it
        failed. With a local pace they are made visible again ``retry_after_seconds`` from
        now; else they come back when the visibility timeout, counted from their receive,
        ends."""
        failed = set(failed_ids)
        messages = [m for m in batch if m["MessageId"] in failed]
        if not messages:
            return ()
        pace = self._settings.retry_after_seconds
        now = time.time()
        refused = 0
        if pace is not None:
            try:
                refused = self._change_visibility(messages, pace)
            except Exception as error:  # they come back after the visibility timeout instead
                refused = len(messages)
                self._notice(f"local pace not applied: {type(error).__name__}: {error}")
        visibility = self.queue.visibility_timeout_seconds
        with self._lock:
            received_at = {
                m["MessageId"]: self._received_at.get(m["MessageId"], now) for m in messages
            }
        return tuple(
            Retry(
                message_id=m["MessageId"],
                group=m.get("Attributes", {}).get("MessageGroupId"),
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                returns_at=(
                    now + pace
                    if pace is not None and not refused
                    else received_at[m["MessageId"]] + visibility
                ),
            )
            for m in messages
        )

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
