"""What the local event source mapping costs, against the emulator: ``sqsl bench-local``.

In one run, on queues of its own (deleted afterwards), filled with the project's sample
messages:

1. the ceiling: raw receive + delete throughput of the queue, with as many consumers as
   ``run`` has pollers;
2. ``run``'s throughput into a no-op function in its execution environments (worker
   processes, warm: what the mapping itself costs), and, for information, into the
   project's handler (its calls go to the project's tables and queues in the emulator, as
   ``sqsl up`` provisioned them);
3. send-to-invoke latency, p50 and p95, with the mapping idle in a long poll: from the
   send to the first line of the function, in its worker;
4. the cold start of an environment: its init duration (the handler's import, the
   REPORT's Init Duration) and the time from spawning the worker to its ready, for the
   no-op function and the project's handler;
5. the reference: the emulator's own event source mapping draining the same number of
   messages into a deployed no-op function.

Not a test: it prints figures and PASS/MISS against the targets (run >= 80% of the
ceiling, p50 latency <= 20 ms), and exits 0 unless ``--strict`` is given.
"""

from __future__ import annotations

import io
import json
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from . import config, esm
from .endpoint import Endpoint, resolve_endpoint
from .environments import ColdStart, ExecutionEnvironments, FunctionDefinition, lambda_variables
from .invocations import InitError
from .project import Project, QueueUrls, current
from .run_cli import DEFAULT_MAX_CONCURRENCY

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

RUN_TARGET_RATIO = 0.8
LATENCY_TARGET_MS = 20.0
# FIFO: the bench queues' messages are spread over this many groups, so that the mapping
# may run as many batches at once as a standard queue allows.
FIFO_GROUPS = 50
# A function that does nothing: what is left to measure is the mapping.
NOOP_FUNCTION_CODE = "def handler(event, context):\n    return {'batchItemFailures': []}\n"
# A function that says when it started: the latency's end (a success response may carry
# other keys, which the mapping ignores as Lambda does).
TIMING_FUNCTION_CODE = (
    "import time\n\n\ndef handler(event, context):\n"
    "    return {'batchItemFailures': [], 'startedAt': time.time()}\n"
)


class DrainError(RuntimeError):
    """The mapping did not delete every message: the function reported failures."""


def concurrency(project: Project) -> int:
    """The mapping's concurrency: the project's ``maximum_concurrency``, else run's default."""
    return project.mapping.maximum_concurrency or DEFAULT_MAX_CONCURRENCY


def pollers(project: Project) -> int:
    """How many long polls ``run`` keeps open: the ceiling is measured with as many."""
    return min(esm.MAX_POLLERS, concurrency(project))


