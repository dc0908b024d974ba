"""The named combinations render projects whose own ``make test`` passes.

This is what a user does after ``copier copy``: ``make test`` in the new folder, which
bootstraps the project's environment and runs its unit and integration tests (the latter
against the embedded emulator when no Docker engine answers). Slow: it installs each project.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RunStats
from tests.matrix import Combination, named_combinations
from tests.rendering import render

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

    try:
        result = subprocess.run(
            ["make", "test"],
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
            f"[{combination.id}] `make test` timed out after {MAKE_TIMEOUT_SECONDS} s"
            f" (log: {log})\n{_tail(output)}",
            pytrace=False,
        )
    log.write_text(result.stdout, encoding="utf-8")

    where = f"[{combination.id}] `make test` in {project} (log: {log})"
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
    run_stats.project_tests[combination.id] = passed


def _tail(output: str, lines: int = 200) -> str:
    return "\n".join(output.splitlines()[-lines:])
