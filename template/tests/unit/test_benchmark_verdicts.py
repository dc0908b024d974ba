"""`make bench` and `make bench-local` judge a figure as they print it.

A verdict taken on the unrounded figure printed ``MISS ... 1.10x (target <= 1.1x)``: the
line must agree with itself, whatever the digits past the printed ones.
"""

from __future__ import annotations

import re

import pytest

from tools import benchmark_handler, benchmark_local_loop

pytestmark = pytest.mark.unit

FIGURE = re.compile(r"^(PASS|MISS)  .*?: (\d+\.\d+)(?:x| ms) \(target <= ([\d.]+)")


@pytest.mark.parametrize(
    "value, verdict",
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
    line = benchmark_handler.Check("handler / bare loop", value, 1.1, "x").line()

    match = FIGURE.match(line)
    assert match is not None, line
    assert match.group(1) == verdict
    assert (float(match.group(2)) <= float(match.group(3))) == (verdict == "PASS")


def test_the_import_verdict_agrees_with_the_printed_milliseconds() -> None:
    at_target = benchmark_handler.Check("handler import", 20.004, 20.0, " ms")
    above = benchmark_handler.Check("handler import", 20.006, 20.0, " ms")

    assert at_target.line() == "PASS  handler import: 20.00 ms (target <= 20 ms)"
    assert above.line() == "MISS  handler import: 20.01 ms (target <= 20 ms)"


def test_the_local_loop_verdicts_agree_with_the_printed_figures() -> None:
    [share, latency] = benchmark_local_loop.verdicts(0.7996, 49.96)

    # 80 % printed, and 80 % is the target; 50.0 ms printed, and the target is below 50 ms.
    assert share == ("PASS  run at 80% of the ceiling (target >= 80%)", True)
    assert latency == ("MISS  p50 latency 50.0 ms (target < 50 ms)", False)
    [share, latency] = benchmark_local_loop.verdicts(0.794, 49.94)
    assert share == ("MISS  run at 79% of the ceiling (target >= 80%)", False)
    assert latency == ("PASS  p50 latency 49.9 ms (target < 50 ms)", True)