def main(
    *,
    messages: int = 2000,
    latency_samples: int = 40,
    rounds: int = 3,
    strict: bool = False,
    skip_reference: bool = False,
    project: Project | None = None,
) -> int:
    """Run the measurements and print them; 1 on a miss with ``strict``, else 0.

    Raises :class:`~.endpoint.NoEndpointError` when no emulator is known, and
    :class:`DrainError` when ``run`` did not deliver every message to the no-op function.
    """
    if messages < 1 or latency_samples < 1 or rounds < 1:
        raise ValueError("--messages, --latency-samples and --rounds must be at least 1")
    project = project or current()
    endpoint = resolve_endpoint(project=project)
    os.environ.update(endpoint.environment())
    sqs = endpoint.sqs()
    print(f"Endpoint {endpoint.url} ({endpoint.source}); {messages} messages per run")

    handler_name = project.function.handler_module
    with tempfile.TemporaryDirectory(prefix="sqsl-bench-") as folder, ExitStack() as stack:
        code = Path(folder)
        (code / "noop.py").write_text(NOOP_FUNCTION_CODE, encoding="utf-8")
        (code / "timing.py").write_text(TIMING_FUNCTION_CODE, encoding="utf-8")
        # Started before the clock does, every environment warm: a cold start is not
        # polling (it is measured on its own).
        noop = stack.enter_context(
            environments_of(bench_function(project, code, "noop.handler"), project)
        )
        noop_starts = noop.start(count=concurrency(project))
        handler: ExecutionEnvironments | None = None
        handler_starts: list[ColdStart] = []
        try:
            handler = stack.enter_context(environments_of(project_function(project, sqs), project))
            handler_starts = handler.start(count=concurrency(project))
        except (InitError, ClientError, BotoCoreError) as error:
            print(f"  {handler_name}: not measured ({error})")
            handler = None
        # Rounds alternate the kinds, so a busy spell of a shared machine hits them alike.
        ceilings: list[float] = []
        noops: list[float] = []
        handled: list[float] = []
        for _ in range(rounds):
            ceilings.append(measure(sqs, project, messages, raw_receive_delete(project)))
            noops.append(measure(sqs, project, messages, mapping_drain(project, noop)))
            if handler is not None:
                try:
                    handled.append(measure(sqs, project, messages, mapping_drain(project, handler)))
                except DrainError as error:
                    print(f"  {handler_name}: not measured ({error}; see `sqsl run` for why)")
                    handler, handled = None, []
        ceiling, local = max(ceilings), max(noops)
        print(_row("raw receive+delete (ceiling)", ceiling, f"{pollers(project)} consumers"))
        print(_row("run, no-op function", local, f"{local / ceiling:.0%} of ceiling"))
        if handled:
            best = max(handled)
            print(_row(f"run, {handler_name}", best, f"{best / ceiling:.0%} of ceiling"))
        print(f"  (best of {rounds} rounds each; {concurrency(project)} warm environments)")
        timing = stack.enter_context(
            environments_of(bench_function(project, code, "timing.handler"), project)
        )
        timing.start(count=concurrency(project))
        p50, p95 = latency(sqs, project, latency_samples, timing)
    print(f"  send-to-invoke latency           p50 {p50:6.1f} ms   p95 {p95:6.1f} ms")
    print(_cold_start_row("no-op function", noop_starts))
    if handler_starts:
        print(_cold_start_row(handler_name, handler_starts))
    if not skip_reference:
        try:
            reference = measure(
                sqs,
                project,
                messages,
                lambda s, url, arn, n: emulator_mapping(endpoint, project, s, arn, n),
            )
            print(_row("emulator's own ESM, no-op lambda", reference))
        except (ClientError, BotoCoreError, TimeoutError) as error:
            print(f"  emulator's own ESM: not measured ({error})")

    checks = verdicts(local / ceiling, p50)
    for line, _ in checks:
        print(line)
    return 1 if strict and not all(passed for _, passed in checks) else 0


def _row(label: str, rate: float, note: str = "") -> str:
    return f"  {label:<32} {rate:8.0f} msg/s" + (f"  ({note})" if note else "")


def _cold_start_row(label: str, starts: list[ColdStart]) -> str:
    """The median cold start of ``starts``: its init duration, and spawn to ready."""
    init = statistics.median(start.init_duration_ms for start in starts)
    ready = statistics.median(start.ready_ms for start in starts)
    return (
        f"  cold start, {label:<20} init {init:7.1f} ms   (ready {ready:.0f} ms after the "
        f"worker's spawn; median of {len(starts)})"
    )


def verdicts(share: float, p50: float) -> list[tuple[str, bool]]:
    """(line, passed) for each target: ``run``'s share of the ceiling and the p50 latency.

    Each verdict is taken on the figure as printed (a whole percentage, a tenth of a ms),
    so that a MISS never stands next to a figure that reads as the target.
    """
    percent, target_percent = f"{share:.0%}", f"{RUN_TARGET_RATIO:.0%}"
    latency = f"{p50:.1f}"
    checks = [
        (
            f"run at {percent} of the ceiling (target >= {target_percent})",
            float(percent[:-1]) >= float(target_percent[:-1]),
        ),
        (
            f"p50 latency {latency} ms (target <= {LATENCY_TARGET_MS:g} ms)",
            float(latency) <= LATENCY_TARGET_MS,
        ),
    ]
    return [(f"{'PASS' if passed else 'MISS'}  {line}", passed) for line, passed in checks]


Drain = Callable[["SQSClient", str, str, int], None]


def measure(sqs: SQSClient, project: Project, count: int, drain: Drain) -> float:
    """Fill a fresh queue with ``count`` messages, drain it, return messages per second."""
    url, arn = make_queue(sqs, project)
    try:
        fill(sqs, project, url, count)
        started = time.perf_counter()
        drain(sqs, url, arn, count)
        return count / (time.perf_counter() - started)
    finally:
        sqs.delete_queue(QueueUrl=url)


