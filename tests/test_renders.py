"""Every combination of the matrix renders a project that parses, lints and type-checks.

Each combination is rendered once per run (``renders`` fixture, shared by the xdist workers)
and all its checks share that render; ``xdist_group`` asks ``--dist loadgroup`` to keep them on
one worker. A failure names the combination and carries the tool's output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import RenderCache
from tests.matrix import Combination, all_combinations
from tests.rendering import answers_file, commit_all, render

COMBINATIONS = all_combinations()
VENV_BIN = Path(sys.executable).parent

each_combination = pytest.mark.parametrize(
    "combination",
    [pytest.param(c, id=c.id, marks=pytest.mark.xdist_group(c.id)) for c in COMBINATIONS],
)

#: Folders a render does not contain but a tool run inside it may create.
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".venv",
        ".tools",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "__pycache__",
        "node_modules",
        "cdk.out",
        ".terraform",
    }
)

#: ``{{``-like text that belongs to another tool, removed before looking for Jinja leftovers.
FOREIGN_BRACES = re.compile(
    r"\$\{\{.*?\}\}"  # GitHub Actions expressions: ${{ github.sha }}
    r"|\{\{resolve:[^}]*\}\}"  # CloudFormation dynamic references: {{resolve:ssm:/x}}
    r"|\$\{#",  # shell string length: ${#name}
    re.DOTALL,
)
JINJA_MARKER = re.compile(r"\{\{|\{%|\{#")


@pytest.fixture
def rendered(combination: Combination, renders: RenderCache) -> Path:
    return renders.get(combination)


# -- helpers -------------------------------------------------------------------------------


def rendered_files(root: Path) -> list[Path]:
    """Every file of the render, sorted, outside tool caches and environments."""

    def walk(folder: Path) -> Iterator[Path]:
        for entry in sorted(folder.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                if entry.name not in SKIPPED_DIRS:
                    yield from walk(entry)
            elif entry.is_file():
                yield entry

    return list(walk(root))


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary (NUL bytes or not UTF-8) file."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def with_suffix(root: Path, *suffixes: str) -> list[Path]:
    return [path for path in rendered_files(root) if path.suffix in suffixes]


def fail(combination: Combination, what: str, details: str) -> None:
    pytest.fail(f"[{combination.id}] {what}\n{details}", pytrace=False)


def run_tool(
    combination: Combination,
    command: Sequence[str | Path],
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    ok: frozenset[int] = frozenset({0}),
) -> str:
    """Run a checker in the render; fail with the combination id and its output if it fails."""
    argv = [str(part) for part in command]
    try:
        result = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        fail(combination, f"`{' '.join(argv)}` timed out after {timeout} s", str(error.output))
        raise  # pragma: no cover - fail() raises
    output = (result.stdout + result.stderr).strip()
    if result.returncode not in ok:
        fail(
            combination,
            f"`{' '.join(argv)}` exited {result.returncode} in {cwd}",
            output,
        )
    return output


class _TaggedYamlLoader(yaml.SafeLoader):
    """SafeLoader that also accepts local tags: CloudFormation's !Ref / !GetAtt / !Sub ...,
    GitLab's !reference. A tagged node loads as the plain scalar, list or mapping it holds."""


def _construct_tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    del suffix
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise yaml.constructor.ConstructorError(
        None, None, f"unexpected node {node!r}", node.start_mark
    )


_TaggedYamlLoader.add_multi_constructor("!", _construct_tagged)


def load_yaml_documents(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=_TaggedYamlLoader))  # a SafeLoader subclass


# -- the render is what was asked ----------------------------------------------------------


@each_combination
def test_the_answers_file_records_the_answers(combination: Combination, rendered: Path) -> None:
    recorded = answers_file(rendered)

    wrong = {
        name: (value, recorded.get(name))
        for name, value in combination.answers.items()
        if recorded.get(name) != value
    }
    if wrong:
        fail(combination, "answers missing or different in .copier-answers.yml", f"{wrong}")


# -- parsing -------------------------------------------------------------------------------


