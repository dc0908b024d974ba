"""Run the IaC linters the template's tests use: cfn-lint from the dev group, and checkov.

checkov pins boto3 exactly (1.35.49), which conflicts with the dev group's boto3, so it runs
in an environment of its own through ``uv tool run`` at :data:`CHECKOV_VERSION`, offline
(``--skip-download``). A run takes several seconds: each test module runs it once per render.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.rendering import REPO_ROOT

CHECKOV_VERSION = "3.3.30"
BIN = Path(sys.executable).parent


def uv() -> str:
    """The uv of the dev group, the bootstrapped one, or the one on PATH."""
    for candidate in (BIN / "uv", REPO_ROOT / ".tools" / "bin" / "uv"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("uv")
    if found is None:
        pytest.fail("uv is needed to run checkov in its own environment")
    return found


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``args`` in ``cwd``, output captured, never raising on a non-zero exit."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def cfn_lint(template: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "cfn-lint"), "--format", "parseable", template], cwd)


def checkov(target: list[str], framework: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """checkov's JSON report of ``target`` (``["-f", file]`` or ``["-d", folder]``).

    Not ``--quiet``: the report then lists the skipped checks too, with their reasons.
    """
    return run(
        [
            uv(),
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
        cwd,
    )
