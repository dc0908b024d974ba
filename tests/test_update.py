"""``copier update``: a service that a team has changed takes the template's fixes, keeps its
edits, and recomputes what follows from a changed answer.

Every test works on a throwaway copy of this repository (tests.rendering.template_copy), tags
releases there, renders a service from one tag, edits it the way a user would, changes the
template, tags again and updates. This repository's own tags are never read or written: the
update from 0.3.0, the last release with the tools in the service, takes 0.3.0 from this
repository's history (the commit before they left the template).
"""

from __future__ import annotations

import filecmp
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import TaskEnv
from tests.rendering import REPO_ROOT, commit_all, render, tag, template_copy, update
from tests.test_migrate import migrate_module

PACKAGE = "orders_consumer"
CONFLICT_MARKER = re.compile(r"^(<{7}|>{7}) ", re.MULTILINE)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def _edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must be there once) with ``new`` in ``path``."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
    path.write_text(text.replace(old, new), encoding="utf-8")


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def _answers(project: Path) -> dict[str, Any]:
    loaded = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _leftovers(project: Path) -> list[str]:
    """``.rej`` files and conflict markers anywhere in the service."""
    found = [str(p.relative_to(project)) for p in project.rglob("*.rej")]
    for path in project.rglob("*"):
        if ".git" in path.parts or ".venv" in path.parts or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if CONFLICT_MARKER.search(text):
            found.append(f"{path.relative_to(project)}: conflict markers")
    return found


def _tree_differences(left: Path, right: Path) -> list[str]:
    """Files that differ or exist on one side only, ``.git`` and the answers file aside."""
    differences: list[str] = []

    def walk(comparison: filecmp.dircmp[str], prefix: str) -> None:
        ignored = {".git", ".copier-answers.yml"}
        differences.extend(f"{prefix}{name}" for name in comparison.diff_files)
        differences.extend(
            f"{prefix}{name} (only one side)"
            for name in comparison.left_only + comparison.right_only
            if name not in ignored
        )
        for name, sub in comparison.subdirs.items():
            if name not in ignored:
                walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(left, right, ignore=[]), "")
    return differences


@pytest.fixture
def template_v1(tmp_path: Path) -> Path:
    """A copy of the template, tagged 0.4.0 (this version)."""
    repo = template_copy(tmp_path / "template")
    tag(repo, "0.4.0")
    return repo


@pytest.fixture
def committed_service(
    tmp_path: Path, template_v1: Path, git_identity: None, task_env: TaskEnv
) -> Path:
    """A service rendered at 0.4.0 whose first commit the post-copy git task made, as it
    would for a user (the other tasks skipped: no sync, no hooks)."""
    task_env(COPIER_SQS_LAMBDA_SKIP="sync,pre-commit")
    service = render(
        tmp_path / "svc", template=template_v1, unsafe=True, skip_tasks=False, vcs_ref="0.4.0"
    )
    assert _git(service, "log", "--format=%s").startswith("Initial commit")
    return service


def _release_v2(repo: Path) -> None:
    """The template's next release, 0.4.1: fixes in files a user edits too, or not at all."""
    template = repo / "template"
    # A file the user never touches.
    _edit(
        template / "src" / "{{ package_name }}" / "settings.py.jinja",
        '"""Configuration read',
        '"""Release 0.4.1 touched this docstring.\n\nConfiguration read',
    )
    # A file the user edits too, on other lines: both changes must be kept.
    _edit(
        template / "pyproject.toml.jinja",
        "[tool.ruff]\n",
        "[tool.ruff]\n# Release 0.4.1: one line length for code and docs.\n",
    )
    # README: the user appends a section at the end; the template fixes an earlier one.
    _edit(
        template / "README.md.jinja",
        "## Benchmark\n",
        "## Benchmark\n\nRelease 0.4.1 added this sentence.\n",
    )
    # The example business logic changes too, but orders.py belongs to the user now
    # (_skip_if_exists): the update must leave the user's version alone.
    _edit(
        template / "src" / "{{ package_name }}" / "orders.py.jinja",
        '"""The business logic:',
        '"""Release 0.4.1 example.\n\nThe business logic:',
    )
    commit_all(repo, "release 0.4.1")
    tag(repo, "0.4.1")