@each_combination
def test_every_yaml_file_parses(combination: Combination, rendered: Path) -> None:
    errors = []
    for path in with_suffix(rendered, ".yml", ".yaml"):
        try:
            load_yaml_documents(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            errors.append(f"{path.relative_to(rendered)}: {error}")
    if errors:
        fail(combination, "YAML files do not parse", "\n".join(errors))


@each_combination
def test_every_toml_file_parses(combination: Combination, rendered: Path) -> None:
    errors = []
    for path in with_suffix(rendered, ".toml"):
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            errors.append(f"{path.relative_to(rendered)}: {error}")
    if errors:
        fail(combination, "TOML files do not parse", "\n".join(errors))


@each_combination
def test_every_json_file_parses(combination: Combination, rendered: Path) -> None:
    errors = []
    for path in with_suffix(rendered, ".json"):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            errors.append(f"{path.relative_to(rendered)}: {error}")
    if errors:
        fail(combination, "JSON files do not parse", "\n".join(errors))


# -- nothing of the template is left -------------------------------------------------------


@each_combination
def test_no_jinja_is_left_in_any_file(combination: Combination, rendered: Path) -> None:
    leftovers = []
    for path in rendered_files(rendered):
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(FOREIGN_BRACES.sub("", text).splitlines(), start=1):
            if JINJA_MARKER.search(line):
                leftovers.append(f"{path.relative_to(rendered)}:{number}: {line.strip()}")
    if leftovers:
        fail(combination, "Jinja markers left after rendering", "\n".join(leftovers))


@each_combination
def test_no_file_name_is_a_template_name(combination: Combination, rendered: Path) -> None:
    bad = [
        str(path.relative_to(rendered))
        for path in rendered.rglob("*")
        if path.name.endswith(".jinja") or JINJA_MARKER.search(path.name)
    ]
    if bad:
        fail(combination, "file names left as templates", "\n".join(bad))


# -- linters and type checker of the generated project ------------------------------------


def _ruff() -> Path:
    ruff = VENV_BIN / "ruff"
    if ruff.exists():
        return ruff
    found = shutil.which("ruff")
    if found is None:
        pytest.fail("ruff is not installed in the template's environment")
    return Path(found)


@each_combination
def test_ruff_check_passes(combination: Combination, rendered: Path) -> None:
    run_tool(combination, [_ruff(), "check", "--no-cache", "."], rendered)


@each_combination
def test_the_render_is_formatted_as_rendered(
    combination: Combination, rendered: Path, tmp_path: Path
) -> None:
    """Render, commit, run the project's formatters: ``git status --porcelain`` stays empty.

    The formatters are the project's own ``make format`` (ruff's fixes, then ruff format) and,
    for Terraform, ``terraform fmt`` where the binary exists. A copy is formatted: the render
    is shared by the other checks.
    """
    project = tmp_path / "project"
    shutil.copytree(rendered, project, ignore=shutil.ignore_patterns(*SKIPPED_DIRS))
    commit_all(project, "as rendered")
    formatters: list[list[str]] = [
        [str(_ruff()), "check", "--fix", "--no-cache", "--quiet", "."],
        [str(_ruff()), "format", "--no-cache", "--quiet", "."],
    ]
    terraform = shutil.which("terraform")
    if terraform and (project / "infra" / "terraform").is_dir():
        formatters.append([terraform, "fmt", "-recursive", "infra/terraform"])
    for formatter in formatters:
        subprocess.run(formatter, cwd=project, capture_output=True, text=True, check=False)
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True, check=True
    ).stdout
    if status:
        diff = subprocess.run(
            ["git", "diff"], cwd=project, capture_output=True, text=True, check=True
        ).stdout
        fail(combination, "formatting changed the render", status + diff[-6000:])


def mypy_targets(root: Path) -> list[str]:
    """Nothing when the render's mypy config lists its files, else every top-level Python path."""
    pyproject = root / "pyproject.toml"
    if pyproject.exists():
        config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        if config.get("tool", {}).get("mypy", {}).get("files"):
            return []
    targets = []
    for entry in sorted(root.iterdir()):
        if entry.name in SKIPPED_DIRS:
            continue
        if (entry.is_file() and entry.suffix == ".py") or (
            entry.is_dir() and any(entry.rglob("*.py"))
        ):
            targets.append(entry.name)
    return targets


@pytest.fixture(scope="session")
def mypy_cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache per worker, shared by its renders (third-party stubs are most of it)."""
    return tmp_path_factory.mktemp("mypy-cache")


def forget_own_modules(cache: Path, rendered: Path) -> None:
    """Drop the cached results of the render's own modules, keeping the third-party ones.

    Renders share a cache to type-check boto3, Powertools and moto once, but their own
    files (``tests/unit/test_model.py`` in each) can match another render's path, size and
    mtime, which mypy takes for unchanged.
    """
    own = {"tests", "conftest"} | {
        child.name for child in (rendered / "src").glob("*") if child.is_dir()
    }
    for version_dir in cache.glob("*"):
        for name in own:
            shutil.rmtree(version_dir / name, ignore_errors=True)
            for stale in version_dir.glob(f"{name}.*.json"):
                stale.unlink()


@each_combination
def test_mypy_strict_passes(
    combination: Combination, rendered: Path, mypy_cache_root: Path
) -> None:
    targets = mypy_targets(rendered)
    if not targets and not (rendered / "pyproject.toml").exists():
        fail(combination, "no Python file and no mypy configuration to check", "")
    # One cache per target version: the options differ, so sharing would only thrash it.
    runtime = str(combination.answers.get("lambda_runtime", "default"))
    env = dict(os.environ)
    if (rendered / "src").is_dir():  # the src layout, as if the project were installed
        env["MYPYPATH"] = os.pathsep.join(
            filter(None, [str(rendered / "src"), env.get("MYPYPATH", "")])
        )
    forget_own_modules(mypy_cache_root / runtime, rendered)
    run_tool(
        combination,
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            mypy_cache_root / runtime,
            "--no-sqlite-cache",  # plain files, so that forget_own_modules can drop some
            *targets,
        ],
        rendered,
        env=env,
        timeout=900,
    )


#: The longest names the validators allow: a 64-character slug (so a 40-character package,
#: cut from it) and a 71-character FIFO queue name (its DLQ name is the 80 SQS allows).
LONGEST_NAMES: dict[str, Any] = {
    "project_name": "Abcdefghij Klmnopqrst Uvwxyzabcd Efghijklmn Opqrstuvwx Yzabcdefg",
    "queue_name": "q" * 71,
    "queue_type": "fifo",
}


@pytest.mark.parametrize("iac", ["sam", "terraform", "cdk", "none"])
def test_the_longest_names_keep_the_code_clean(iac: str, tmp_path: Path) -> None:
    """Rendered names sit in constants; none may push a line past ruff's limit."""
    project = render(tmp_path / "svc", iac=iac, **LONGEST_NAMES)
    answers = answers_file(project)
    assert len(answers["project_slug"]) == 64
    assert len(answers["package_name"]) == 40
    for args in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run(
            [str(_ruff()), *args], cwd=project, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
