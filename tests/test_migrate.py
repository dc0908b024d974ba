"""hooks/migrate.py keep-removed-edits, on a small template with this repository's
``_migrations``: after an update to a release that no longer renders some files, the ones
the team had changed are back under ``.copier-<release>-kept/`` with their diffs and named
on the output; the others are gone (what Copier did to both: the comment above
``keep_removed_edits`` in hooks/migrate.py).

tests/test_update.py updates a real service from 0.3.0 to this release; these tests cover the
cases that one does not: ``--conflict rej``, nothing edited, a file the team added to the
tools' folder, a service in a subfolder of its repository, an old release that cannot be
rendered.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from copier import Settings, run_update

from tests.rendering import REPO_ROOT, commit_all, render, tag, update

MIGRATE = REPO_ROOT / "hooks" / "migrate.py"
KEPT = Path(".copier-0.4.0-kept")


def migrate_module() -> Any:
    """hooks/migrate.py as a module (hooks/ is no package: Copier runs the file)."""
    spec = importlib.util.spec_from_file_location("migrate", MIGRATE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


OLD_TOOL = '"""A tool of {{ name }}."""\n\nLIMIT = 10\n'
OWN_CODE = '"""The service\'s own code."""\n'


@pytest.fixture
def small_template(tmp_path: Path) -> Path:
    """A template tagged 0.3.0 (renders ``src/<name>_dev/`` and ``run.sh``) and 0.4.0
    (renders neither), with this repository's ``_migrations`` and hooks/."""
    repo = tmp_path / "template"
    migrations = yaml.safe_load((REPO_ROOT / "copier.yml").read_text(encoding="utf-8"))
    config = {
        "_subdirectory": "template",
        "_migrations": migrations["_migrations"],
        "name": {"type": "str", "default": "orders"},
    }
    _write(repo / "copier.yml", yaml.safe_dump(config, sort_keys=False))
    shutil.copytree(REPO_ROOT / "hooks", repo / "hooks")
    rendered = repo / "template"
    _write(
        rendered / "{{ _copier_conf.answers_file }}.jinja",
        "# Changes here will be overwritten by Copier; NEVER EDIT MANUALLY\n"
        "{{ _copier_answers|to_nice_yaml -}}\n",
    )
    _write(rendered / "src" / "{{ name }}" / "own.py", OWN_CODE)
    _write(rendered / "src" / "{{ name }}_dev" / "tool.py.jinja", OLD_TOOL)
    _write(rendered / "src" / "{{ name }}_dev" / "other.py", '"""Never edited."""\n')
    _write(rendered / ".gitignore", "__pycache__/\n")
    _write(rendered / "run.sh", "#!/bin/sh\necho run\n")
    (rendered / "run.sh").chmod(0o755)
    commit_all(repo, "release 0.3.0")
    tag(repo, "0.3.0")
    shutil.rmtree(rendered / "src" / "{{ name }}_dev")
    (rendered / "run.sh").unlink()
    commit_all(repo, "release 0.4.0: the tools are a package")
    tag(repo, "0.4.0")
    return repo


def _service(root: Path, template: Path, subfolder: str = "") -> Path:
    """A service rendered at 0.3.0 and committed (in ``subfolder`` of its repository)."""
    service = render(root / subfolder if subfolder else root, template=template, vcs_ref="0.3.0")
    commit_all(root, "first render")
    return service


def _status(repo: Path) -> list[str]:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()


TEAM_FIX = "LIMIT = 25  # the team's fix: 10 was too low for our batches\n"


