"""What the handler costs, per record and at import (the cold start): ``sqsl bench``.

1. Per record: the project's handler runs batches of sample records (the project's sample
   messages, all valid and distinct), next to a bare ``try``/``except`` loop over the same
   records and, for a handler built on Powertools' batch utility, next to Powertools' own
   bare processor driven by ``process_partial_response``. Its AWS calls go to moto, in
   this process, where the project's tables and queues are created. The time spent inside
   those calls (botocore's and moto's work) is taken off the handler's: in Lambda they are
   network round trips, and what moto costs is none of the handler's. What is left is all
   the handler does itself, its business logic's own work included (the tools do not swap
   any of the service's code). Best of N runs.
2. Import: a fresh interpreter imports the handler module, another imports only its
   dependencies (what the handler's package imports from outside the standard library);
   best of N runs each. The time the handler spends creating AWS SDK clients at import is
   shown apart and not counted: creating them in the init is Lambda's own advice, work
   the first invocation would do otherwise.

Not a test: it prints figures and PASS/MISS against the targets, and exits 0 either way
unless ``--strict`` is given. Run it on a quiet machine; the figures vary with the CPU.
The handler is imported as ``sqsl run`` imports it (:func:`.run_cli.load_handler`): its
environment set, its top-level package purged from ``sys.modules``, from the project's
code folder. Nothing of the service is imported by name.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from unittest import mock

from . import code_import
from .project import PYPROJECT, TABLE, Project, QueueUrls, SettingsError, current
from .run_cli import load_handler

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

Event = dict[str, Any]

DEFAULT_RECORDS = 1_000
DEFAULT_REPEATS = 15
# A handler on Powertools' batch utility may add at most 10% to Powertools' own bare
# processor, any other at most 20% to a bare try/except loop over the records ...
POWERTOOLS_TARGET_RATIO = 1.1
BARE_LOOP_TARGET_RATIO = 1.2
BARE_LOOP = "bare try/except loop"
POWERTOOLS_BATCH = "aws_lambda_powertools.utilities.batch"
# ... and at most 20 ms to the import of its dependencies (the cold start).
IMPORT_TARGET_MS = 20.0

# Credentials and region for moto and for the import of the handler, which may create its
# clients at import time; nothing reaches AWS.
BENCHMARK_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "benchmark",
    "AWS_SECRET_ACCESS_KEY": "benchmark",
}
# Variables that would send boto3 elsewhere than moto, or to a profile's credentials.
_UNSET = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE")


class BenchError(RuntimeError):
    """A measurement could not be taken (the handler failed valid records, an import failed)."""


@dataclass(frozen=True)
class Check:
    """A figure and its target (at most). The verdict is taken on the figure as printed,
    so that it never says MISS next to a value that reads as the target."""

    name: str
    value: float
    target: float
    unit: str
    digits: int = 2

    @property
    def shown(self) -> str:
        return f"{self.value:.{self.digits}f}"

    @property
    def passed(self) -> bool:
        return float(self.shown) <= self.target

    def line(self) -> str:
        verdict = "PASS" if self.passed else "MISS"
        target = f"target <= {self.target:g}{self.unit}"
        return f"{verdict}  {self.name}: {self.shown}{self.unit} ({target})"


def main(
    *,
    records: int = DEFAULT_RECORDS,
    repeats: int = DEFAULT_REPEATS,
    strict: bool = False,
    project: Project | None = None,
) -> int:
    """Run both measurements and print them; 1 on a miss with ``strict``, else 0."""
    if records < 1 or repeats < 1:
        raise ValueError("--records and --repeats must be at least 1")
    project = project or current()
    queue = "FIFO" if project.queue.fifo else "standard"
    print(
        f"{project.function.name}: handler {project.function.handler}, {queue} queue, "
        f"tables: {', '.join(project.tables) or 'none'}; Python {sys.version.split()[0]}"
    )
    checks = measure_records(records, repeats, project) + measure_imports(repeats, project)
    print()
    for check in checks:
        print(check.line())
    missed = [check for check in checks if not check.passed]
    if missed and strict:
        return 1
    if missed:
        print("(informational: run with --strict to exit 1 on a miss)")
    return 0


# Per record ------------------------------------------------------------------------------


def noop(payload: object) -> None:
    """The work of the baselines' records: nothing, so only the plumbing is measured."""