def make_queue(sqs: SQSClient, project: Project) -> tuple[str, str]:
    """A queue of the project's kind and visibility timeout (the mapping checks the
    function timeout against it)."""
    fifo = project.queue.fifo
    name = f"bench-{uuid.uuid4().hex[:8]}" + (".fifo" if fifo else "")
    attributes = {"VisibilityTimeout": str(project.queue.visibility_timeout_seconds)}
    if fifo:
        attributes |= {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def fill(sqs: SQSClient, project: Project, url: str, count: int) -> None:
    """``count`` distinct sample messages (new orders every time: the handler's tables
    keep what earlier runs recorded)."""
    from .samples import sample_orders

    bodies = [
        message.body
        for message in sample_orders(
            count, duplicates=0, run_id=f"bench-{uuid.uuid4().hex[:6]}", project=project
        )
    ]
    for start in range(0, count, 10):
        entries: list[Any] = []
        for index in range(start, min(count, start + 10)):
            entry: dict[str, Any] = {"Id": str(index - start), "MessageBody": bodies[index]}
            if project.queue.fifo:
                entry["MessageGroupId"] = f"g-{index % FIFO_GROUPS}"
            entries.append(entry)
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


def raw_receive_delete(project: Project) -> Drain:
    """Receive and delete ``count`` messages with as many consumers as ``run`` polls with."""
    consumers_count = pollers(project)

    def drain(sqs: SQSClient, url: str, arn: str, count: int) -> None:
        remaining = count
        lock = threading.Lock()

        def consume() -> None:
            nonlocal remaining
            while True:
                # Reserve what this receive may take, as run's pollers do: no consumer
                # waits in a long poll for messages another one already holds.
                with lock:
                    wanted = min(10, remaining)
                    remaining -= wanted
                if wanted == 0:
                    return
                # The same receive as the mapping's: every attribute a Lambda record carries.
                response = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=wanted,
                    WaitTimeSeconds=1,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
                messages = response.get("Messages", [])
                if messages:
                    sqs.delete_message_batch(
                        QueueUrl=url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                            for i, m in enumerate(messages)
                        ],
                    )
                with lock:
                    remaining += wanted - len(messages)

        consumers = [threading.Thread(target=consume) for _ in range(consumers_count)]
        for consumer in consumers:
            consumer.start()
        for consumer in consumers:
            consumer.join()

    return drain


def environments_of(function: FunctionDefinition, project: Project) -> ExecutionEnvironments:
    """As many execution environments of ``function`` as ``run`` would use."""
    return ExecutionEnvironments(function, max_environments=concurrency(project))


def _base_environment(
    project: Project, function_name: str, handler: str, code: Path
) -> dict[str, str]:
    # Quiet logs: what is measured is the loop, not the terminal.
    return {
        **os.environ,
        "LOG_LEVEL": "ERROR",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        **lambda_variables(
            function_name=function_name,
            handler=handler,
            code_dir=code,
            memory_mb=project.function.memory_mb,
            region=project.region,
        ),
    }


def bench_function(project: Project, code: Path, handler: str) -> FunctionDefinition:
    """One of the bench's own functions (``code`` holds it), with the project's memory."""
    name = f"bench-{handler.split('.')[0]}"
    return FunctionDefinition(
        name=name,
        handler=handler,
        code_dir=code,
        memory_mb=project.function.memory_mb,
        region=project.region,
        environment=_base_environment(project, name, handler, code),
    )


def project_function(project: Project, sqs: SQSClient) -> FunctionDefinition:
    """The project's function, in the environment of its resources in the emulator."""
    resources = project.resources()
    urls: dict[str, str] = {}
    for role, name in (("source", resources.source_queue), ("dlq", resources.dead_letter_queue)):
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        urls[role] = url
        urls[f"{role}_arn"] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
    variables: Mapping[str, str] = project.environment(
        resources,
        QueueUrls(
            source_url=urls["source"],
            source_arn=urls["source_arn"],
            dead_letter_url=urls["dlq"],
            dead_letter_arn=urls["dlq_arn"],
        ),
    )
    function = project.function
    environment = _base_environment(project, function.name, function.handler, project.code_dir)
    return FunctionDefinition(
        name=function.name,
        handler=function.handler,
        code_dir=project.code_dir,
        memory_mb=function.memory_mb,
        region=project.region,
        environment={**environment, **variables},
    )


