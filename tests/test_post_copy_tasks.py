"""The post-copy tasks (hooks/post_copy.py, run by Copier's ``_tasks``): they need ``--trust``,
run what the ``post_copy_tasks`` answer lists, skip what ``COPIER_SQS_LAMBDA_SKIP`` names, and a
failing step reports what to run by hand and never takes the rendered project with it.
"""

from __future__ import annotations

import os
import shutil
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
    committed = _git(project, "ls-files").splitlines()
    assert "uv.lock" in committed
    # make sync wrote the sample events from the sample function: committed with the rest.
    assert {"events/batch.json", "events/duplicate.json"} <= set(committed)
    assert _git(project, "status", "--porcelain") == ""
    assert _git(project, "branch", "--show-current").strip() == "main"
    assert (project / ".git" / "hooks" / "pre-commit").is_file()


# The PATH a git GUI may start with: git and the system's tools, nothing of the user's.
MINIMAL_PATH = "/usr/bin:/bin"
GOOD_CHANGES = (
    '''

def describe(order_id: str) -> str:
    """One line about an order, for logs."""
    return f"order {order_id}"
''',
    '''

def is_test_order(order_id: str) -> bool:
    """Whether an order id is one of the samples."""
    return order_id.startswith("o-")
''',
)
HOOKS = ("ruff check --fix", "ruff format", "mypy --strict")
DATA_HOOKS = ("check toml", "check yaml")
# What this test run's `uv run` exports, which a user's commit does not have.
OUR_ENV = frozenset({"UV", "VIRTUAL_ENV", "UV_PYTHON", "PYTHONPATH"})
# An error ruff cannot fix, and mypy refuses too.
BAD_CHANGE = """

def broken() -> str:
    return undefined_name
"""


def _path_without_uv() -> str:
    entries = [entry for entry in local.env["PATH"].split(os.pathsep) if entry]
    return os.pathsep.join(entry for entry in entries if not (Path(entry) / "uv").exists())


def _commit(project: Path, path: str, message: str) -> tuple[int, str]:
    """``git commit -a`` as a user's shell (or GUI) with this PATH runs it, hooks included:
    its exit status and its output (git sends a hook's output to stderr)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in OUR_ENV and not key.startswith("PYTEST_")
    }
    env["PATH"] = path
    result = subprocess.run(
        ["git", "commit", "--all", "--message", message],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.slow
def test_the_first_commits_run_the_hooks_with_no_uv_on_path(
    tmp_path: Path, git_identity: None, task_env: TaskEnv
) -> None:
    # A machine without uv: the project's make bootstraps its own into .tools/.
    path = _path_without_uv()
    assert shutil.which("uv", path=path) is None
    # `uv run` (which runs these tests) exports UV, which the Makefile would use.
    task_env(PATH=path, VIRTUAL_ENV=None, UV=None)
    project = render(tmp_path / "svc", unsafe=True, skip_tasks=False)
    assert (project / ".tools" / "bin" / "uv").is_file()
    assert (project / ".git" / "hooks" / "pre-commit").is_file()
    orders = project / "src" / "orders_consumer" / "orders.py"
    original = orders.read_text(encoding="utf-8")

    # WHEN a user commits sound changes, from a shell with no uv, then from a git GUI
    orders.write_text(original + GOOD_CHANGES[0], encoding="utf-8")
    from_shell = _commit(project, path, "Describe orders")
    orders.write_text(original + "".join(GOOD_CHANGES), encoding="utf-8")
    for name in ("pyproject.toml", "docker-compose.yml"):  # for the TOML and YAML hooks
        with (project / name).open("a", encoding="utf-8") as file:
            file.write("# reviewed\n")
    from_gui = _commit(project, MINIMAL_PATH, "Tell test orders")

    # THEN the hooks ran and passed, and both commits were made
    for (status, output), hooks in ((from_shell, HOOKS), (from_gui, (*HOOKS, *DATA_HOOKS))):
        assert status == 0, output
        for hook in hooks:
            assert any(
                line.startswith(hook) and line.endswith("Passed") for line in output.splitlines()
            ), output
    assert _git(project, "log", "--format=%s").splitlines()[:2] == [
        "Tell test orders",
        "Describe orders",
    ]

    # WHEN a change with a lint error is committed, THEN the hooks refuse it
    orders.write_text(original + BAD_CHANGE, encoding="utf-8")
    status, output = _commit(project, MINIMAL_PATH, "Broken")
    assert status != 0
    assert "F821" in output, output
    assert "Undefined name `undefined_name`" in output
    assert _git(project, "log", "-1", "--format=%s").strip() == "Tell test orders"


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