def parse_body(record: Any) -> None:
    """The baselines' record work without a record handler: the body parsed, no more."""
    noop(json.loads(record["body"]))


def bare_loop(
    event: Event, record_handler: Callable[[Any], object] = parse_body
) -> dict[str, list[dict[str, str]]]:
    """The least any partial-batch handler must do: each record's work, catch, collect."""
    failures: list[dict[str, str]] = []
    for record in event["Records"]:
        try:
            record_handler(record)
        except Exception:
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def bare_powertools(
    fifo: bool, record_handler: Callable[[Any], object] = parse_body
) -> Callable[[Event], object]:
    """Powertools' own batch processing with nothing around it, calling ``record_handler``."""
    batch: Any = importlib.import_module(POWERTOOLS_BATCH)
    processor = (
        batch.SqsFifoPartialProcessor(skip_group_on_error=True)
        if fifo
        else batch.BatchProcessor(event_type=batch.EventType.SQS)
    )

    def run(event: Event) -> object:
        return batch.process_partial_response(
            event=event, record_handler=record_handler, processor=processor
        )

    return run


@dataclass
class AwsCallTimer:
    """CPU time spent inside botocore's API calls (moto's work included) while installed.

    A call made while another is under way on the same thread (moto's own, if any) counts
    once, in the outer one.
    """

    seconds: float = 0.0
    calls: int = 0
    _depth: threading.local = field(default_factory=threading.local)

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0

    @contextmanager
    def installed(self) -> Iterator[AwsCallTimer]:
        from botocore.client import BaseClient

        original: Callable[..., Any] = BaseClient._make_api_call  # type: ignore[attr-defined]

        def timed(client: BaseClient, operation: str, parameters: Mapping[str, Any]) -> Any:
            depth = getattr(self._depth, "value", 0)
            if depth:
                return original(client, operation, parameters)
            self._depth.value = 1
            started = time.process_time()
            try:
                return original(client, operation, parameters)
            finally:
                self.seconds += time.process_time() - started
                self.calls += 1
                self._depth.value = 0

        with mock.patch.object(BaseClient, "_make_api_call", timed):
            yield self


def best_microseconds_per_record(
    candidates: Mapping[str, Callable[[int], object]],
    records: int,
    repeats: int,
    aws: AwsCallTimer | None = None,
) -> dict[str, float]:
    """Best CPU time per record of each candidate, over ``repeats`` interleaved rounds.

    A candidate is called with the round's number (1 for the warm-up, then 2, 3...) and
    runs that round's batch. Rounds alternate the candidates so that a busy spell of a
    shared machine hits them alike, and CPU time (``process_time``) leaves out the time
    other processes hold the CPU. The time ``aws`` records in a run is not counted.
    """
    best = dict.fromkeys(candidates, float("inf"))
    timer = aws or AwsCallTimer()
    for run in candidates.values():
        run(1)  # warm-up: caches, lazy imports, first log lines
    for round_number in range(2, repeats + 2):
        for name, run in candidates.items():
            # Without the garbage collector, as timeit measures: moto's tables grow with
            # every round, and a collection of its heap would land on whichever run
            # happened to trigger it.
            gc.collect()
            timer.reset()
            gc.disable()
            try:
                started = time.process_time()
                run(round_number)
                spent = time.process_time() - started - timer.seconds
            finally:
                gc.enable()
            best[name] = min(best[name], spent)
    return {name: seconds / records * 1_000_000 for name, seconds in best.items()}


@contextmanager
def silenced_log_output() -> Iterator[None]:
    """Every log handler's output to /dev/null, then back: formatting still costs,
    printing not."""
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    streams = [
        handler
        for logger in loggers
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler)
        and not isinstance(handler, logging.FileHandler)
    ]
    with open(os.devnull, "w") as devnull:
        previous = [handler.setStream(devnull) for handler in streams]
        try:
            yield
        finally:
            for handler, stream in zip(streams, previous, strict=True):
                if stream is not None:
                    handler.setStream(stream)


