"""The post-copy tasks (hooks/post_copy.py, run by Copier's ``_tasks``): they need ``--trust``,
run what the ``post_copy_tasks`` answer lists, skip what ``COPIER_SQS_LAMBDA_SKIP`` names, and a
failing step reports what to run by hand and never takes the rendered project with it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from copier.errors import TaskError, UnsafeTemplateError
from plumbum import local

from tests.conftest import TaskEnv
from tests.rendering import render

BIN = Path(sys.executable).parent


def _git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project, capture_output=True, text=True, check=True
    ).stdout


def test_tasks_need_trust(tmp_path: Path) -> None:
    with pytest.raises(UnsafeTemplateError, match="tasks"):
        render(tmp_path / "svc", skip_tasks=False)
    assert not (tmp_path / "svc").exists()


@pytest.mark.slow
def test_every_task_runs_by_default(tmp_path: Path, git_identity: None, task_env: TaskEnv) -> None:
    # The project's make finds uv on PATH (else it would bootstrap one into .tools/).
    task_env(PATH=f"{BIN}:{local.env['PATH']}")
    project = render(tmp_path / "svc", unsafe=True, skip_tasks=False)
    assert (project / ".venv" / "bin" / "python").exists()
    assert (project / "uv.lock").is_file()
    log = _git(project, "log", "--format=%s").splitlines()
    assert len(log) == 1
    assert log[0].startswith("Initial commit from copier-sqs-lambda")
    assert "uv.lock" in _git(project, "ls-files").splitlines()
    assert _git(project, "status", "--porcelain") == ""
    assert _git(project, "branch", "--show-current").strip() == "main"
    assert (project / ".git" / "hooks" / "pre-commit").is_file()


def test_no_task_runs_when_the_answer_lists_none(tmp_path: Path) -> None:
    project = render(tmp_path / "svc", unsafe=True, skip_tasks=False, post_copy_tasks=[])
    assert (project / "Makefile").is_file()
    assert not (project / ".git").exists()
    assert not (project / ".venv").exists()
    assert not (project / "uv.lock").exists()


def test_the_environment_variable_skips_steps(
    tmp_path: Path,
    git_identity: None,
    task_env: TaskEnv,
    capfd: pytest.CaptureFixture[str],
) -> None:
    task_env(COPIER_SQS_LAMBDA_SKIP="sync, pre-commit")
    project = render(tmp_path / "svc", unsafe=True, skip_tasks=False)
    assert not (project / ".venv").exists()
    assert not (project / ".git" / "hooks" / "pre-commit").exists()
    assert len(_git(project, "log", "--format=%s").splitlines()) == 1
    stderr = capfd.readouterr().err
    assert "sync: skipped (COPIER_SQS_LAMBDA_SKIP=sync, pre-commit)" in stderr
    assert "pre-commit: skipped" in stderr


def test_a_failed_step_is_reported_and_the_project_kept(
    tmp_path: Path,
    no_git_identity: None,
    task_env: TaskEnv,
    capfd: pytest.CaptureFixture[str],
) -> None:
    task_env(COPIER_SQS_LAMBDA_SKIP="sync")
    project = render(tmp_path / "svc", unsafe=True, skip_tasks=False)
    # Every file is there; no half repository (init without a commit) is left behind.
    assert (project / "Makefile").is_file()
    assert (project / ".copier-answers.yml").is_file()
    assert not (project / ".git").exists()
    stderr = capfd.readouterr().err
    assert "git: FAILED: git commit failed (set git config --global user.name" in stderr
    assert 'run: git init -b main && git add -A && git commit -m "Initial commit' in stderr
    # The next step knows why it cannot run, and says what to do instead.
    assert "pre-commit: FAILED: no git repository here" in stderr
    assert "run: make sync && .venv/bin/pre-commit install" in stderr


def test_strict_mode_makes_a_failed_step_fatal(
    tmp_path: Path, no_git_identity: None, task_env: TaskEnv
) -> None:
    task_env(COPIER_SQS_LAMBDA_SKIP="sync,pre-commit", COPIER_SQS_LAMBDA_STRICT="1")
    with pytest.raises(TaskError):
        render(tmp_path / "svc", unsafe=True, skip_tasks=False)
    # Copier removes a project it created when a task fails: nothing half-made remains.
    assert not (tmp_path / "svc").exists()
