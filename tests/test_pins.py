"""The template's environment type-checks every render, so it must hold exactly the
versions that a generated service pins; this test fails the moment the two drift."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.rendering import REPO_ROOT, render

PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(?P<version>\S+)$")


def pins(requirements: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for requirement in requirements:
        match = PIN.match(requirement.replace(" ", ""))
        assert match, f"not pinned with ==: {requirement!r}"
        found[match["name"].lower()] = match["version"]
    return found


@pytest.mark.parametrize("handler_style", ["powertools", "stdlib"])
def test_the_generated_service_pins_what_the_template_checks_it_with(
    tmp_path: Path, handler_style: str
) -> None:
    template = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    template_pins = pins(template["dependency-groups"]["dev"])

    service = render(tmp_path / "service", handler_style=handler_style)
    project = tomllib.loads((service / "pyproject.toml").read_text(encoding="utf-8"))
    service_pins = pins(project["project"]["dependencies"]) | pins(
        project["dependency-groups"]["dev"]
    )

    assert ("aws-lambda-powertools" in service_pins) == (handler_style == "powertools")
    drifted = {
        name: (version, template_pins.get(name))
        for name, version in service_pins.items()
        if template_pins.get(name) != version and name != "pre-commit"
    }
    assert not drifted, f"service pin != template pin (name: (service, template)): {drifted}"