def make_events(project: Project, count: int, rounds: int) -> list[Event]:
    """One batch of ``count`` distinct valid sample records per round (new orders each
    round, so that no round takes a duplicate's shorter path)."""
    from .samples import sample_orders
    from .sqs_events import make_sqs_event

    events: list[Event] = []
    for round_number in range(rounds):
        messages = sample_orders(
            count, duplicates=0, run_id=f"bench{round_number}", project=project
        )
        # FIFO: each record's group is its body's group_key field, as `sqsl send` sends it.
        event = make_sqs_event([message.body for message in messages], project=project)
        events.append(dict(event))
    return events


def measure_records(count: int, repeats: int, project: Project | None = None) -> list[Check]:
    project = project or current()
    try:
        from moto import mock_aws
    except ImportError:
        raise SettingsError(
            "sqsl bench runs the handler's AWS calls on moto: add moto to the project's dev "
            "dependencies"
        ) from None
    from .lambda_context import make_context

    events = make_events(project, count, repeats + 2)
    aws = AwsCallTimer()
    with ExitStack() as stack:
        stack.enter_context(handler_environment(project, {}))
        stack.enter_context(mock_aws())
        stack.enter_context(aws.installed())
        urls = create_resources(project)
        os.environ.update(project.environment(project.resources(), urls))
        lambda_handler = load_handler(project)
        stack.enter_context(silenced_log_output())  # the handler's loggers exist now
        uses_powertools = POWERTOOLS_BATCH in sys.modules
        context = make_context(project)
        aws.reset()
        response = lambda_handler(events[0], context)
        aws_calls = aws.calls
        failures = response.get("batchItemFailures") if isinstance(response, dict) else None
        if failures:
            raise BenchError(
                f"the handler reported failures on valid sample records: {failures[:3]} ..."
            )

        record_handler = bench_record_handler(project)
        baseline = BARE_LOOP
        target = BARE_LOOP_TARGET_RATIO
        candidates: dict[str, Callable[[int], object]] = {
            BARE_LOOP: lambda number: bare_loop(events[number], record_handler),
        }
        if uses_powertools:
            powertools = bare_powertools(project.queue.fifo, record_handler)
            processor = "SqsFifoPartialProcessor" if project.queue.fifo else "BatchProcessor"
            baseline, target = f"bare {processor}", POWERTOOLS_TARGET_RATIO
            candidates[baseline] = lambda number: powertools(events[number])
        handler_name = project.function.handler_module
        candidates[handler_name] = lambda number: lambda_handler(events[number], context)
        timings = best_microseconds_per_record(candidates, count, repeats, aws)

    width = max(len(name) for name in timings)
    print(f"\nPer record: {count:,} records, sample messages, best of {repeats} runs")
    print(f"  {'':<{width}} {'µs/record':>10} {'vs bare loop':>13}")
    for name, value in timings.items():
        ratio = value / timings[BARE_LOOP]
        print(f"  {name:<{width}} {value:>10.2f} {ratio:>12.2f}x")
    print(f"  (not counted: the handler's AWS calls, {aws_calls / count:.1f} per record, to moto)")
    if project.bench.record_handler is not None:
        print(f"  (each baseline calls the record handler too: {project.bench.record_handler})")
    else:
        print(
            f"  (the baselines only parse each body: set [{TABLE}.bench] record_handler to "
            "the function the handler calls per record, to compare like with like)"
        )
    ratio = timings[handler_name] / timings[baseline]
    return [Check(f"handler / {baseline}", ratio, target, "x")]


def bench_record_handler(project: Project) -> Callable[[Any], object]:
    """``[tool.sqsl.bench] record_handler``, from the package the handler was just imported
    with (the same modules, so the same state); the body parsed when it is not set."""
    spec = project.bench.record_handler
    if spec is None:
        return parse_body
    module_name, _, name = spec.partition(":")
    where = f"{project.root / PYPROJECT}: [{TABLE}.bench] record_handler = {spec!r}"
    try:
        module = code_import.import_module(project, module_name)
    except Exception as error:
        raise SettingsError(f"{where}: {module_name} does not import: {error}") from error
    function = getattr(module, name, None)
    if not callable(function):
        raise SettingsError(f"{where}: {module_name} has no function {name!r}")
    handler: Callable[[Any], object] = function
    return handler


