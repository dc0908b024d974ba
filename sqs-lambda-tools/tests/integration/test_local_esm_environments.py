"""The local mapping's execution environments against a real emulator: worker processes
that Lambda's limits end.

The functions are the test functions of ``functions/`` (a body says what its invocation
does: see ``functions/probes.py``) and, for module state, the sample project's handler.
They run in worker processes (:class:`ExecutionEnvironments`), as ``sqsl run`` runs them.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from sqs_lambda_tools.environments import (
    ExecutionEnvironments,
    FunctionDefinition,
    lambda_variables,
)
from sqs_lambda_tools.esm import (
    BatchResult,
    LocalEventSourceMapping,
    MappingSettings,
    MappingStats,
)
from sqs_lambda_tools.invocations import InitError
from sqs_lambda_tools.pytest_plugin import ProvisionedResources

pytestmark = pytest.mark.integration

FUNCTIONS = Path(__file__).parent / "functions"
VISIBILITY_SECONDS = 2


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


class ProbeLog:
    """What the test functions wrote (``functions/probes.py``): one event a line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        events = [json.loads(line) for line in lines]
        return [event for event in events if kind is None or event["event"] == kind]


@pytest.fixture
def probe_log(tmp_path: Path) -> ProbeLog:
    return ProbeLog(tmp_path / "probe.jsonl")


def function(
    queue: ProvisionedResources,
    handler: str,
    *,
    code_dir: Path = FUNCTIONS,
    memory_mb: int = 128,
    variables: Mapping[str, str] | None = None,
) -> FunctionDefinition:
    """``handler`` of ``code_dir`` with the environment a worker gets from ``run``."""
    name = "probe"
    region = queue.project.region
    environment = {
        **os.environ,
        # The test functions' folder is the repository's: no __pycache__ in it.
        "PYTHONDONTWRITEBYTECODE": "1",
        **(variables or {}),
        **lambda_variables(
            function_name=name,
            handler=handler,
            code_dir=code_dir,
            memory_mb=memory_mb,
            region=region,
        ),
    }
    return FunctionDefinition(name, handler, code_dir, memory_mb, region, environment)


@pytest.fixture
def output() -> list[str]:
    """The lines the workers wrote to stdout and stderr."""
    return []


def environments(
    definition: FunctionDefinition, output: list[str], *, max_environments: int = 2
) -> ExecutionEnvironments:
    return ExecutionEnvironments(
        definition, max_environments=max_environments, on_output=output.append
    )


def mapping(
    queue: ProvisionedResources,
    envs: ExecutionEnvironments,
    *,
    max_concurrency: int = 2,
    timeout: float = VISIBILITY_SECONDS,
    on_batch: Any = None,
) -> LocalEventSourceMapping:
    """One record a batch, so that each message is an invocation of its own."""
    return LocalEventSourceMapping(
        queue.sqs,
        queue_url=queue.source_queue_url,
        queue_arn=queue.source_queue_arn,
        region=queue.project.region,
        environments=envs,
        settings=MappingSettings(
            batch_size=1,
            batching_window_seconds=0,
            max_concurrency=max_concurrency,
            function_timeout_seconds=timeout,
            fifo=queue.resources.fifo,
            wait_time_seconds=1,
        ),
        on_batch=on_batch,
    )


def send(queue: ProvisionedResources, *bodies: dict[str, Any]) -> None:
    for number, body in enumerate(bodies):
        if queue.resources.fifo:
            queue.send([{"MessageBody": json.dumps(body), "MessageGroupId": f"g-{number}"}])
        else:
            queue.send([json.dumps(body)])


def depth(queue: ProvisionedResources) -> tuple[int, int]:
    source = queue.depths().source
    return source.visible, source.in_flight


@pytest.fixture
def probes(
    queue: ProvisionedResources, probe_log: ProbeLog, output: list[str]
) -> Iterator[ExecutionEnvironments]:
    """Two environments at most of ``functions/probes.py``, 128 MB."""
    definition = function(queue, "probes.handler", variables={"PROBE_LOG": str(probe_log.path)})
    with environments(definition, output) as envs:
        yield envs


