"""Render the template through Copier's public API, the way a user's `copier copy` does.

Copier reads a local git template at ``vcs_ref="HEAD"`` *plus* the uncommitted changes of the
working tree (it clones, then commits the dirty files in the clone and warns with
``DirtyLocalWarning``), so the tests always see the files being edited, committed or not.

The *probe* is a throwaway template made of this repository's ``copier.yml`` and a single
``probe.json.jinja`` that dumps every answer and computed value as JSON. It shows what
Copier computes from a set of answers without depending on the files under ``template/``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from copier import Settings, run_copy, run_update

REPO_ROOT = Path(__file__).resolve().parent.parent
COPIER_YML = REPO_ROOT / "copier.yml"
PROBE_FILE = "probe.json"


def render(
    dest: Path,
    /,
    *,
    template: Path = REPO_ROOT,
    unsafe: bool = False,
    skip_tasks: bool = True,
    vcs_ref: str = "HEAD",
    **answers: Any,
) -> Path:
    """Render ``template`` into ``dest`` with ``answers``; every other question takes its default.

    Raises ``ValueError`` (naming the question) when an answer fails its validator or is not
    one of the choices; nothing is written in that case. User settings
    (``~/.config/copier/settings.yml``) are ignored so that a developer's own defaults never
    change what the tests render.

    The post-copy tasks (hooks/post_copy.py: make sync, git init, pre-commit install) are
    skipped unless ``skip_tasks=False``, which also needs ``unsafe=True`` (``--trust``): most
    tests want the files, and the generated-project tests sync through the project's own make.
    """
    run_copy(
        src_path=str(template),
        dst_path=dest,
        data=dict(answers),
        defaults=True,
        unsafe=unsafe,
        skip_tasks=skip_tasks,
        quiet=True,
        vcs_ref=vcs_ref,
        settings=Settings(defaults={}, trust=[]),
    )
    return dest


def load_copier_yml(path: Path = COPIER_YML) -> dict[str, Any]:
    """The parsed ``copier.yml``: configuration keys start with ``_``, the rest are questions."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise TypeError(f"{path} is not a mapping")
    return data


def questions(path: Path = COPIER_YML) -> dict[str, dict[str, Any]]:
    """Every question and computed value of ``copier.yml``, in file order."""
    return {
        name: spec
        for name, spec in load_copier_yml(path).items()
        if not name.startswith("_") and isinstance(spec, dict)
    }


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=copier-sqs-lambda tests",
            "-c",
            "user.email=tests@example.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def commit_all(repo: Path, message: str = "test template") -> None:
    """Make ``repo`` a git repository (if it is not one) and commit everything in it."""
    if not (repo / ".git").exists():
        _git(repo, "init", "--quiet")
    _git(repo, "add", "-A")
    _git(repo, "commit", "--quiet", "--no-verify", "-m", message)


def tag(repo: Path, name: str) -> None:
    """Tag ``repo``'s HEAD (an annotated tag, as a release is)."""
    _git(repo, "tag", "--annotate", "--message", f"release {name}", name)


def template_copy(dest: Path) -> Path:
    """A throwaway git repository holding this template as the working tree has it.

    Tracked and untracked files, ignored ones left out (.venv, caches), committed once: tests
    tag, change and re-tag it freely, and never touch this repository's own tags.
    """
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for relative in filter(None, listed.split("\0")):
        source = REPO_ROOT / relative
        if source.is_file():
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    commit_all(dest, "template as the working tree has it")
    return dest


def update(project: Path, /, *, vcs_ref: str, skip_tasks: bool = True, **answers: Any) -> Path:
    """``copier update --trust --defaults [--skip-tasks]`` of ``project`` to ``vcs_ref``.

    ``answers`` change answers (``--data``); the others keep their recorded values.
    """
    run_update(
        dst_path=project,
        data=dict(answers),
        defaults=True,
        overwrite=True,
        unsafe=True,
        skip_tasks=skip_tasks,
        quiet=True,
        vcs_ref=vcs_ref,
        settings=Settings(defaults={}, trust=[]),
    )
    return project


def make_probe_template(dest: Path, copier_yml: Path = COPIER_YML) -> Path:
    """Build the probe template in ``dest``: ``copier.yml`` and one file dumping every value."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(copier_yml, dest / "copier.yml")
    config = load_copier_yml(copier_yml)
    subdirectory = Path(str(config.get("_subdirectory", ".")))
    suffix = str(config.get("_templates_suffix", ".jinja"))
    fields = ",\n".join(f'  "{name}": {{{{ {name} | tojson }}}}' for name in questions(copier_yml))
    probe = dest / subdirectory / f"{PROBE_FILE}{suffix}"
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text("{\n" + fields + "\n}\n", encoding="utf-8")
    commit_all(dest, "probe template")
    return dest


def probe(probe_template: Path, dest: Path, **answers: Any) -> dict[str, Any]:
    """Every answer and computed value Copier derives from ``answers``, read from the probe."""
    render(dest, template=probe_template, skip_tasks=True, **answers)
    values = json.loads((dest / PROBE_FILE).read_text(encoding="utf-8"))
    if not isinstance(values, dict):
        raise TypeError(f"{PROBE_FILE} is not a JSON object")
    return values


def answers_file(rendered: Path) -> dict[str, Any]:
    """The ``.copier-answers.yml`` of a render (the answers asked, not the computed values)."""
    path = rendered / ".copier-answers.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise TypeError(f"{path} is not a mapping")
    return data
