"""Run checkov, pinned, in an environment of its own.

checkov pins boto3 exactly (an old release), which conflicts with this project's boto3, so it
never enters the project's environment: ``uv tool run --from checkov==<version>`` installs it
once into uv's cache, and every later run is offline (``--skip-download``: no policy updates).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

CHECKOV_VERSION = "3.3.30"


def uv_executable() -> str:
    """The uv running these tests (``uv run`` sets ``UV``), else the one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        raise RuntimeError(
            "checkov runs through uv (uv tool run); run the tests with `make test`, "
            "which finds or installs uv"
        )
    return found


def run_checkov(target: list[str], framework: str, cwd: Path) -> dict[str, Any]:
    """checkov's JSON report for ``target`` (``["-f", file]`` or ``["-d", dir]``).

    Raises ``AssertionError`` with checkov's output when it fails to run or finds a failed
    check (exit code 1), so a test failure shows the findings.
    """
    result = subprocess.run(
        [
            uv_executable(),
            "tool",
            "run",
            "--from",
            f"checkov=={CHECKOV_VERSION}",
            "checkov",
            *target,
            "--framework",
            framework,
            "--skip-download",
            "--output",
            "json",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout[-6000:] + result.stderr[-6000:]
    assert result.returncode == 0, f"checkov found failed checks or did not run:\n{output}"
    report: dict[str, Any] = json.loads(result.stdout)
    return report
