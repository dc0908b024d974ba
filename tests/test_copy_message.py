"""What ``copier copy`` prints when it is done: the next steps, and a warning when the
template was given as a relative path, which ``copier update`` inside the service cannot
find again (Copier records ``_src_path`` as typed), and from which the service's uv cannot
install the local tools (pyproject.toml's [tool.uv.sources] needs an absolute path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.rendering import template_copy

COPIER = [sys.executable, "-m", "copier"]


def _copy(cwd: Path, source: str, dest: str) -> str:
    """``copier copy --defaults --skip-tasks`` run in ``cwd``; what it printed to stderr."""
    result = subprocess.run(
        [*COPIER, "copy", "--defaults", "--skip-tasks", "--vcs-ref", "HEAD", source, dest],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("copy-message")
    template_copy(root / "copier-sqs-lambda")
    return root


def test_a_copy_from_a_relative_path_says_that_update_will_not_find_it(workspace: Path) -> None:
    printed = _copy(workspace, "copier-sqs-lambda", "relative-svc")

    assert "cd relative-svc" in printed
    assert "the relative path" in printed
    assert "copier-sqs-lambda, so `copier update` finds it only from the folder" in printed
    assert "copier-sqs-lambda/sqs-lambda-tools, a path uv reads from the service's own" in printed


def test_a_copy_from_an_absolute_path_prints_only_the_next_steps(workspace: Path) -> None:
    printed = _copy(workspace, str(workspace / "copier-sqs-lambda"), "absolute-svc")

    assert "make local" in printed
    assert "make test" in printed
    assert "relative path" not in printed
    assert "sqs-lambda-tools" not in printed
