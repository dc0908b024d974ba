"""The version lives in files that travel with the branch: pyproject.toml, CHANGELOG.md and
the migrations of copier.yml must agree, so a release tag made from them is the version
the changelog describes."""

from __future__ import annotations

import re
import tomllib

from tests.rendering import REPO_ROOT, load_copier_yml

Version = tuple[int, ...]  # 0.3.0 -> (0, 3, 0): the versions here are X.Y.Z

RELEASE_HEADING = re.compile(r"^## (?P<version>\d+\.\d+\.\d+) \(\d{4}-\d{2}-\d{2}\)$", re.MULTILINE)


def _changelog_releases() -> list[Version]:
    text = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    return [_version(match["version"]) for match in RELEASE_HEADING.finditer(text)]


def _version(text: str) -> Version:
    return tuple(int(part) for part in text.split("."))


def test_the_project_version_is_the_newest_changelog_release() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    releases = _changelog_releases()
    assert releases, "CHANGELOG.md has no '## X.Y.Z (YYYY-MM-DD)' heading"
    assert releases == sorted(releases, reverse=True), "CHANGELOG.md lists releases newest first"
    assert _version(project["project"]["version"]) == releases[0]


def test_every_migration_belongs_to_a_released_version() -> None:
    released = set(_changelog_releases())
    for migration in load_copier_yml()["_migrations"]:
        version = _version(str(migration["version"]))
        assert version in released, f"_migrations names {version}, which CHANGELOG.md does not"


def test_the_tools_package_moves_in_lockstep_with_the_template() -> None:
    """A service pins ``sqs-lambda-tools`` at the template's release: the package's version,
    the template's and the pin that copier.yml renders are one number."""
    template = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    tools = tomllib.loads(
        (REPO_ROOT / "sqs-lambda-tools" / "pyproject.toml").read_text(encoding="utf-8")
    )
    version = template["project"]["version"]
    assert tools["project"]["version"] == version
    assert str(load_copier_yml()["tools_version"]["default"]) == version