@pytest.mark.parametrize(
    "response",
    [None, "", [], {}, {"batchItemFailures": []}, {"batchItemFailures": None}],
    ids=["null", "empty-string", "empty-list", "empty-object", "no-failures", "null-failures"],
)
def test_each_empty_response_of_a_worker_is_a_success(
    queue: ProvisionedResources, probes: ExecutionEnvironments, response: object
) -> None:
    send(queue, {"respond": response})

    stats = mapping(queue, probes).run(max_messages=1)

    [result] = stats.results
    assert result.invocation is not None
    assert result.invocation.response == response
    assert (stats.deleted, stats.whole_batch_failures) == (1, 0)
    assert depth(queue) == (0, 0)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"respond": "ok"}, "invalid response: response is a str, not an object"),
        ({"respond": ["m-1"]}, "invalid response: response is a list, not an object"),
        (
            {"respond": {"batchItemFailures": [{"itemIdentifier": None}]}},
            "invalid response: itemIdentifier missing or empty",
        ),
        ({"unencodable": True}, "invalid response: Unable to marshal response: Object of type"),
        ({"raise": "no table"}, "handler raised RuntimeError: no table"),
    ],
    ids=["a-string", "a-list", "null-identifier", "not-json", "raised"],
)
def test_what_is_not_a_partial_batch_response_fails_the_whole_batch(
    queue: ProvisionedResources, probes: ExecutionEnvironments, body: dict[str, Any], reason: str
) -> None:
    send(queue, body)

    stats = mapping(queue, probes).run(max_messages=1)

    [result] = stats.results
    assert result.whole_batch_failed
    assert result.reason.startswith(reason)
    assert stats.deleted == 0
    assert depth(queue) == (0, 1)  # kept, back after the visibility timeout


def test_a_timed_out_invocation_is_killed_before_its_batch_fails_and_the_cap_holds(
    queue: ProvisionedResources, probes: ExecutionEnvironments, probe_log: ProbeLog
) -> None:
    # GIVEN six invocations that would stay busy 1.5 s, a function timeout of 0.4 s and
    # MaximumConcurrency 2 (each handler writes a beat every 20 ms while it runs)
    send(queue, *[{"busy_seconds": 1.5} for _ in range(6)])
    probes.start(count=2)  # both warm: the first two invocations surely run at once
    failed_at: dict[str, float] = {}

    def note_failure(result: BatchResult, stats: MappingStats) -> None:
        assert result.invocation is not None
        failed_at[result.invocation.request_id] = time.time()

    # WHEN the mapping invokes them
    stats = mapping(queue, probes, timeout=0.4, on_batch=note_failure).run(max_messages=6)
    time.sleep(1.5)  # as long as a handler that went on would write on

    # THEN each timed out and failed its batch
    assert (stats.timeouts, stats.whole_batch_failures, stats.deleted) == (6, 6, 0)
    assert all("timed out after 0.4 s" in result.reason for result in stats.results)
    # AND no handler wrote anything once its batch had failed, nor ever finished
    beats = probe_log.events("beat")
    assert beats
    assert {beat["requestId"] for beat in beats} == set(failed_at)
    assert all(beat["at"] < failed_at[beat["requestId"]] for beat in beats)
    assert probe_log.events("end") == []
    # AND never more than two handlers ran at once: each beats every 20 ms while it lives
    peak = max(
        len({other["requestId"] for other in beats if abs(other["at"] - beat["at"]) < 0.03})
        for beat in beats
    )
    assert peak == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [({"exit": 3}, "exit status 3"), ({"signal": "SIGKILL"}, "signal: killed")],
    ids=["exit", "sigkill"],
)
def test_a_worker_that_dies_mid_batch_fails_it_and_the_next_batch_gets_a_new_environment(
    queue: ProvisionedResources,
    probes: ExecutionEnvironments,
    probe_log: ProbeLog,
    body: dict[str, Any],
    status: str,
) -> None:
    # GIVEN a message whose invocation ends its worker's process
    send(queue, body)

    # WHEN the mapping invokes it, then a message that goes well
    stats = mapping(queue, probes).run(max_messages=1)
    send(queue, {})
    after = mapping(queue, probes).run(max_messages=1)

    # THEN its batch failed whole, as Lambda's Runtime.ExitError
    [died] = stats.results
    assert died.whole_batch_failed
    assert died.reason == (
        f"the runtime exited (Runtime.ExitError): Runtime exited with error: {status}"
    )
    assert died.invocation is not None
    assert "Status: error\tError Type: Runtime.ExitError" in died.invocation.report_line()
    assert stats.crashes == 1
    # AND the next batch ran in a new environment: a cold start, in another process
    [fine] = after.results
    assert fine.deleted == 1
    assert fine.invocation is not None
    assert fine.invocation.cold_start
    first, second = probe_log.events("start")
    assert first["pid"] != second["pid"]
    assert second["invocations"] == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memory is enforced on Linux")
