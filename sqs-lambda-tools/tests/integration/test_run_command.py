"""``sqsl run`` and ``sqsl invoke`` as a user reads them: the settings AWS would refuse,
refused before anything is polled; a REPORT line per invocation and the summary's counts;
``--quiet``; an init that fails; ``--debug`` in this process.

Each test has its own queues (the sample project's names with a suffix), with a 2 s
visibility timeout: a function timeout above it is refused, as AWS refuses it.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sqs_lambda_tools.cli import app
from sqs_lambda_tools.endpoint import Endpoint
from sqs_lambda_tools.project import Project
from sqs_lambda_tools.pytest_plugin import ProvisionedResources
from sqs_lambda_tools.testing import make_sqs_event

pytestmark = pytest.mark.integration

STANDARD = pytest.mark.parametrize("sqsl_project", ["standard"], indirect=True)
FIFO = pytest.mark.parametrize("sqsl_project", ["fifo"], indirect=True)
FUNCTIONS = Path(__file__).parent / "functions"
VISIBILITY_SECONDS = 2
SAMPLE_HANDLER = 'handler = "sample_orders.handler.lambda_handler"'


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


def cli(emulator: Endpoint, *arguments: str) -> Any:
    """``sqsl ARGUMENTS`` in process, pointed at the emulator."""
    return CliRunner().invoke(app, list(arguments), env=emulator.environment())


def send(queue: ProvisionedResources, *bodies: dict[str, Any]) -> None:
    for number, body in enumerate(bodies):
        if queue.resources.fifo:
            queue.send([{"MessageBody": json.dumps(body), "MessageGroupId": f"g-{number}"}])
        else:
            queue.send([json.dumps(body)])


def depth(queue: ProvisionedResources) -> tuple[int, int]:
    source = queue.depths().source
    return source.visible, source.in_flight


def flat(text: str) -> str:
    """Output with every run of whitespace as one space (rich wraps and expands tabs)."""
    return " ".join(text.split())


def with_function(
    make_sample_project: Callable[..., Project],
    queue: ProvisionedResources,
    module: str,
    *,
    settings: Callable[[str], str] = lambda text: text,
) -> Project:
    """GIVEN a copy of the sample project, current, whose handler is ``module``'s
    ``handler`` (a test function of ``functions/``, copied into its package)."""
    project = make_sample_project(
        fifo=queue.resources.fifo,
        name=f"with-{module}",
        edit=lambda text: settings(
            text.replace(SAMPLE_HANDLER, f'handler = "sample_orders.{module}.handler"')
        ),
    )
    shutil.copy(FUNCTIONS / f"{module}.py", project.code_dir / "sample_orders" / f"{module}.py")
    return project


@STANDARD
@pytest.mark.parametrize(
    ("arguments", "refusal"),
    [
        (
            ["--batch-size", "10001", "--window", "1"],
            "--batch-size 10001: 1 validation error detected: Value '10001' at 'batchSize' "
            "failed to satisfy constraint: Member must have value less than or equal to 10000",
        ),
        (
            ["--window", "301"],
            "--window 301: 1 validation error detected: Value '301' at "
            "'maximumBatchingWindowInSeconds' failed to satisfy constraint: Member must have "
            "value less than or equal to 300",
        ),
        (
            ["--batch-size", "20"],
            "[tool.sqsl.mapping] batching_window = 0: Maximum batch window in seconds must be "
            "greater than 0 if maximum batch size is greater than 10",
        ),
        (
            ["--max-concurrency", "1"],
            "--max-concurrency 1: 1 validation error detected: Value '1' at "
            "'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member must have "
            "value greater than or equal to 2 (--debug runs one invocation at a time, in this "
            "process)",
        ),
        (
            ["--max-concurrency", "1001"],
            "--max-concurrency 1001: 1 validation error detected: Value '1001' at "
            "'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member must have "
            "value less than or equal to 1000",
        ),
        (
            ["--timeout", "3"],
            "--timeout 3: Queue visibility timeout: 2 seconds is less than Function timeout: "
            "3 seconds",
        ),
    ],
    ids=[
        "batch-size",
        "window",
        "window-for-a-batch-above-10",
        "concurrency-1",
        "concurrency-1001",
        "timeout",
    ],
)
def test_run_refuses_what_create_event_source_mapping_refuses_before_polling(
    queue: ProvisionedResources, sqsl_emulator: Endpoint, arguments: list[str], refusal: str
) -> None:
    # GIVEN a message in the queue
    send(queue, {"orderId": "o-1"})

    # WHEN run is given a setting AWS would refuse (the timeout within the queue's, else)
    timeout = [] if "--timeout" in arguments else ["--timeout", "2"]
    result = cli(
        sqsl_emulator, "run", "--until-empty", "--suffix", queue.suffix, *arguments, *timeout
    )

    # THEN it says so in AWS's words, naming the setting, and polls nothing
    assert result.exit_code == 2, result.output
    assert refusal in result.stderr
    assert "Polling" not in result.output
    assert depth(queue) == (1, 0)


@FIFO
@pytest.mark.parametrize(
    ("arguments", "refusal"),
    [
        (
            ["--batch-size", "11"],
            "--batch-size 11: Maximum batch size must be between 1 and 10 inclusive",
        ),
        (["--window", "1"], "--window 1: Batching window is not supported for FIFO queues"),
    ],
    ids=["batch-size", "window"],
)
def test_run_refuses_what_aws_refuses_for_a_fifo_queue(
    queue: ProvisionedResources, sqsl_emulator: Endpoint, arguments: list[str], refusal: str
) -> None:
    send(queue, {"orderId": "o-1"})

    result = cli(sqsl_emulator, "run", "--suffix", queue.suffix, "--timeout", "2", *arguments)

    assert result.exit_code == 2, result.output
    assert refusal in result.stderr
    assert depth(queue) == (1, 0)


@STANDARD
def test_run_refuses_the_projects_own_settings_naming_the_file(
    queue: ProvisionedResources, sqsl_emulator: Endpoint
) -> None:
    # GIVEN the project's function timeout, 30 s, and the queue's visibility timeout, 2 s
    pyproject = queue.project.root / "pyproject.toml"

    result = cli(sqsl_emulator, "run", "--until-empty", "--suffix", queue.suffix)

    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {pyproject}: [tool.sqsl.function] timeout = 30: Queue visibility timeout: 2 "
        "seconds is less than Function timeout: 30 seconds (the visibility timeout of queue "
        f"{queue.resources.source_queue}, as read from it)\n"
    )


@STANDARD
@pytest.mark.parametrize("quiet", [False, True], ids=["reports", "quiet"])
def test_run_reports_each_invocation_and_counts_how_they_ended(
    queue: ProvisionedResources,
    sqsl_emulator: Endpoint,
    make_sample_project: Callable[..., Project],
    quiet: bool,
) -> None:
    # GIVEN a function of 128 MB whose messages say how their invocation ends: one goes
    # well, one ends its process, one overruns the timeout (1 s), one (Linux) its memory
    with_function(
        make_sample_project,
        queue,
        "probes",
        settings=lambda text: text.replace("memory = 256", "memory = 128"),
    )
    bodies: list[dict[str, Any]] = [{"respond": None}, {"exit": 3}, {"busy_seconds": 1.5}]
    memory = sys.platform.startswith("linux")
    if memory:
        bodies.append({"allocate_mb": 256})
    send(queue, *bodies)

    # WHEN run goes until the queue is empty, each failure retried at once until the
    # redrive policy (maxReceiveCount 2) moves it to the DLQ
    arguments = ["run", "--until-empty", "--suffix", queue.suffix, "--batch-size", "1"]
    arguments += ["--max-concurrency", "2", "--timeout", "1", "--retry-after", "0"]
    result = cli(sqsl_emulator, *arguments, *(["--quiet"] if quiet else []))

    # THEN the summary counts each kind of end: every failure twice
    assert result.exit_code == 0, result.output
    output = flat(result.output)
    failures = len(bodies) - 1
    assert f"invocations │ {1 + 2 * failures} │" in output
    assert "deleted (processed) │ 1 │" in output
    assert f"whole-batch failures │ {2 * failures} │" in output
    assert "timeouts (environment killed) │ 2 │" in output
    assert "crashes (runtime exited) │ 2 │" in output
    assert f"out-of-memory kills │ {2 if memory else 0} │" in output
    cold_starts = re.search(r"cold starts \(new environments\) │ (\d+) │", output)
    assert cold_starts is not None
    reports = [line for line in result.output.splitlines() if line.startswith("REPORT ")]
    if quiet:
        assert reports == []
        assert "failed whole" not in output
        return
    # AND a REPORT line tells each invocation, in Lambda's words
    assert len(reports) == 1 + 2 * failures
    report = re.compile(
        r"REPORT RequestId: [0-9a-f-]{36}\s+Duration: \d+\.\d\d ms\s+Billed Duration: \d+ ms\s+"
        r"Memory Size: 128 MB\s+Max Memory Used: \d+ MB(\s+Init Duration: \d+\.\d\d ms)?"
        r"(\s+Status: (timeout|error\s+Error Type: Runtime\.\w+))?$"
    )
    assert all(report.match(line) for line in reports), reports
    assert sum("Init Duration" in line for line in reports) == int(cold_starts.group(1)) >= 1
    assert sum(line.endswith("Status: timeout") for line in reports) == 2
    assert sum(line.endswith("Error Type: Runtime.ExitError") for line in reports) == 2
    assert sum(line.endswith("Error Type: Runtime.OutOfMemory") for line in reports) == (
        2 if memory else 0
    )
    assert "failed whole: timed out after 1 s (the function timeout)" in output
    assert "Runtime exited with error: exit status 3" in output


@STANDARD
@pytest.mark.parametrize("debug", [False, True], ids=["environment", "debug"])
def test_an_init_that_fails_stops_run_once_with_its_traceback(
    queue: ProvisionedResources,
    sqsl_emulator: Endpoint,
    make_sample_project: Callable[..., Project],
    debug: bool,
) -> None:
    # GIVEN a handler whose module raises as it is imported, and a message in the queue
    with_function(make_sample_project, queue, "broken")
    send(queue, {"orderId": "o-1"})

    # WHEN run starts (in a worker, or in this process)
    arguments = ["run", "--suffix", queue.suffix, "--timeout", "2"]
    result = cli(sqsl_emulator, *arguments, *(["--debug"] if debug else []))

    # THEN it stops before polling, with the error and its traceback, once
    assert result.exit_code == 1, result.output
    output = result.output
    assert "error: the function's init failed (LookupError): sample_orders.broken" in flat(output)
    assert output.count("Traceback (most recent call last):") == 1
    assert output.count("LookupError: ORDERS_TABLE_NAME is not set: the module cannot start") == 1
    assert 'sample_orders/broken.py", line ' in output
    assert "importlib" not in output  # the machinery's frames are left out
    assert "Nothing was received from the queue." in output
    assert "Polling" not in output
    assert depth(queue) == (1, 0)


@STANDARD
def test_debug_runs_the_handler_in_this_process_and_does_not_enforce_the_timeout(
    queue: ProvisionedResources, sqsl_emulator: Endpoint
) -> None:
    # GIVEN two orders, one of which keeps the handler busy past the function timeout (1 s)
    send(
        queue,
        {"orderId": "o-1", "count": True},
        {"orderId": "o-2", "count": True, "sleep": 1.5},
    )

    # WHEN run --debug goes until the queue is empty
    arguments = ["run", "--debug", "--until-empty", "--suffix", queue.suffix]
    result = cli(sqsl_emulator, *arguments, "--batch-size", "1", "--timeout", "1")

    # THEN both orders were recorded, by invocations of one environment: this process,
    # whose module state counted them
    assert result.exit_code == 0, result.output
    output = flat(result.output)
    assert "concurrency 1, timeout 1 s; --debug: the handler in this process" in output
    items = {str(item["orderId"]): item for item in queue.table_items("orders")}
    assert sorted(int(item["invocation"]) for item in items.values()) == [1, 2]
    assert {str(item["logStream"]) for item in items.values()} == {"local"}
    assert sys.modules["sample_orders.handler"].INVOCATIONS == 2
    # AND the overrun was told, not enforced
    assert "past the function timeout (1 s): not enforced under --debug" in output
    assert "past the timeout (--debug: not enforced) │ 1 │" in output
    assert output.count("REPORT RequestId:") == 2
    assert depth(queue) == (0, 0)


@STANDARD
def test_debug_is_one_invocation_at_a_time(
    queue: ProvisionedResources, sqsl_emulator: Endpoint
) -> None:
    result = cli(
        sqsl_emulator, "run", "--debug", "--max-concurrency", "3", "--suffix", queue.suffix
    )

    assert result.exit_code == 2
    assert (
        "--max-concurrency 3 with --debug: --debug runs one invocation at a time" in result.stderr
    )


@STANDARD
@pytest.mark.parametrize("debug", [False, True], ids=["environment", "debug"])
def test_invoke_tells_its_invocation_with_a_report_line(
    sqsl_resources: ProvisionedResources, sqsl_emulator: Endpoint, tmp_path: Path, debug: bool
) -> None:
    event = make_sqs_event(
        [json.dumps({"orderId": "o-1", "count": True})], queue_arn=sqsl_resources.source_queue_arn
    )
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")

    arguments = ["invoke", str(path), "--suffix", sqsl_resources.suffix]
    result = cli(sqsl_emulator, *arguments, *(["--debug"] if debug else []))

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"batchItemFailures": []}
    report = flat(result.stderr)
    assert re.search(
        r"REPORT RequestId: \S+ Duration: [\d.]+ ms .* Init Duration: [\d.]+ ms", report
    )
    [item] = sqsl_resources.table_items("orders")
    in_process = str(item["logStream"]) == "local"
    assert in_process == debug
