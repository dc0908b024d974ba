"""The template's environment type-checks every render, so it must hold exactly the
versions that a generated service pins; this test fails the moment the two drift.

The service also pins the local tools (sqs-lambda-tools, this repository's package) at
this release, from where the template came: a uv git source at the release's tag for a
git URL, the folder's path otherwise.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from copier import Settings, run_copy
from jinja2.sandbox import SandboxedEnvironment

from tests.rendering import REPO_ROOT, questions, render, tag, template_copy

PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(?P<version>\S+)$")
TOOLS = "sqs-lambda-tools"
TOOLS_VERSION = tomllib.loads((REPO_ROOT / TOOLS / "pyproject.toml").read_text(encoding="utf-8"))[
    "project"
]["version"]
VENV_BIN = Path(sys.executable).parent


def pins(requirements: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for requirement in requirements:
        match = PIN.match(requirement.replace(" ", ""))
        assert match, f"not pinned with ==: {requirement!r}"
        found[match["name"].lower()] = match["version"]
    return found


def pyproject(project: Path) -> dict[str, Any]:
    return tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("handler_style", ["powertools", "stdlib"])
def test_the_generated_service_pins_what_the_template_checks_it_with(
    tmp_path: Path, handler_style: str
) -> None:
    template = pyproject(REPO_ROOT)
    # The tools are a member of this repository's uv workspace here, unpinned.
    template_pins = pins([name for name in template["dependency-groups"]["dev"] if name != TOOLS])

    service = render(tmp_path / "service", handler_style=handler_style)
    project = pyproject(service)
    service_pins = pins(project["project"]["dependencies"]) | pins(
        project["dependency-groups"]["dev"]
    )

    assert ("aws-lambda-powertools" in service_pins) == (handler_style == "powertools")
    drifted = {
        name: (version, template_pins.get(name))
        for name, version in service_pins.items()
        if template_pins.get(name) != version and name not in {"pre-commit", TOOLS}
    }
    assert not drifted, f"service pin != template pin (name: (service, template)): {drifted}"


def test_the_service_pins_the_tools_of_this_release_from_this_folder(tmp_path: Path) -> None:
    project = pyproject(render(tmp_path / "service"))

    assert pins(project["dependency-groups"]["dev"])[TOOLS] == TOOLS_VERSION
    assert project["tool"]["uv"]["sources"] == {TOOLS: {"path": str(REPO_ROOT / TOOLS)}}


def computed(src_path: str, commit: str) -> dict[str, str]:
    """copier.yml's tools_* values for a template copied from ``src_path`` at ``commit``,
    rendered by the Jinja environment Copier uses (its filters included)."""
    environment = SandboxedEnvironment(
        extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"]
    )
    context: dict[str, Any] = {
        "_copier_answers": {"_src_path": src_path, "_commit": commit},
        "_copier_conf": {"vcs_ref_hash": "0" * 40},
    }
    specs = questions()
    for name in ("tools_git_url", "tools_git_ref", "tools_source", "tools_build_context"):
        context[name] = environment.from_string(specs[name]["default"]).render(context)
    return context


GIT = 'subdirectory = "sqs-lambda-tools"'
SOURCES = {
    "gh:acme/copier-sqs-lambda": (
        f'{{ git = "https://github.com/acme/copier-sqs-lambda.git", {GIT}, tag = "v1.2.0" }}',
        "https://github.com/acme/copier-sqs-lambda.git#v1.2.0:sqs-lambda-tools",
    ),
    "gl:/acme/copier-sqs-lambda.git": (
        f'{{ git = "https://gitlab.com/acme/copier-sqs-lambda.git", {GIT}, tag = "v1.2.0" }}',
        "https://gitlab.com/acme/copier-sqs-lambda.git#v1.2.0:sqs-lambda-tools",
    ),
    "git@github.com:acme/copier-sqs-lambda.git": (
        f'{{ git = "ssh://git@github.com/acme/copier-sqs-lambda.git", {GIT}, tag = "v1.2.0" }}',
        "ssh://git@github.com/acme/copier-sqs-lambda.git#v1.2.0:sqs-lambda-tools",
    ),
    "https://example.com/acme/copier-sqs-lambda": (
        f'{{ git = "https://example.com/acme/copier-sqs-lambda", {GIT}, tag = "v1.2.0" }}',
        "https://example.com/acme/copier-sqs-lambda#v1.2.0:sqs-lambda-tools",
    ),
    "git+https://example.com/acme/copier-sqs-lambda": (
        f'{{ git = "https://example.com/acme/copier-sqs-lambda", {GIT}, tag = "v1.2.0" }}',
        "https://example.com/acme/copier-sqs-lambda#v1.2.0:sqs-lambda-tools",
    ),
    "/srv/templates/copier-sqs-lambda": (
        '{ path = "/srv/templates/copier-sqs-lambda/sqs-lambda-tools" }',
        "/srv/templates/copier-sqs-lambda/sqs-lambda-tools",
    ),
}


@pytest.mark.parametrize("src_path", list(SOURCES))
def test_the_tools_come_from_where_the_template_came(src_path: str) -> None:
    values = computed(src_path, "v1.2.0")

    assert (values["tools_source"], values["tools_build_context"]) == SOURCES[src_path]


def test_between_releases_the_tools_are_pinned_at_the_commit() -> None:
    """`git describe` gives <tag>-<n>-g<hash> off a tag: no tag to name, so the commit."""
    values = computed("gh:acme/copier-sqs-lambda", "v1.2.0-3-gabc1234")

    assert values["tools_git_ref"] == f'rev = "{"0" * 40}"'


@pytest.mark.slow
def test_a_copy_from_a_git_url_locks_the_tools_at_the_release_tag(tmp_path: Path) -> None:
    """A real copy from a git URL (a file:// one: no network for the template), then
    `uv lock` in the service resolves the tools from that repository at the tag."""
    repository = template_copy(tmp_path / "copier-sqs-lambda")
    tag(repository, "v9.9.9")
    service = tmp_path / "service"
    run_copy(
        src_path=f"git+file://{repository}",
        dst_path=service,
        defaults=True,
        skip_tasks=True,
        quiet=True,
        vcs_ref="v9.9.9",
        settings=Settings(defaults={}, trust=[]),
    )
    source = pyproject(service)["tool"]["uv"]["sources"][TOOLS]
    assert source == {"git": f"file://{repository}", "subdirectory": TOOLS, "tag": "v9.9.9"}

    locked = subprocess.run(
        [str(VENV_BIN / "uv"), "lock"],
        cwd=service,
        capture_output=True,
        text=True,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
        check=False,
        timeout=600,
    )

    assert locked.returncode == 0, locked.stderr[-3000:]
    lock = tomllib.loads((service / "uv.lock").read_text(encoding="utf-8"))
    [tools] = [package for package in lock["package"] if package["name"] == TOOLS]
    assert tools["version"] == TOOLS_VERSION
    assert tools["source"]["git"].startswith(f"file://{repository}?subdirectory={TOOLS}&tag=v9.9.9")