def test_a_changed_removed_file_is_kept_with_its_diff(
    tmp_path: Path, small_template: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    service = _service(tmp_path / "svc", small_template)
    tool = service / "src" / "orders_dev" / "tool.py"
    team_tool = tool.read_text(encoding="utf-8").replace("LIMIT = 10\n", TEAM_FIX)
    tool.write_text(team_tool, encoding="utf-8")
    (service / "run.sh").write_text("#!/bin/sh\necho run --fast\n", encoding="utf-8")
    # The team's own code that uses a tool: it is theirs, so the update keeps it, and says it
    # imports what is gone.
    _write(
        service / "src" / "orders" / "limits.py", "import os\nfrom orders_dev.tool import LIMIT\n"
    )
    _write(service / "tests" / "test_limits.py", "import orders_dev\n")
    commit_all(service, "team edits")
    capfd.readouterr()

    update(service, vcs_ref="0.4.0")

    err = capfd.readouterr().err
    # Every file the release dropped is gone from its place, edited or not.
    assert not (service / "src" / "orders_dev").exists()
    assert not (service / "run.sh").exists()
    assert (service / "src" / "orders" / "own.py").read_text(encoding="utf-8") == OWN_CODE
    # The edited ones are back under the kept folder, as the team had them.
    kept = service / KEPT
    assert (kept / "src" / "orders_dev" / "tool.py").read_text(encoding="utf-8") == team_tool
    assert (kept / "run.sh").stat().st_mode & 0o111
    assert not (kept / "src" / "orders_dev" / "other.py").exists()
    readme = (kept / "README.md").read_text(encoding="utf-8")
    assert "-LIMIT = 10\n+LIMIT = 25  # the team's fix" in readme
    assert "--- a/src/orders_dev/tool.py\n+++ b/src/orders_dev/tool.py\n" in readme
    assert "port it to `sqs-lambda-tools`" in readme
    assert 'exclude = ["*"]' in (kept / "ruff.toml").read_text(encoding="utf-8")
    # The update's output names them and what to do.
    assert "the update removed 3 files 0.4.0 no longer renders" in err
    assert "KEPT 2 of them (changed by you) in .copier-0.4.0-kept/:" in err
    assert "migrate:     src/orders_dev/tool.py" in err
    assert "migrate:     run.sh" in err
    assert f"read {KEPT}/README.md" in err
    assert "your code still imports what the update removed" in err
    assert "migrate:     src/orders/limits.py:2: from orders_dev.tool import LIMIT" in err
    assert "migrate:     tests/test_limits.py:1: import orders_dev" in err
    assert sorted(_status(service)) == [
        " D run.sh",
        " D src/orders_dev/other.py",
        " D src/orders_dev/tool.py",
        " M .copier-answers.yml",
        f"?? {KEPT}/README.md",
        f"?? {KEPT}/ruff.toml",
        f"?? {KEPT}/run.sh",
        f"?? {KEPT}/src/orders_dev/tool.py",
    ]
    assert (service / "src" / "orders" / "limits.py").is_file()


def test_with_conflict_rej_no_rej_file_is_left(tmp_path: Path, small_template: Path) -> None:
    """``--conflict rej`` leaves the team's diff of a dropped file as ``<file>.rej`` beside
    nothing: the kept copy and its README replace it."""
    service = _service(tmp_path / "svc", small_template)
    tool = service / "src" / "orders_dev" / "tool.py"
    tool.write_text(tool.read_text(encoding="utf-8") + TEAM_FIX, encoding="utf-8")
    commit_all(service, "team edit")

    run_update(
        dst_path=service,
        defaults=True,
        overwrite=True,
        unsafe=True,
        quiet=True,
        vcs_ref="0.4.0",
        conflict="rej",
        settings=Settings(defaults={}, trust=[]),
    )

    assert list(service.rglob("*.rej")) == []
    assert (
        (service / KEPT / "src" / "orders_dev" / "tool.py")
        .read_text(encoding="utf-8")
        .endswith(TEAM_FIX)
    )


def test_nothing_edited_nothing_kept(
    tmp_path: Path, small_template: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    service = _service(tmp_path / "svc", small_template)
    capfd.readouterr()

    update(service, vcs_ref="0.4.0")

    err = capfd.readouterr().err
    assert not (service / KEPT).exists()
    assert not (service / "src" / "orders_dev").exists()
    assert "the update removed 3 files" in err
    assert "none had changes of yours since 0.3.0: nothing to keep" in err


def test_files_of_the_team_in_a_folder_of_the_old_tools_are_named(
    tmp_path: Path, small_template: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Copier removes only what the old release rendered: a file the team added to the tools'
    folder stays there, named on the output; the folder's Python caches go."""
    service = _service(tmp_path / "svc", small_template)
    _write(service / "src" / "orders_dev" / "mine.py", "from orders_dev import tool\n")
    commit_all(service, "a command of our own")
    cache = service / "src" / "orders_dev" / "__pycache__" / "tool.cpython-311.pyc"
    _write(cache, "compiled")
    capfd.readouterr()

    update(service, vcs_ref="0.4.0")

    err = capfd.readouterr().err
    assert "files of yours stay in folders that held only the old tools" in err
    assert "migrate:     src/orders_dev/mine.py\n" in err
    assert "src/orders_dev/mine.py:1: from orders_dev import tool" in err
    assert sorted(p.name for p in (service / "src" / "orders_dev").iterdir()) == ["mine.py"]
    assert not (service / KEPT).exists()


def test_a_service_in_a_subfolder_of_its_repository(tmp_path: Path, small_template: Path) -> None:
    """HEAD's paths are the repository's; the service's files are found under its folder."""
    monorepo = tmp_path / "mono"
    _write(monorepo / "README.md", "Several services.\n")
    service = _service(monorepo, small_template, subfolder="services/orders")
    (service / "run.sh").write_text("#!/bin/sh\necho edited\n", encoding="utf-8")
    commit_all(monorepo, "team edit")

    update(service, vcs_ref="0.4.0")

    assert (service / KEPT / "run.sh").read_text(encoding="utf-8") == "#!/bin/sh\necho edited\n"
    assert not (service / KEPT / "src").exists()
    assert not (monorepo / KEPT).exists()


def test_without_the_old_release_every_removed_file_is_kept(tmp_path: Path) -> None:
    """When the old release cannot be rendered (the template moved), nothing tells an edited
    file from a pristine one: every file the update removed is kept, and the output says why."""
    service = tmp_path / "svc"
    _write(
        service / ".copier-answers.yml",
        f"_commit: 0.3.0\n_src_path: {tmp_path / 'gone'}\nname: orders\n",
    )
    _write(service / "src" / "orders_dev" / "tool.py", '"""Maybe edited."""\n')
    _write(service / "src" / "orders" / "own.py", OWN_CODE)
    commit_all(service, "a service")
    (service / "src" / "orders_dev" / "tool.py").unlink()  # what the update did

    result = subprocess.run(
        [sys.executable, str(MIGRATE), "keep-removed-edits", "0.4.0", "--template", "/nowhere"],
        cwd=service,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "could not render 0.3.0 to compare with: /nowhere at 0.3.0:" in result.stderr
    assert "KEPT 1 of them (changed or not)" in result.stderr
    kept = service / KEPT
    assert (kept / "src" / "orders_dev" / "tool.py").read_text(encoding="utf-8") == (
        '"""Maybe edited."""\n'
    )
    readme = (kept / "README.md").read_text(encoding="utf-8")
    assert "every\nremoved file is here, changed or not" in readme
    assert (service / "src" / "orders" / "own.py").is_file()


def test_outside_a_service_it_refuses(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(MIGRATE), "keep-removed-edits", "0.4.0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "no .copier-answers.yml here: is this a service?" in result.stderr


def test_the_diff_marks_a_missing_final_newline_and_fences_around_backticks() -> None:
    migrate = migrate_module()
    diff = migrate.team_diff("a.md", b"one\n", b"one\n```\ntwo")
    assert diff.endswith("+```\n+two\n\\ No newline at end of file\n")
    readme = migrate.kept_readme("0.4.0", "0.3.0", {"a.md": diff}, None, "git@example:t.git")
    assert "````diff\n--- a/a.md\n" in readme
    assert readme.rstrip().endswith("````")
    assert "an issue with its diff at the template's repository (git@example:t.git)" in readme
