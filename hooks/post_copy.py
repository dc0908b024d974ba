"""Copier's post-copy tasks: one step per run, in the rendered service's folder.

    python hooks/post_copy.py sync        # make sync: uv.lock + .venv (copy only)
    python hooks/post_copy.py git         # git init with a first commit (copy only)
    python hooks/post_copy.py pre-commit  # install the git hooks (copy only)

copier.yml runs the steps the ``post_copy_tasks`` answer lists. A step is also skipped when
its name is in the environment variable ``COPIER_SQS_LAMBDA_SKIP`` (comma-separated, or
``all``), which lets CI or a user with no network skip one without changing the answers.

A failing step never takes the project with it: Copier deletes a freshly rendered folder when
a task exits non-zero, and every file is already rendered by then. So a failure is reported,
with the command to run by hand, the step undoes what it half did (no ``.git`` without a first
commit), and the script exits 0. ``COPIER_SQS_LAMBDA_STRICT=1`` makes a failure fatal instead,
for pipelines that must not go on with a project that has no environment.

Standard library only: it runs on Copier's own interpreter, before the project has a venv.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

SKIP_VARIABLE = "COPIER_SQS_LAMBDA_SKIP"
STRICT_VARIABLE = "COPIER_SQS_LAMBDA_STRICT"
ANSWERS_FILE = ".copier-answers.yml"


class StepError(Exception):
    """A step could not finish: ``by_hand`` is what the user runs to finish it."""

    def __init__(self, reason: str, by_hand: str) -> None:
        super().__init__(reason)
        self.by_hand = by_hand


def _say(message: str) -> None:
    print(f"    post-copy: {message}", file=sys.stderr, flush=True)


def _run(args: Sequence[str], project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=project, capture_output=True, text=True, check=False)


def _tail(result: subprocess.CompletedProcess[str], lines: int = 12) -> str:
    output = (result.stdout + result.stderr).strip().splitlines()
    return "\n".join(f"      | {line}" for line in output[-lines:])


def sync(project: Path) -> str:
    """``make sync``: the project's own command locks and installs its environment."""
    if shutil.which("make") is None:
        raise StepError("make is not installed", "make sync")
    _say("locking and installing the environment (make sync; the first run downloads)...")
    result = _run(["make", "sync"], project)
    if result.returncode != 0:
        raise StepError(f"make sync exited {result.returncode}:\n{_tail(result)}", "make sync")
    return "uv.lock written, .venv ready"


def _template_version(project: Path) -> str:
    for line in (project / ANSWERS_FILE).read_text(encoding="utf-8").splitlines():
        if line.startswith("_commit:"):
            return line.split(":", 1)[1].strip()
    return "unknown version"


def git(project: Path) -> str:
    """``git init`` and a first commit of everything rendered (and uv.lock, if synced)."""
    if shutil.which("git") is None:
        raise StepError("git is not installed", "git init -b main && git add -A && git commit")
    inside = _run(["git", "rev-parse", "--is-inside-work-tree"], project)
    if inside.returncode == 0 and inside.stdout.strip() == "true":
        return "already inside a git work tree: left as it is, nothing committed"
    commit_message = f"Initial commit from copier-sqs-lambda {_template_version(project)}"
    by_hand = f'git init -b main && git add -A && git commit -m "{commit_message}"'
    for args in (
        ["git", "init", "--quiet", "--initial-branch=main"],
        ["git", "add", "--all"],
        ["git", "commit", "--quiet", "--message", commit_message],
    ):
        result = _run(args, project)
        if result.returncode != 0:
            # No half repository: an initialised .git with nothing committed would make
            # `copier update` refuse to run and hide that the step failed.
            shutil.rmtree(project / ".git", ignore_errors=True)
            hint = ""
            if "user.email" in result.stderr or "identity" in result.stderr:
                hint = " (set git config --global user.name and user.email first)"
            raise StepError(f"{' '.join(args[:2])} failed{hint}:\n{_tail(result)}", by_hand)
    return f'git repository on branch main, first commit "{commit_message}"'


def pre_commit(project: Path) -> str:
    """Install the pre-commit hooks from the project's own environment."""
    executable = project / ".venv" / "bin" / "pre-commit"
    by_hand = "make sync && .venv/bin/pre-commit install"
    if not (project / ".git").is_dir():
        raise StepError("no git repository here (the git step was skipped or failed)", by_hand)
    if not executable.exists():
        raise StepError("no .venv with pre-commit (the sync step was skipped or failed)", by_hand)
    result = _run([str(executable), "install"], project)
    if result.returncode != 0:
        raise StepError(f"pre-commit install failed:\n{_tail(result)}", by_hand)
    return "pre-commit hooks installed (.git/hooks/pre-commit)"


STEPS: dict[str, Callable[[Path], str]] = {"sync": sync, "git": git, "pre-commit": pre_commit}


def skipped_by_environment(step: str) -> bool:
    names = {name.strip() for name in os.environ.get(SKIP_VARIABLE, "").split(",")}
    return step in names or "all" in names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("step", choices=sorted(STEPS), help="the step to run")
    parser.add_argument(
        "--project", type=Path, default=Path.cwd(), help="the rendered service (default: here)"
    )
    args = parser.parse_args(argv)
    step: str = args.step
    if skipped_by_environment(step):
        _say(f"{step}: skipped ({SKIP_VARIABLE}={os.environ[SKIP_VARIABLE]})")
        return 0
    try:
        outcome = STEPS[step](args.project)
    except StepError as failure:
        _say(f"{step}: FAILED: {failure}")
        _say(f"{step}: the project is complete; to finish this step, run: {failure.by_hand}")
        return 1 if os.environ.get(STRICT_VARIABLE) == "1" else 0
    _say(f"{step}: {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
