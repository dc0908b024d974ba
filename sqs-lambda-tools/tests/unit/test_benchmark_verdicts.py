"""`sqsl bench` and `sqsl bench-local` judge a figure as they print it, and `sqsl bench`
measures the project's handler as it is, its AWS calls on moto.

A verdict taken on the unrounded figure printed ``MISS ... 1.10x (target <= 1.1x)``: the
line must agree with itself, whatever the digits past the printed ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from typer.testing import CliRunner, Result

from sqs_lambda_tools import bench_handler, bench_local
from sqs_lambda_tools.cli import app
from sqs_lambda_tools.project import Project

pytestmark = pytest.mark.unit

FIGURE = re.compile(r"^(PASS|MISS)  .*?: (\d+\.\d+)(?:x| ms) \(target <= ([\d.]+)")
VERDICT = re.compile(r"^(PASS|MISS)  (.+?): -?\d+\.\d+(?:x| ms) \(target <= ")


@pytest.mark.parametrize(
    ("value", "verdict"),
    [
        (1.0999, "PASS"),
        (1.1, "PASS"),
        (1.1049, "PASS"),  # printed 1.10: at the target
        (1.1051, "MISS"),  # printed 1.11
        (1.2, "MISS"),
    ],
)
def test_the_record_overhead_verdict_agrees_with_the_printed_ratio(
    value: float, verdict: str
) -> None:
    line = bench_handler.Check("handler / bare loop", value, 1.1, "x").line()

    match = FIGURE.match(line)
    assert match is not None, line
    assert match.group(1) == verdict
    assert (float(match.group(2)) <= float(match.group(3))) == (verdict == "PASS")


def test_the_import_verdict_agrees_with_the_printed_milliseconds() -> None:
    at_target = bench_handler.Check("handler import", 20.004, 20.0, " ms")
    above = bench_handler.Check("handler import", 20.006, 20.0, " ms")

    assert at_target.line() == "PASS  handler import: 20.00 ms (target <= 20 ms)"
    assert above.line() == "MISS  handler import: 20.01 ms (target <= 20 ms)"


def test_the_local_loop_verdicts_agree_with_the_printed_figures() -> None:
    [share, latency] = bench_local.verdicts(0.7996, 20.04)

    # 80 % printed, and 80 % is the target; 20.0 ms printed, and the target is 20 ms at most.
    assert share == ("PASS  run at 80% of the ceiling (target >= 80%)", True)
    assert latency == ("PASS  p50 latency 20.0 ms (target <= 20 ms)", True)
    [share, latency] = bench_local.verdicts(0.794, 20.06)
    assert share == ("MISS  run at 79% of the ceiling (target >= 80%)", False)
    assert latency == ("MISS  p50 latency 20.1 ms (target <= 20 ms)", False)


def sqsl(*arguments: str) -> Result:
    return CliRunner().invoke(app, list(arguments))


def test_bench_runs_the_projects_handler_on_its_sample_messages(sample_project: Project) -> None:
    result = sqsl("bench", "--records", "30", "--repeats", "1")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        "sample-orders: handler sample_orders.handler.lambda_handler, standard queue, "
        "tables: orders; Python 3."
    )
    assert "Per record: 30 records, sample messages, best of 1 runs" in lines
    # Each record was put in the orders table (moto's): one call per record, not counted.
    assert "  (not counted: the handler's AWS calls, 1.0 per record, to moto)" in lines
    assert "  (dependencies: boto3)" in lines
    # (the import difference may come out below zero: noise of a few ms)
    verdicts = [match.group(2) for line in lines if (match := VERDICT.match(line))]
    assert verdicts == ["handler / bare try/except loop", "handler import - dependencies"]


def test_bench_strict_exits_1_on_a_miss(sample_project: Project) -> None:
    # The sample handler creates its clients on every invocation: far above a bare loop.
    result = sqsl("bench", "--records", "30", "--repeats", "1", "--strict")

    assert result.exit_code == 1, result.output
    assert re.search(r"^MISS  handler / bare try/except loop: ", result.stdout, re.MULTILINE)
    assert "(informational" not in result.stdout


def test_bench_refuses_a_handler_that_does_not_import(
    make_sample_project: Callable[..., Project],
) -> None:
    settings = make_sample_project(
        edit=lambda text: text.replace(
            '"sample_orders.handler.lambda_handler"', '"sample_orders.missing.lambda_handler"'
        )
    )

    result = sqsl("bench", "--records", "5", "--repeats", "1")

    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: {settings.root / 'pyproject.toml'}: [tool.sqsl.function] handler = "
        "'sample_orders.missing.lambda_handler': "
    )
    assert "no module 'sample_orders.missing'" in result.stderr
    assert "Per record" not in result.stdout  # nothing was measured
