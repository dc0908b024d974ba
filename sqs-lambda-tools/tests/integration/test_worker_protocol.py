"""The worker protocol does not depend on Python: the README's Node.js worker
(``functions/node_worker.js``) runs a Node.js handler in execution environments, warm,
killed on a timeout, and the local mapping drains a queue into it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from sqs_lambda_tools.environments import (
    ExecutionEnvironments,
    FunctionDefinition,
    lambda_variables,
)
from sqs_lambda_tools.esm import LocalEventSourceMapping, MappingSettings
from sqs_lambda_tools.pytest_plugin import ProvisionedResources
from sqs_lambda_tools.testing import make_sqs_event

pytestmark = pytest.mark.integration

FUNCTIONS = Path(__file__).parent / "functions"
README = Path(__file__).parents[2] / "README.md"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="Node.js is not installed here")


def node_environments(output: list[str], *, region: str = "us-east-1") -> ExecutionEnvironments:
    """One environment at most of ``functions/node_handler.js``, behind the Node worker."""
    assert NODE is not None
    handler = "node_handler.handler"
    environment = {
        **os.environ,
        **lambda_variables(
            function_name="node-probe",
            handler=handler,
            code_dir=FUNCTIONS,
            memory_mb=128,
            region=region,
        ),
    }
    return ExecutionEnvironments(
        FunctionDefinition("node-probe", handler, FUNCTIONS, 128, region, environment),
        max_environments=1,
        command=[NODE, str(FUNCTIONS / "node_worker.js")],
        on_output=output.append,
    )


def event(body: dict[str, Any]) -> dict[str, Any]:
    arn = "arn:aws:sqs:us-east-1:000000000000:node-probe"
    return dict(make_sqs_event([json.dumps(body)], fifo=False, queue_arn=arn))


def test_the_readmes_node_worker_is_the_one_tested() -> None:
    readme = README.read_text(encoding="utf-8")
    start = readme.index("```js\n") + len("```js\n")
    outline = readme[start : readme.index("```", start)]
    worker = (FUNCTIONS / "node_worker.js").read_text(encoding="utf-8")

    # The file has two comment lines of its own above the code.
    assert outline.splitlines() == worker.splitlines()[2:]


@needs_node
def test_a_node_worker_serves_invocations_while_warm_and_is_killed_on_a_timeout() -> None:
    output: list[str] = []
    with node_environments(output) as environments:
        [cold_start] = environments.start()
        first = environments.invoke(event({}), timeout_seconds=2)
        second = environments.invoke(event({}), timeout_seconds=2)
        failed = environments.invoke(event({"fail": True}), timeout_seconds=2)
        timed_out = environments.invoke(event({"busy_seconds": 2}), timeout_seconds=0.3)
        after = environments.invoke(event({}), timeout_seconds=2)

    # Warm: one environment, its module state kept, the deadline counting down.
    assert cold_start.init_duration_ms >= 0
    assert first.cold_start
    assert not second.cold_start
    assert isinstance(first.response, dict)
    assert isinstance(second.response, dict)
    assert (first.response["invocations"], second.response["invocations"]) == (1, 2)
    assert 0 < first.response["remaining"] <= 2000
    assert first.response["batchItemFailures"] == []
    # An error the handler throws is the function's, its environment kept.
    assert failed.outcome == "function_error"
    assert failed.error is not None
    assert (failed.error.type, failed.error.message) == ("TypeError", "asked to fail")
    # A timeout kills it: the next invocation gets a new environment.
    assert timed_out.outcome == "timeout"
    assert after.cold_start
    assert isinstance(after.response, dict)
    assert after.response["invocations"] == 1
    assert "node handler: invocation 1 of node-probe" in output


@needs_node
def test_the_local_mapping_drains_a_queue_into_a_node_handler(
    sqsl_resources: ProvisionedResources,
) -> None:
    sqsl_resources.send([json.dumps({"n": n}) for n in range(3)])
    output: list[str] = []
    with node_environments(output, region=sqsl_resources.project.region) as environments:
        mapping = LocalEventSourceMapping(
            sqsl_resources.sqs,
            queue_url=sqsl_resources.source_queue_url,
            queue_arn=sqsl_resources.source_queue_arn,
            region=sqsl_resources.project.region,
            environments=environments,
            settings=MappingSettings(
                batch_size=1,
                batching_window_seconds=0,
                max_concurrency=2,
                function_timeout_seconds=5,
                fifo=sqsl_resources.resources.fifo,
                wait_time_seconds=1,
            ),
        )
        stats = mapping.run(max_messages=3)

    assert (stats.deleted, stats.whole_batch_failures) == (3, 0)
    assert sqsl_resources.depths().source.total == 0