def loop_settings(project: Project, *, wait_time_seconds: int) -> esm.MappingSettings:
    return esm.MappingSettings(
        batch_size=min(project.mapping.batch_size, esm.SQS_MAX_MESSAGES),
        batching_window_seconds=0,
        max_concurrency=concurrency(project),
        function_timeout_seconds=project.function.timeout_seconds,
        fifo=project.queue.fifo,
        wait_time_seconds=wait_time_seconds,
    )


def mapping_drain(project: Project, environments: ExecutionEnvironments) -> Drain:
    """Drain with ``run``'s local mapping into the function of ``environments``."""

    def drain(sqs: SQSClient, url: str, arn: str, count: int) -> None:
        mapping = esm.LocalEventSourceMapping(
            sqs,
            queue_url=url,
            queue_arn=arn,
            region=project.region,
            environments=environments,
            settings=loop_settings(project, wait_time_seconds=1),
        )
        stats = mapping.run(max_messages=count)
        if stats.deleted != count:
            raise DrainError(f"run deleted {stats.deleted} of {count} messages")

    return drain


def latency(
    sqs: SQSClient, project: Project, samples: int, timing: ExecutionEnvironments
) -> tuple[float, float]:
    """Milliseconds from send to the function's first line (``timing``'s function says
    when it started), the mapping idle in between."""
    url, arn = make_queue(sqs, project)
    started: dict[str, float] = {}
    arrived = threading.Event()

    def on_batch(result: esm.BatchResult, stats: esm.MappingStats) -> None:
        invocation = result.invocation
        if invocation is not None and isinstance(invocation.response, dict):
            for message_id in result.message_ids:
                started[message_id] = float(invocation.response["startedAt"])
            arrived.set()

    mapping = esm.LocalEventSourceMapping(
        sqs,
        queue_url=url,
        queue_arn=arn,
        region=project.region,
        environments=timing,
        settings=loop_settings(project, wait_time_seconds=esm.SQS_MAX_WAIT_SECONDS),
        on_batch=on_batch,
    )
    poller = threading.Thread(target=mapping.run, daemon=True)
    poller.start()
    delays: list[float] = []
    pauses = random.Random(0)  # the same pauses every run
    try:
        time.sleep(0.5)  # the mapping is now idle in a long poll
        for index in range(samples):
            body = json.dumps({"latency": index, "run": url})
            arrived.clear()
            sent = time.time()
            if project.queue.fifo:
                response = sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g-1")
            else:
                response = sqs.send_message(QueueUrl=url, MessageBody=body)
            if not arrived.wait(25):
                raise DrainError("a message was not delivered within 25 s")
            delays.append((started[response["MessageId"]] - sent) * 1000)
            # A pause of another length each time. With a fixed one, every message would
            # be sent at the same point of the emulator's re-check cycle (the invocation
            # before it started at one of its checks), and the figure would be that
            # point's, not that of a message sent at any time.
            time.sleep(pauses.uniform(0.05, 0.05 + esm.POLLER_SPREAD_SECONDS))
    finally:
        mapping.stop()
        poller.join(timeout=25)
        sqs.delete_queue(QueueUrl=url)
    delays.sort()
    return statistics.median(delays), delays[int(0.95 * (len(delays) - 1))]


def emulator_mapping(
    endpoint: Endpoint, project: Project, sqs: SQSClient, arn: str, count: int
) -> None:
    """Deploy a no-op function, map the queue to it, and wait until the queue is empty."""
    import boto3

    lambda_client = boto3.client(
        "lambda",
        endpoint_url=endpoint.url,
        region_name=project.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    name = f"bench-noop-{uuid.uuid4().hex[:8]}"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("noop.py", NOOP_FUNCTION_CODE)
    lambda_client.create_function(
        FunctionName=name,
        Runtime=project.function.runtime,  # type: ignore[arg-type]  # one of project.RUNTIMES
        Role=f"arn:aws:iam::{config.ACCOUNT_ID}:role/bench",
        Handler="noop.handler",
        Code={"ZipFile": archive.getvalue()},
        Timeout=30,
    )
    url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
    mapping = lambda_client.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName=name,
        BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            if (
                attributes["ApproximateNumberOfMessages"]
                == attributes["ApproximateNumberOfMessagesNotVisible"]
                == "0"
            ):
                return
            time.sleep(0.05)
        raise TimeoutError("the emulator's mapping did not drain the queue in 300 s")
    finally:
        lambda_client.delete_event_source_mapping(UUID=mapping["UUID"])
        lambda_client.delete_function(FunctionName=name)