def create_resources(project: Project) -> QueueUrls:
    """The project's queues and tables, under their declared names (in moto)."""
    import boto3

    sqs: SQSClient = boto3.client("sqs", region_name=project.region)
    fifo: dict[QueueAttributeNameType, str] = {"FifoQueue": "true"} if project.queue.fifo else {}
    dead_letter_url = sqs.create_queue(QueueName=project.dlq.name, Attributes=fifo)["QueueUrl"]
    dead_letter_arn = _queue_arn(sqs, dead_letter_url)
    redrive = {
        "deadLetterTargetArn": dead_letter_arn,
        "maxReceiveCount": str(project.dlq.max_receive_count),
    }
    source_url = sqs.create_queue(
        QueueName=project.queue.name,
        Attributes={
            **fifo,
            "VisibilityTimeout": str(project.queue.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    dynamodb = boto3.client("dynamodb", region_name=project.region)
    for table in project.tables.values():
        dynamodb.create_table(
            TableName=table.name,
            KeySchema=[{"AttributeName": table.key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": table.key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    return QueueUrls(
        source_url=source_url,
        source_arn=_queue_arn(sqs, source_url),
        dead_letter_url=dead_letter_url,
        dead_letter_arn=dead_letter_arn,
    )


def _queue_arn(sqs: SQSClient, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


# The handler's environment --------------------------------------------------------------


def benchmark_environment(project: Project) -> dict[str, str]:
    return {
        **BENCHMARK_CREDENTIALS,
        "AWS_DEFAULT_REGION": project.region,
        "AWS_REGION": project.region,
    }


@contextmanager
def handler_environment(project: Project, values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with the benchmark's credentials and ``values``, restored afterwards;
    without the variables that would point boto3 away from moto."""
    saved = dict(os.environ)
    for name in _UNSET:
        os.environ.pop(name, None)
    os.environ.update(benchmark_environment(project))
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


# Import ----------------------------------------------------------------------------------

# Imports in a fresh interpreter: argv[1] the modules imported before the clock starts,
# argv[2] those timed.
# Prints the seconds the imports took, and of them the seconds spent creating AWS SDK
# clients (botocore's Session.create_client, timed from when botocore.session loads, so
# that nothing is imported before the clock for it).
_IMPORT_CODE = """\
import importlib, importlib.abc, importlib.util, json, sys, time
before, timed = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for name in before:
    importlib.import_module(name)
clients = [0.0]
def time_clients(session_class):
    create = session_class.create_client
    def create_client(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return create(self, *args, **kwargs)
        finally:
            clients[0] += time.perf_counter() - started
    session_class.create_client = create_client
class BotocoreSession(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "botocore.session":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module
        def exec_module(module):
            load(module)
            time_clients(module.Session)
        spec.loader.exec_module = exec_module
        return spec
if "botocore.session" in sys.modules:
    time_clients(sys.modules["botocore.session"].Session)
else:
    sys.meta_path.insert(0, BotocoreSession())
start = time.perf_counter()
for name in timed:
    importlib.import_module(name)
print(json.dumps([time.perf_counter() - start, clients[0]]))
"""

# What the handler's package imports itself from outside the standard library (absolute
# imports made by its modules' code, ``from a import b`` recorded as ``a.b`` when b is a
# module), in the order it imports them: the dependencies a cold start loads for it.
_DEPENDENCIES_CODE = """\
import builtins, importlib, json, sys
own = sys.argv[1].split(".")[0]
found = []
original = builtins.__import__
def tracing(name, globals=None, locals=None, fromlist=(), level=0):
    module = original(name, globals, locals, fromlist, level)
    importer = str((globals or {}).get("__name__", ""))
    top = name.split(".")[0]
    if level == 0 and importer.split(".")[0] == own and top != own and (
        top not in sys.stdlib_module_names
    ):
        names = [name, *(f"{name}.{item}" for item in fromlist or () if item != "*")]
        found.extend(n for n in names if n in sys.modules and n not in found)
    return module
builtins.__import__ = tracing
importlib.import_module(sys.argv[1])
print(json.dumps(found))
"""


def import_environment(project: Project) -> dict[str, str]:
    """The environment of the import measurements: the function's, the code folder first
    on ``PYTHONPATH``.

    Bytecode caches must be written and used, as they are in a deployed package (compiled
    at build time): without them every import compiles its source, which dwarfs what is
    measured.
    """
    environment = {
        name: value
        for name, value in os.environ.items()
        if name != "PYTHONDONTWRITEBYTECODE" and name not in _UNSET
    }
    environment.update(benchmark_environment(project))
    environment.update(project.environment(project.resources(), QueueUrls()))
    # First on the path, as Lambda puts its code folder (/var/task).
    path = [str(project.code_dir), environment.get("PYTHONPATH", "")]
    environment["PYTHONPATH"] = os.pathsep.join(part for part in path if part)
    return environment


def _python(code: str, arguments: Sequence[str], environment: Mapping[str, str]) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", code, *arguments],
        env=dict(environment),
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchError(f"the import measurement failed:\n{completed.stderr}")
    return completed.stdout.strip().splitlines()[-1]


def handler_dependencies(project: Project, environment: Mapping[str, str]) -> list[str]:
    """The modules the handler's package imports from outside the standard library, in
    the order it imports them."""
    names: list[str] = json.loads(
        _python(_DEPENDENCIES_CODE, [project.function.handler_module], environment)
    )
    return names


def import_milliseconds(
    modules: Sequence[str],
    *,
    already_imported: Sequence[str] = (),
    environment: Mapping[str, str],
) -> tuple[float, float]:
    """Import ``modules`` in a fresh interpreter; the time the imports took, and the part
    of it spent creating AWS SDK clients, in ms."""
    arguments = [json.dumps(list(already_imported)), json.dumps(list(modules))]
    total, clients = json.loads(_python(_IMPORT_CODE, arguments, environment))
    return float(total) * 1000, float(clients) * 1000


def measure_imports(repeats: int, project: Project | None = None) -> list[Check]:
    project = project or current()
    environment = import_environment(project)
    handler_module = project.function.handler_module
    dependencies = handler_dependencies(project, environment)
    # Alternate the measurements, so that a busy spell of the machine hits them alike;
    # the first round only writes the bytecode caches.
    alone: list[float] = []
    handler: list[float] = []
    own_code: list[float] = []
    client_times: list[float] = []
    for _ in range(repeats + 1):
        alone.append(import_milliseconds(dependencies, environment=environment)[0])
        total, clients = import_milliseconds([handler_module], environment=environment)
        # Creating the SDK clients at import is Lambda's advice ("initialize SDK clients
        # outside of the function handler"): work the first invocation would do otherwise,
        # done once per environment. It is shown, and not counted against the target.
        handler.append(total - clients)
        own_code.append(
            import_milliseconds(
                [handler_module], already_imported=dependencies, environment=environment
            )[0]
        )
        client_times.append(clients)
    best_dependencies = min(alone[1:])
    best_handler = min(handler[1:])
    extra = best_handler - best_dependencies
    # The import order and the garbage collector's timing shift the difference by a few
    # ms; the last row, the package's own modules once their dependencies are in, does not.
    rows = {
        "dependencies alone": best_dependencies,
        f"{handler_module}, SDK clients aside": best_handler,
        "handler - dependencies": extra,
        "(SDK clients the handler creates at import)": min(client_times[1:]),
        "(handler once its dependencies are imported)": min(own_code[1:]),
    }
    width = max(len(name) for name in rows)
    print(f"\nImport in a fresh interpreter (the cold start), best of {repeats} runs")
    print(f"  {'':<{width}} {'ms':>10}")
    for name, value in rows.items():
        print(f"  {name:<{width}} {value:>10.1f}")
    packages = list(dict.fromkeys(name.split(".")[0] for name in dependencies))
    print(f"  (dependencies: {', '.join(packages) or 'none'})")
    return [Check("handler import - dependencies", extra, IMPORT_TARGET_MS, " ms")]
