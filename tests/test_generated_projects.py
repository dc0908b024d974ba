"""The named combinations render projects whose own ``make test`` passes.

This is what a user does after ``copier copy``: ``make test`` in the new folder, which
bootstraps the project's environment and runs its unit and integration tests (the latter
against the embedded emulator when no Docker engine answers). For SAM and CDK, the stack is
then deployed to an emulator of its own (``make deploy-local``) and runs the packaged
function. And the change a team makes first, a required field added to the schema and to
the sample function, needs nothing else than ``make events``. Slow: it installs each
project.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from sqs_lambda_tools import project as projects

from tests.conftest import RunStats
from tests.matrix import Combination, named_combinations
from tests.rendering import REPO_ROOT, render
from tests.test_pins import pins

pytestmark = pytest.mark.slow

MAKE_TIMEOUT_SECONDS = 900
VENV_BIN = Path(sys.executable).parent

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SUMMARY = re.compile(r"^=*\s*((?:\d+ [a-z]+(?:, )?)+) in [\d.]+s\b.*?=*$")
_COUNT = re.compile(r"(\d+) ([a-z]+)")

#: Variables this run sets (our Makefile, `uv run`, make, pytest-xdist) that must not leak
#: into the generated project's own run. A user's own settings (package index, caches) stay.
_OUR_ENV = frozenset(
    {
        "VIRTUAL_ENV",
        "UV_PYTHON",
        "UV_PROJECT_ENVIRONMENT",
        "UV_RUN_RECURSION_DEPTH",
        "PYTHONPATH",
        "PYTHONHOME",
        "MAKEFLAGS",
        "MAKELEVEL",
        "MFLAGS",
        "MAKEOVERRIDES",
    }
)


def pytest_summary_counts(output: str) -> list[dict[str, int]]:
    """Counts of each pytest summary line ("== 12 passed, 1 skipped in 3.4s =="), in order.

    ``error`` and ``warning`` are normalised to their plural so a single one is counted too.
    """
    summaries = []
    for line in _ANSI.sub("", output).splitlines():
        match = _SUMMARY.match(line.strip())
        if match is None:
            continue
        counts: dict[str, int] = {}
        for number, word in _COUNT.findall(match.group(1)):
            word = {"error": "errors", "warning": "warnings"}.get(word, word)
            counts[word] = counts.get(word, 0) + int(number)
        summaries.append(counts)
    return summaries


def project_env() -> dict[str, str]:
    """The environment of a user's shell: no venv of ours first, our tools last on PATH."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _OUR_ENV and not key.startswith("PYTEST_")
    }
    path = [entry for entry in env.get("PATH", "").split(os.pathsep) if entry]
    path = [entry for entry in path if Path(entry) != VENV_BIN]
    env["PATH"] = os.pathsep.join([*path, str(VENV_BIN)])  # `uv` when nothing else has it
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def make(project: Path, *arguments: str, log: Path) -> subprocess.CompletedProcess[str]:
    """``make ARGUMENTS`` in the project, as a user's shell runs it; its output also to ``log``."""
    where = f"`make {' '.join(arguments)}` in {project} (log: {log})"
    try:
        result = subprocess.run(
            ["make", *arguments],
            cwd=project,
            env=project_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=MAKE_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        output = error.output if isinstance(error.output, str) else ""
        log.write_text(output, encoding="utf-8")
        pytest.fail(
            f"{where} timed out after {MAKE_TIMEOUT_SECONDS} s\n{_tail(output)}", pytrace=False
        )
    log.write_text(result.stdout, encoding="utf-8")
    return result


def passed_tests(result: subprocess.CompletedProcess[str], where: str) -> int:
    """How many tests a `make test` passed; the test fails on a failure, an error or none."""
    if result.returncode != 0:
        pytest.fail(f"{where} exited {result.returncode}\n{_tail(result.stdout)}", pytrace=False)
    summaries = pytest_summary_counts(result.stdout)
    if not summaries:
        pytest.fail(f"{where}: no pytest summary line\n{_tail(result.stdout)}", pytrace=False)
    passed = sum(counts.get("passed", 0) for counts in summaries)
    broken = {
        kind: sum(counts.get(kind, 0) for counts in summaries)
        for kind in ("failed", "errors", "xpassed")
    }
    if passed == 0 or any(broken.values()):
        pytest.fail(f"{where}: {passed} passed, {broken}\n{_tail(result.stdout)}", pytrace=False)
    return passed


def succeeded(result: subprocess.CompletedProcess[str], what: str) -> str:
    if result.returncode != 0:
        pytest.fail(f"{what} exited {result.returncode}\n{_tail(result.stdout)}", pytrace=False)
    return result.stdout


@pytest.mark.parametrize(
    "combination",
    [
        pytest.param(c, id=c.id, marks=pytest.mark.xdist_group(f"project-{c.id}"))
        for c in named_combinations()
    ],
)
def test_the_generated_project_passes_its_own_tests(
    combination: Combination,
    tmp_path_factory: pytest.TempPathFactory,
    run_stats: RunStats,
) -> None:
    project = render(tmp_path_factory.mktemp("projects") / combination.id, **combination.answers)
    log = project.parent / f"{combination.id}.make-test.log"

    result = make(project, "test", log=log)

    where = f"[{combination.id}] `make test` in {project} (log: {log})"
    run_stats.project_tests[combination.id] = passed_tests(result, where)
    if combination.answers.get("iac", "sam") in ("sam", "cdk"):
        deploys_and_processes_an_order(project, combination.id)


#: How long moto server may take to answer (the first run installs it from PyPI).
MOTO_SERVER_START_SECONDS = 180.0


def moto_pin() -> str:
    """The moto release the services pin (and this repository checks them with)."""
    template = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return pins([pin for pin in template["dependency-groups"]["dev"] if "==" in pin])["moto"]


@pytest.fixture
def moto_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """moto's standalone server on a free loopback port, in an environment of its own
    (``uv tool run --from moto[server]==<pin>``: flask is none of the service's
    dependencies); its URL, and its log (a line per request)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "moto-server.log"
    with log.open("w", encoding="utf-8") as output:
        server = subprocess.Popen(
            [
                str(VENV_BIN / "uv"),
                "tool",
                "run",
                "--from",
                f"moto[server]=={moto_pin()}",
                "moto_server",
                "-H",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=project_env(),
        )
    try:
        deadline = time.monotonic() + MOTO_SERVER_START_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"moto server did not answer at {url}:\n"
                        + log.read_text(encoding="utf-8")[-3000:]
                    )
                time.sleep(0.5)
        yield url, log
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.xdist_group("project-moto-server")
def test_the_default_project_passes_its_own_tests_on_moto_server(
    tmp_path_factory: pytest.TempPathFactory, moto_server: tuple[str, Path]
) -> None:
    """Issue 12: the tests hold on another SQS/DynamoDB implementation than the embedded
    emulator: `make test` unchanged, with AWS_ENDPOINT_URL pointing at moto server."""
    url, server_log = moto_server
    project = render(tmp_path_factory.mktemp("projects") / "on-moto-server")
    log = project.parent / "on-moto-server.make-test.log"
    env = {**project_env(), "AWS_ENDPOINT_URL": url}

    result = subprocess.run(
        ["make", "test"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=MAKE_TIMEOUT_SECONDS,
        check=False,
    )
    log.write_text(result.stdout, encoding="utf-8")

    passed_tests(result, f"`make test` against moto server in {project} (log: {log})")
    integration = re.findall(r"^tests/integration/\S+ (\.+)", _ANSI.sub("", result.stdout), re.M)
    assert integration, f"no integration test ran (log: {log})"
    # ... and they ran there: moto logs each request it answers.
    assert server_log.read_text(encoding="utf-8").count('"POST / HTTP/1.1" 200') > 10


#: MiniStack's mapping polls the queue and starts the deployed function as a process: seconds.
PROCESSED_TIMEOUT_SECONDS = 90.0


def deploys_and_processes_an_order(project: Path, name: str) -> None:
    """`make deploy-local` creates what the IaC declares, with the settings of [tool.sqsl],
    on an emulator of its own; the deployed (packaged) function records an order sent to
    the queue; `make destroy-local` removes the stack."""
    settings = projects.load(project)
    logs = project.parent
    try:
        succeeded(make(project, "deploy-local", log=logs / f"{name}.deploy.log"), "deploy-local")
        endpoint = succeeded(
            make(project, "--silent", "dev", "ARGS=endpoint", log=logs / f"{name}.endpoint.log"),
            "make dev ARGS=endpoint",
        ).strip()
        options = {
            "endpoint_url": endpoint,
            "region_name": settings.region,
            "aws_access_key_id": "test",
            "aws_secret_access_key": "test",
        }
        sqs = boto3.client("sqs", **options)  # type: ignore[call-overload]
        functions = boto3.client("lambda", **options)  # type: ignore[call-overload]
        dynamodb = boto3.client("dynamodb", **options)  # type: ignore[call-overload]
        source_url = sqs.get_queue_url(QueueName=settings.queue.name)["QueueUrl"]
        source = sqs.get_queue_attributes(QueueUrl=source_url, AttributeNames=["All"])["Attributes"]
        assert int(source["VisibilityTimeout"]) == settings.queue.visibility_timeout_seconds
        redrive = json.loads(source["RedrivePolicy"])
        assert int(redrive["maxReceiveCount"]) == settings.dlq.max_receive_count
        assert redrive["deadLetterTargetArn"].endswith(f":{settings.dlq.name}")
        function = functions.get_function_configuration(FunctionName=settings.function.name)
        assert function["Handler"] == settings.function.handler
        assert function["Runtime"] == settings.function.runtime
        assert function["Timeout"] == settings.function.timeout_seconds
        assert function["MemorySize"] == settings.function.memory_mb
        [mapping] = functions.list_event_source_mappings(FunctionName=settings.function.name)[
            "EventSourceMappings"
        ]
        assert mapping["EventSourceArn"] == source["QueueArn"]
        assert mapping["BatchSize"] == settings.mapping.batch_size
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        for table in settings.tables.values():
            described = dynamodb.describe_table(TableName=table.name)["Table"]
            assert described["KeySchema"] == [{"AttributeName": table.key, "KeyType": "HASH"}]

        # The packaged artifact runs: the emulator's mapping invokes the deployed function,
        # which imports its dependencies from the zip, not from the project's venv.
        succeeded(
            make(project, "dev", "ARGS=send --sample 1", log=logs / f"{name}.send.log"),
            "make dev ARGS=send --sample 1",
        )
        orders = settings.tables["orders"].name
        deadline = time.monotonic() + PROCESSED_TIMEOUT_SECONDS
        while not dynamodb.scan(TableName=orders)["Items"]:
            assert time.monotonic() < deadline, f"no order recorded in {orders} in time"
            time.sleep(1)

        succeeded(make(project, "destroy-local", log=logs / f"{name}.destroy.log"), "destroy")
        with pytest.raises(ClientError, match=r"NonExistentQueue|QueueDoesNotExist"):
            sqs.get_queue_url(QueueName=settings.queue.name)
    finally:
        make(project, "down", log=logs / f"{name}.down.log")


@pytest.mark.xdist_group("project-new-field")
def test_a_new_required_field_needs_the_schema_the_sample_function_and_make_events(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Issue 10, point 4: the change a team makes to the default service, and only it."""
    project = render(tmp_path_factory.mktemp("projects") / "new-field")
    logs = project.parent
    # The service as rendered, its environment and sample events made (`make sync`).
    succeeded(make(project, "sync", log=logs / "new-field.sync.log"), "make sync")
    package = project / "src" / "orders_consumer"
    model = (package / "model.py").read_text(encoding="utf-8")
    for old, new in {
        "    userId: str\n": "    userId: str\n    currency: str\n",
        '        user_id = payload["userId"]\n': (
            '        user_id = payload["userId"]\n        currency = payload["currency"]\n'
        ),
        "    order: Order = payload\n": (
            "    if type(currency) is not str or len(currency) != 3:\n"
            "        raise InvalidOrderError("
            "f\"'currency' must be a currency code, got {currency!r}\")\n"
            "    order: Order = payload\n"
        ),
    }.items():
        assert old in model, f"model.py no longer has {old!r}"
        model = model.replace(old, new)
    (package / "model.py").write_text(model, encoding="utf-8")
    samples = (package / "samples.py").read_text(encoding="utf-8")
    returned = '"userId": USERS[(number - 1) % len(USERS)]}'
    assert returned in samples, "samples.py no longer returns that dict"
    samples = samples.replace(
        returned, '"userId": USERS[(number - 1) % len(USERS)], "currency": "EUR"}'
    )
    (package / "samples.py").write_text(samples, encoding="utf-8")

    events = succeeded(make(project, "events", log=logs / "new-field.events.log"), "make events")
    tested = make(project, "test", log=logs / "new-field.test.log")
    try:
        local = make(project, "local", "SAMPLE=8", log=logs / "new-field.local.log")
    finally:
        make(project, "down", log=logs / "new-field.down.log")

    assert "wrote events/batch.json" in events
    assert passed_tests(tested, "make test after the new field") > 0
    output = succeeded(local, "make local after the new field")
    batch = json.loads((project / "events" / "batch.json").read_text(encoding="utf-8"))
    assert json.loads(batch["Records"][0]["body"])["currency"] == "EUR"
    # Every order processed, the poison message in the DLQ, nothing left in the queue.
    assert re.search(r"deleted \(processed\)\s*\W\s*8\b", output), output[-3000:]
    assert re.search(r"DLQ messages\s*\W\s*1\b", output), output[-3000:]


def _tail(output: str, lines: int = 200) -> str:
    return "\n".join(output.splitlines()[-lines:])
