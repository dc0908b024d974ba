"""The generated Makefile's everyday targets do what their help says, in a real render.

``make test ARGS=...`` hands the options to pytest (as ``make dev ARGS=...`` does to the
local tools, ``sqsl``), ``make format`` formats the code even when ruff finds what it cannot
fix, then lists those findings and fails, and the sample events are written by
``make events``, and by ``make sync`` and ``make test`` when they are missing. Slow: the
render's environment is installed once.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.rendering import render

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("service-makefile")]

VENV_BIN = Path(sys.executable).parent
#: What this test run exports that a user's shell does not have.
OUR_ENV = frozenset(
    {"UV", "VIRTUAL_ENV", "UV_PYTHON", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
)
COUNT = re.compile(r"(\d+) (passed|failed|deselected|errors?|skipped)")
COLLECTED = re.compile(r"(\d+)/\d+ tests collected \((\d+) deselected\)")


def _env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in OUR_ENV and not key.startswith("PYTEST_")
    }
    env["PATH"] = os.pathsep.join([env.get("PATH", ""), str(VENV_BIN)])  # uv, as a user has it
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def make(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", *arguments],
        cwd=project,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )


def counts(output: str) -> dict[str, int]:
    """The numbers of pytest's last summary line ("3 passed, 2 deselected in 1.2s")."""
    line = [line for line in output.splitlines() if COUNT.search(line)][-1]
    return {word: int(number) for number, word in COUNT.findall(line)}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default service, its environment installed (`make sync`)."""
    path = render(tmp_path_factory.mktemp("makefile") / "svc")
    synced = make(path, "sync")
    assert synced.returncode == 0, synced.stdout
    return path


def test_make_test_passes_args_to_pytest(project: Path) -> None:
    collected = make(project, "test", "ARGS=-m unit --collect-only -q")
    assert collected.returncode == 0, collected.stdout
    found = COLLECTED.search(collected.stdout)
    assert found is not None, collected.stdout
    unit, others = int(found.group(1)), int(found.group(2))

    result = make(project, "test", "ARGS=-m unit -q")

    # Only the unit tests ran: the integration and packaging tests were deselected.
    assert result.returncode == 0, result.stdout
    ran = counts(result.stdout)
    assert ran["deselected"] == others > 0
    assert ran["passed"] + ran.get("skipped", 0) == unit > 0


def test_make_format_formats_despite_findings_then_lists_them(project: Path) -> None:
    scratch = project / "src" / "orders_consumer" / "scratch.py"
    # An unused import (ruff fixes it), bad layout (ruff format fixes it), and an
    # undefined name (only a person can fix it).
    scratch.write_text(
        "import os\ndef  total( items ) :\n    return sum( items )+missing\n", encoding="utf-8"
    )
    try:
        result = make(project, "format")
        fixed = scratch.read_text(encoding="utf-8")
    finally:
        scratch.unlink()

    assert result.returncode != 0
    assert fixed == "def total(items):\n    return sum(items) + missing\n"
    assert "F821" in result.stdout
    assert "make format: formatted; the findings above need a hand" in result.stdout
    # With nothing left to fix, it passes.
    clean = make(project, "format")
    assert clean.returncode == 0, clean.stdout


def test_the_sample_events_are_written_when_missing_and_by_make_events(project: Path) -> None:
    events = [project / "events" / name for name in ("batch.json", "duplicate.json")]
    # `make sync` (the fixture's) wrote them: a fresh render has none.
    written = [path.read_text(encoding="utf-8") for path in events]
    for path in events:
        path.unlink()

    tested = make(project, "test", "ARGS=-q tests/unit/test_events.py")

    assert tested.returncode == 0, tested.stdout
    assert [path.read_text(encoding="utf-8") for path in events] == written
    again = make(project, "events")
    assert again.returncode == 0, again.stdout
    assert "unchanged events/batch.json" in again.stdout