USER_LOGIC = '''

def audit_label(order_id: str) -> str:
    """The team's own addition: how an order shows in the audit trail."""
    return f"audit:{order_id}"
'''

USER_TEST = f'''"""The team's own test of its own logic."""

from {PACKAGE}.orders import audit_label


def test_audit_label() -> None:
    assert audit_label("o-1") == "audit:o-1"
'''


@pytest.mark.slow
def test_update_keeps_user_edits_and_brings_the_template_fixes(
    template_v1: Path, committed_service: Path
) -> None:
    service = committed_service
    # The team's edits: business logic with its test, a dependency, a README section.
    orders = service / "src" / PACKAGE / "orders.py"
    _append(orders, USER_LOGIC)
    (service / "tests" / "unit" / "test_audit.py").write_text(USER_TEST, encoding="utf-8")
    _edit(
        service / "pyproject.toml",
        '    "boto3==1.44.8",\n',
        '    "boto3==1.44.8",\n    "python-dateutil==2.9.0.post0",\n',
    )
    _append(service / "README.md", "\n## Team notes\n\nOn call: the orders team.\n")
    commit_all(service, "team edits")
    user_orders = orders.read_text(encoding="utf-8")

    _release_v2(template_v1)
    update(service, vcs_ref="0.4.1", max_receive_count=7)

    assert _leftovers(service) == []
    # The user's edits survive.
    assert orders.read_text(encoding="utf-8") == user_orders
    assert "Release 0.4.1 example" not in user_orders
    pyproject = (service / "pyproject.toml").read_text(encoding="utf-8")
    assert '"python-dateutil==2.9.0.post0",' in pyproject
    readme = (service / "README.md").read_text(encoding="utf-8")
    assert readme.rstrip().endswith("On call: the orders team.")
    # The template's fixes arrive, beside the user's lines where both touched a file.
    assert "# Release 0.4.1: one line length" in pyproject
    assert "Release 0.4.1 added this sentence." in readme
    settings = (service / "src" / PACKAGE / "settings.py").read_text(encoding="utf-8")
    assert settings.startswith('"""Release 0.4.1 touched this docstring.')
    # The changed answer is recorded and reaches every file that uses it.
    answers = _answers(service)
    assert answers["_commit"] == "0.4.1"
    assert answers["max_receive_count"] == 7
    assert "maxReceiveCount: 7" in (service / "template.yaml").read_text(encoding="utf-8")
    provision = service / "infra" / "localstack" / "ready.d" / "provision.py"
    assert "MAX_RECEIVE_COUNT = 7" in provision.read_text(encoding="utf-8")

    # The updated service's own checks pass, the team's test among them.
    for target in ("lint", "test"):
        result = subprocess.run(
            ["make", target], cwd=service, capture_output=True, text=True, check=False
        )
        output = result.stdout[-5000:] + result.stderr[-3000:]
        assert result.returncode == 0, f"make {target} failed:\n{output}"
    assert "test_audit.py ." in result.stdout or "test_audit.py::" in result.stdout


def test_update_with_a_changed_answer_equals_a_fresh_render(
    tmp_path: Path, template_v1: Path
) -> None:
    """Every derived value follows a changed answer: IaC, local stack, provisioning, docs."""
    service = render(tmp_path / "svc", template=template_v1, vcs_ref="0.4.0")
    commit_all(service, "first render")
    example_orders = (service / "src" / PACKAGE / "orders.py").read_text(encoding="utf-8")
    _release_v2(template_v1)

    update(service, vcs_ref="0.4.1", batch_size=50)

    answers = {k: v for k, v in _answers(service).items() if not k.startswith("_")}
    assert answers["batch_size"] == 50
    # The window and the visibility timeout were accepted defaults: recorded as "derived",
    # they follow batch_size (a window of at least 1 s above 10 records; 6 x 30 s + 1 s).
    assert answers["max_batching_window_seconds"] == "derived"
    assert answers["visibility_timeout_seconds"] == "derived"
    # The updated service is, file for file, what a fresh render with its answers gives,
    # except orders.py, which is the user's (_skip_if_exists) and keeps the 0.4.0 example.
    fresh = render(tmp_path / "fresh", template=template_v1, vcs_ref="0.4.1", **answers)
    assert _leftovers(service) == []
    assert _tree_differences(service, fresh) == [f"src/{PACKAGE}/orders.py"]
    assert (service / "src" / PACKAGE / "orders.py").read_text(encoding="utf-8") == example_orders
    template = (service / "template.yaml").read_text(encoding="utf-8")
    assert "BatchSize: 50" in template
    assert "MaximumBatchingWindowInSeconds: 1" in template
    assert "VisibilityTimeout: 181" in template