def test_an_environment_past_the_functions_memory_is_killed_and_its_batch_fails(
    queue: ProvisionedResources, probes: ExecutionEnvironments, probe_log: ProbeLog
) -> None:
    # GIVEN a function of 128 MB, and a message whose invocation holds 256 MB
    send(queue, {"allocate_mb": 256})

    stats = mapping(queue, probes).run(max_messages=1)

    # THEN it was killed as Lambda's out-of-memory does, and its batch failed whole
    [result] = stats.results
    assert result.whole_batch_failed
    assert result.reason.startswith("out of memory (Runtime.OutOfMemory): ")
    assert "past the function's memory, 128 MB" in result.reason
    assert stats.out_of_memory == 1
    invocation = result.invocation
    assert invocation is not None
    assert invocation.report_line().endswith("Status: error\tError Type: Runtime.OutOfMemory")
    assert invocation.max_memory_used_mb > 128
    assert probe_log.events("end") == []


def test_module_state_is_each_environments_own_and_kept_while_it_is_warm(
    queue: ProvisionedResources, sqsl_handler_env: dict[str, str], output: list[str]
) -> None:
    # GIVEN the sample project's handler, which counts its invocations in module state
    # (INVOCATIONS) and, for a body with "count", records the count and its environment's
    # log stream in the order's item
    project = queue.project
    definition = function(
        queue,
        project.function.handler,
        code_dir=project.code_dir,
        variables={**sqsl_handler_env, "AWS_REGION": project.region},
    )
    with environments(definition, output) as envs:
        # WHEN two orders are invoked at once (two environments), then two more, each
        # alone (a warm environment)
        send(queue, *[{"orderId": f"o-{n}", "sleep": 0.5, "count": True} for n in (1, 2)])
        mapping(queue, envs).run(max_messages=2)
        for n in (3, 4):
            send(queue, {"orderId": f"o-{n}", "count": True})
            mapping(queue, envs).run(max_messages=1)

    # THEN each environment counted its own invocations from 1, the warm one on from there
    counts: dict[str, list[int]] = {}
    for item in queue.table_items("orders"):
        counts.setdefault(str(item["logStream"]), []).append(int(item["invocation"]))
    assert len(counts) == 2, counts
    assert sorted(sorted(numbers) for numbers in counts.values()) == [[1], [1, 2, 3]]


def test_an_init_that_fails_mid_run_stops_it_and_releases_its_batch(
    queue: ProvisionedResources, tmp_path: Path, output: list[str]
) -> None:
    # GIVEN a function whose first environment starts, and whose later ones fail their init
    definition = function(
        queue, "flaky_init.handler", variables={"PROBE_MARKER": str(tmp_path / "marker")}
    )
    outcome: list[MappingStats | BaseException] = []
    invoked = threading.Event()
    with environments(definition, output) as envs:
        esm = mapping(queue, envs, on_batch=lambda result, stats: invoked.set())

        def run() -> None:
            try:
                outcome.append(esm.run())
            except BaseException as error:  # handed to the test thread
                outcome.append(error)

        runner = threading.Thread(target=run, daemon=True)
        # WHEN a first message ends the first environment, and a second one needs a new one
        send(queue, {"orderId": "o-1"})
        runner.start()
        assert invoked.wait(timeout=15), "the first message was not invoked"
        send(queue, {"orderId": "o-2"})
        runner.join(timeout=15)

    # THEN the run stopped on the init error
    assert not runner.is_alive()
    [error] = outcome
    assert isinstance(error, InitError), error
    assert error.error.type == "RuntimeError"
    assert error.error.message == "the configuration went away: this init fails"
    assert any("flaky_init.py" in line for line in error.error.stack_trace)
    # AND the second message, received for the new environment, was released: visible
    # at once, received by the mapping that once only
    assert esm.stats.released_on_stop == 1
    messages = queue.sqs.receive_message(
        QueueUrl=queue.source_queue_url,
        MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["ApproximateReceiveCount"],
    )["Messages"]
    released = {json.loads(m["Body"])["orderId"]: m["Attributes"] for m in messages}
    assert released["o-2"]["ApproximateReceiveCount"] == "2"