def test_an_update_runs_no_post_copy_task(
    template_v1: Path,
    committed_service: Path,
    task_env: TaskEnv,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The tasks are for a new service: during an update Copier also renders into scratch
    folders, where a sync would download for nothing."""
    service = committed_service
    _release_v2(template_v1)
    task_env(COPIER_SQS_LAMBDA_SKIP=None)
    capfd.readouterr()

    update(service, vcs_ref="0.4.1", skip_tasks=False)

    assert "post-copy" not in capfd.readouterr().err
    assert not (service / ".venv").exists()
    assert _answers(service)["_commit"] == "0.4.1"


def test_an_update_with_an_invalid_answer_changes_nothing(
    tmp_path: Path, template_v1: Path
) -> None:
    service = render(tmp_path / "svc", template=template_v1, vcs_ref="0.4.0")
    commit_all(service, "first render")
    _release_v2(template_v1)
    with pytest.raises(ValueError, match="'batch_size': 1-10000 for standard, got 20000"):
        update(service, vcs_ref="0.4.1", batch_size=20000)
    assert _git(service, "status", "--porcelain") == ""
    assert _answers(service)["_commit"] == "0.4.0"


def _visibility(service: Path) -> dict[str, str]:
    """The visibility timeout as every file of the service states it."""
    template = (service / "template.yaml").read_text(encoding="utf-8")
    provision = service / "infra" / "localstack" / "ready.d" / "provision.py"
    readme = (service / "README.md").read_text(encoding="utf-8")
    return {
        "iac": re.findall(r"VisibilityTimeout: (\d+)", template)[0],
        "provisioning": re.findall(
            r"^VISIBILITY_TIMEOUT_SECONDS = (\d+)$",
            provision.read_text(encoding="utf-8"),
            re.MULTILINE,
        )[0],
        "readme": re.findall(r"^### Visibility timeout: (\d+) s", readme, re.MULTILINE)[0],
    }


def _everywhere(seconds: int) -> dict[str, str]:
    return dict.fromkeys(("iac", "provisioning", "readme"), str(seconds))


def test_an_accepted_derived_default_follows_a_changed_answer(
    tmp_path: Path, template_v1: Path
) -> None:
    """The visibility timeout was left at its default (6 x 30 s): a new function timeout of
    60 s gives 360 s in every file, and the README no longer calls it a choice."""
    service = render(tmp_path / "svc", template=template_v1, vcs_ref="0.4.0")
    commit_all(service, "first render")
    assert _answers(service)["visibility_timeout_seconds"] == "derived"
    assert _visibility(service) == _everywhere(180)
    _release_v2(template_v1)

    update(service, vcs_ref="0.4.1", function_timeout_seconds=60)

    answers = _answers(service)
    assert answers["function_timeout_seconds"] == 60
    assert answers["visibility_timeout_seconds"] == "derived"
    assert _visibility(service) == _everywhere(360)
    readme = (service / "README.md").read_text(encoding="utf-8")
    assert "360 s = 6 x the function timeout (60 s) + the batching window" in readme
    assert "chosen explicitly" not in readme
    assert _leftovers(service) == []


def test_a_typed_setting_stays_until_a_change_makes_it_invalid(
    tmp_path: Path, template_v1: Path
) -> None:
    """A typed visibility timeout is kept when the function timeout changes; once the new
    timeout makes it invalid, Copier drops it and takes the default again (README.md,
    "Updating a service"): derived, so it follows the answers from then on."""
    service = render(
        tmp_path / "svc", template=template_v1, vcs_ref="0.4.0", visibility_timeout_seconds=200
    )
    commit_all(service, "first render")
    _release_v2(template_v1)

    update(service, vcs_ref="0.4.1", function_timeout_seconds=60)

    assert str(_answers(service)["visibility_timeout_seconds"]) == "200"
    assert _visibility(service) == _everywhere(200)
    readme = (service / "README.md").read_text(encoding="utf-8")
    assert "200 s was chosen explicitly; AWS advises" in readme
    commit_all(service, "timeout 60 s")

    # 200 s is below a 300 s function timeout, which AWS rejects.
    update(service, vcs_ref="0.4.1", function_timeout_seconds=300)

    answers = _answers(service)
    assert answers["function_timeout_seconds"] == 300
    assert answers["visibility_timeout_seconds"] == "derived"
    assert _visibility(service) == _everywhere(6 * 300)
    assert _leftovers(service) == []


#: The two derived settings as 0.2.0 asked them: whole numbers, the default recorded as one.
QUESTIONS_0_2_0 = {
    "max_batching_window_seconds": """max_batching_window_seconds:
  type: int
  help: Seconds the ESM waits to fill a batch (0-300; at least 1 when batch_size > 10)
  default: "{{ 1 if batch_size > 10 else 0 }}"
  when: "{{ queue_type == 'standard' }}"
""",
    "visibility_timeout_seconds": """visibility_timeout_seconds:
  type: int
  help: Source queue visibility timeout (default 6 x function timeout + batching window)
  default: "{{ [6 * function_timeout_seconds + max_batching_window_seconds, 43200] | min }}"
""",
}


def test_update_across_0_3_0_records_accepted_derived_defaults(tmp_path: Path) -> None:
    """Before 0.3.0 an accepted default was recorded as a number: the 0.3.0 migration records
    "derived" where the number equals what the recorded answers derive, and keeps the rest."""
    repo = template_copy(tmp_path / "template")
    copier_yml = repo / "copier.yml"
    current = copier_yml.read_text(encoding="utf-8")
    old = current
    for name, spec in QUESTIONS_0_2_0.items():
        block = re.compile(rf"^{name}:\n(?:  .*\n)+", re.MULTILINE)
        assert len(block.findall(old)) == 1, name
        old = block.sub(spec.replace("\\", "\\\\"), old)
    copier_yml.write_text(old, encoding="utf-8")
    commit_all(repo, "release 0.2.0")
    tag(repo, "0.2.0")
    copier_yml.write_text(current, encoding="utf-8")
    commit_all(repo, "release 0.3.0")
    tag(repo, "0.3.0")

    accepted = render(tmp_path / "accepted", template=repo, vcs_ref="0.2.0")
    typed = render(
        tmp_path / "typed",
        template=repo,
        vcs_ref="0.2.0",
        batch_size=50,
        max_batching_window_seconds=5,
        visibility_timeout_seconds=200,
    )
    for service in (accepted, typed):
        commit_all(service, "first render")
    assert _answers(accepted)["visibility_timeout_seconds"] == 180
    assert _answers(accepted)["max_batching_window_seconds"] == 0

    update(accepted, vcs_ref="0.3.0", function_timeout_seconds=60)
    update(typed, vcs_ref="0.3.0", function_timeout_seconds=60)

    answers = _answers(accepted)
    assert answers["_commit"] == "0.3.0"
    assert answers["max_batching_window_seconds"] == "derived"
    assert answers["visibility_timeout_seconds"] == "derived"
    assert _visibility(accepted) == _everywhere(360)
    answers = _answers(typed)
    assert str(answers["max_batching_window_seconds"]) == "5"
    assert str(answers["visibility_timeout_seconds"]) == "200"
    assert _visibility(typed) == _everywhere(200)
    for service in (accepted, typed):
        assert _leftovers(service) == []


def test_update_across_0_2_0_migrates_the_renamed_answer(tmp_path: Path) -> None:
    """0.2.0 renamed the answer local_emulator to compose_emulator; _migrations carries it."""
    repo = template_copy(tmp_path / "template")
    current = {
        path: path.read_text(encoding="utf-8")
        for path in [repo / "copier.yml", *repo.joinpath("template").rglob("*")]
        if path.is_file() and "compose_emulator" in path.read_text(encoding="utf-8")
    }
    assert len(current) >= 3  # copier.yml, docker-compose.yml, README.md at least
    # 0.1.0 as it was: the old answer name everywhere it is used.
    for path, text in current.items():
        path.write_text(text.replace("compose_emulator", "local_emulator"), encoding="utf-8")
    commit_all(repo, "release 0.1.0")
    tag(repo, "0.1.0")
    for path, text in current.items():
        path.write_text(text, encoding="utf-8")
    commit_all(repo, "release 0.2.0")
    tag(repo, "0.2.0")

    service = render(tmp_path / "svc", template=repo, vcs_ref="0.1.0", local_emulator="ministack")
    commit_all(service, "first render")
    assert _answers(service)["local_emulator"] == "ministack"

    update(service, vcs_ref="0.2.0")

    answers = _answers(service)
    assert answers["_commit"] == "0.2.0"
    assert answers["compose_emulator"] == "ministack"
    assert "local_emulator" not in answers
    assert "ministackorg/ministack" in (service / "docker-compose.yml").read_text(encoding="utf-8")
    assert _leftovers(service) == []


# -- 0.4.0: the local tools leave the service ---------------------------------------------------

#: A folder of the template that 0.4.0 removed: the commit before its removal is the last that
#: rendered the tools into a service, the 0.3.0 release (with its fixes) as this history has it.
TOOLS_IN_THE_SERVICE = "template/src/{{ package_name }}_dev"
KEPT = Path(".copier-0.4.0-kept")


def _last_commit_with_the_tools() -> str:
    """The newest commit of this repository whose template rendered ``src/<pkg>_dev/``."""
    removal = _git(
        REPO_ROOT, "log", "-1", "--format=%H", "--diff-filter=D", "--", TOOLS_IN_THE_SERVICE
    ).strip()
    parent = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{removal}^"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if not removal or parent.returncode != 0:
        pytest.skip("needs this repository's history back to 0.3.0 (a shallow clone lacks it)")
    return parent.stdout.strip()


@pytest.fixture
def template_0_3_0_and_this(tmp_path: Path) -> Path:
    """A throwaway template repository: 0.3.0 from this repository's history, then this
    working tree as 0.4.0."""
    repo = tmp_path / "template"
    repo.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", _last_commit_with_the_tools()],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)
    commit_all(repo, "release 0.3.0")
    tag(repo, "0.3.0")
    for child in repo.iterdir():
        if child.is_dir() and child.name != ".git":
            shutil.rmtree(child)
        elif child.is_file():
            child.unlink()
    template_copy(repo)
    tag(repo, "0.4.0")
    return repo


def _files(root: Path) -> set[str]:
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


TOOL_FIX = (
    "POLLER_SPREAD_SECONDS = 0.1\n",
    "POLLER_SPREAD_SECONDS = 0.25  # ours: our emulator re-checks the queue every 250 ms\n",
)


@pytest.mark.slow
def test_update_from_0_3_0_moves_the_tools_out_and_keeps_a_team_fix(
    tmp_path: Path, template_0_3_0_and_this: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """0.4.0 removes the local tools from the service (now the package sqs-lambda-tools):
    the files the team never touched disappear, the one it fixed is kept and reported, the
    team's own code, test and dependency stay, and the service's make targets work."""
    repo = template_0_3_0_and_this
    service = render(tmp_path / "svc", template=repo, vcs_ref="0.3.0")
    # As the post-copy tasks leave it: .venv built, uv.lock committed (0.3.0's tools in it).
    synced = subprocess.run(
        ["make", "sync"], cwd=service, capture_output=True, text=True, check=False
    )
    assert synced.returncode == 0, synced.stdout[-3000:] + synced.stderr[-3000:]
    commit_all(service, "first render")
    # The team's edits: business logic with its test, a dependency, a fix in a tool.
    orders = service / "src" / PACKAGE / "orders.py"
    _append(orders, USER_LOGIC)
    (service / "tests" / "unit" / "test_audit.py").write_text(USER_TEST, encoding="utf-8")
    _edit(
        service / "pyproject.toml",
        '    "boto3==1.44.8",\n',
        '    "boto3==1.44.8",\n    "python-dateutil==2.9.0.post0",\n',
    )
    tool = service / "src" / f"{PACKAGE}_dev" / "esm.py"
    _edit(tool, *TOOL_FIX)
    commit_all(service, "team edits")
    team_tool = tool.read_text(encoding="utf-8")
    user_orders = orders.read_text(encoding="utf-8")
    # What 0.4.0 no longer renders, from renders of both releases with the same answers.
    old = render(tmp_path / "old", template=repo, vcs_ref="0.3.0")
    fresh = render(tmp_path / "fresh", template=repo, vcs_ref="0.4.0")
    removed = _files(old) - _files(fresh)
    assert {f"src/{PACKAGE}_dev/esm.py", "tools/benchmark_handler.py"} <= removed
    assert {"tests/factories.py", "tests/integration/conftest.py"} <= removed
    capfd.readouterr()

    update(service, vcs_ref="0.4.0")

    report = capfd.readouterr().err
    assert _answers(service)["_commit"] == "0.4.0"
    # Every file of the old tooling is gone from the service, the fixed one too ...
    assert [path for path in sorted(removed) if (service / path).exists()] == []
    assert not (service / "src" / f"{PACKAGE}_dev").exists()
    # ... and the fixed one is kept, out of the service's checks, with the team's diff, and
    # named on the update's output with what to do.
    kept = service / KEPT
    assert (kept / "src" / f"{PACKAGE}_dev" / "esm.py").read_text(encoding="utf-8") == team_tool
    readme = (kept / "README.md").read_text(encoding="utf-8")
    assert f"-{TOOL_FIX[0]}+{TOOL_FIX[1]}" in readme
    assert "port it to `sqs-lambda-tools`" in readme
    assert "In the package: `sqs-lambda-tools/src/sqs_lambda_tools/esm.py`" in readme
    # Where the README says a tool lives in the package, it does.
    homes = {path: migrate_module().package_home(path) for path in removed}
    assert [home for home in homes.values() if home and not (REPO_ROOT / home).is_file()] == []
    assert homes["tools/benchmark_local_loop.py"] is not None
    assert f"the update removed {len(removed)} files 0.4.0 no longer renders" in report
    assert f"KEPT 1 of them (changed by you) in {KEPT}/:" in report
    assert f"migrate:     src/{PACKAGE}_dev/esm.py" in report
    assert "still imports" not in report
    assert _leftovers(service) == []
    # The team's own code, test and dependency stay; everything else is the fresh 0.4.0.
    assert orders.read_text(encoding="utf-8") == user_orders
    team = {
        f"{KEPT} (only one side)",
        "pyproject.toml",
        f"src/{PACKAGE}/orders.py",
        "tests/unit/test_audit.py (only one side)",
    }
    environment = {f"{name} (only one side)" for name in (".venv", ".tools", "uv.lock")}
    assert team <= set(_tree_differences(service, fresh)) <= team | environment
    pyproject = (service / "pyproject.toml").read_text(encoding="utf-8")
    assert '"python-dateutil==2.9.0.post0",' in pyproject
    assert '"sqs-lambda-tools==0.4.0"' in pyproject

    # The make targets work on the package's sqsl; the team's test runs with the service's.
    for target in ("lint", "preflight", "test"):
        result = subprocess.run(
            ["make", target], cwd=service, capture_output=True, text=True, check=False
        )
        output = result.stdout[-5000:] + result.stderr[-3000:]
        assert result.returncode == 0, f"make {target} failed:\n{output}"
    assert "test_audit.py ." in result.stdout or "test_audit.py::" in result.stdout
    # The lock of 0.3.0 followed the new pyproject.toml: the package is in it.
    lock = (service / "uv.lock").read_text(encoding="utf-8")
    assert 'name = "sqs-lambda-tools"' in lock
