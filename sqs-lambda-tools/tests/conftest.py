"""What the package's tests share: copies of the sample project, and the plugin's fixtures
pointed at one.

``tests/sample_project`` is a small Lambda project never rendered from the template. A
test gets its own copy in a temporary folder as the tools' current project
(:func:`sqs_lambda_tools.project.use`): ``sample_project``, ``fifo_sample_project``, or
``make_sample_project(fifo=..., edit=...)`` for a variant. Each copy has its own state
folder (``.local/``), so a test's ``sqsl up`` never meets another's.

The integration tests use the plugin's fixtures (``sqsl_emulator``, ``sqsl_resources``,
``sqsl_handler_env``, ``sqsl_handler``) on a session copy of the sample project: the
standard one, or the FIFO one for a test marked
``@pytest.mark.parametrize("sqsl_project", ["fifo"], indirect=True)`` (both kinds:
``["standard", "fifo"]``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sqs_lambda_tools import project
from sqs_lambda_tools.project import Project

# The plugin tests run pytest on a fresh project with pytester.
pytest_plugins = ("pytester",)

# The CLI prints rich tables sized to the terminal. Tests read them through a pipe, which
# rich takes as 80 columns: give them room, so long resource names are printed whole.
os.environ["COLUMNS"] = "200"

SAMPLE_PROJECT = Path(__file__).parent / "sample_project"
#: The kinds of sample project ``sqsl_project`` may be parametrized with.
KINDS = ("standard", "fifo")
_NOT_COPIED = shutil.ignore_patterns(".local", ".venv", "build", "__pycache__", "*.egg-info")

Edit = Callable[[str], str]


def copy_sample_project(destination: Path, *, fifo: bool = False, edit: Edit | None = None) -> Path:
    """A copy of the sample project at ``destination``; ``fifo``: its queues made FIFO
    (names ending in ``.fifo``, content-based deduplication); ``edit`` rewrites its
    ``pyproject.toml`` text last."""
    shutil.copytree(SAMPLE_PROJECT, destination, ignore=_NOT_COPIED)
    pyproject = destination / project.PYPROJECT
    text = pyproject.read_text(encoding="utf-8")
    if fifo:
        text = as_fifo(text)
    if edit is not None:
        text = edit(text)
    pyproject.write_text(text, encoding="utf-8")
    return destination


def as_fifo(text: str) -> str:
    """The sample project's settings with FIFO queues."""
    lines: list[str] = []
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
        elif section in ("[tool.sqsl.queue]", "[tool.sqsl.dlq]") and stripped.startswith("name"):
            line = re.sub(r'"([^"]+)"', r'"\1.fifo"', line)
        elif section == "[tool.sqsl.queue]" and stripped.startswith("fifo"):
            line = "fifo = true\ncontent_based_deduplication = true"
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def copy_sample() -> Callable[..., Path]:
    """:func:`copy_sample_project`, for tests that need a copy outside the current project."""
    return copy_sample_project


@pytest.fixture
def make_sample_project(tmp_path: Path) -> Iterator[Callable[..., Project]]:
    """A factory: ``make_sample_project(fifo=False, name="sample-orders", edit=None,
    use=True)`` copies the sample project into ``tmp_path / name`` and returns its
    settings, made the current project unless ``use=False``. The project current before
    the test is current again after it."""
    previous = project._current

    def make(
        *,
        fifo: bool = False,
        name: str = "sample-orders",
        edit: Edit | None = None,
        use: bool = True,
    ) -> Project:
        settings = project.load(copy_sample_project(tmp_path / name, fifo=fifo, edit=edit))
        if use:
            project.use(settings)
        return settings

    yield make
    project.use(previous)


@pytest.fixture
def sample_project(make_sample_project: Callable[..., Project]) -> Project:
    """GIVEN a copy of the sample project (standard queues), the current project."""
    return make_sample_project()


@pytest.fixture
def fifo_sample_project(make_sample_project: Callable[..., Project]) -> Project:
    """GIVEN a copy of the sample project with FIFO queues, the current project."""
    return make_sample_project(fifo=True, name="sample-orders-fifo")


@pytest.fixture(scope="session", params=["standard"])
def sqsl_project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """The plugin's project for the package's own tests: a session copy of the sample
    project, standard or (parametrized indirectly with "fifo") FIFO, current for as long
    as it is in use."""
    kind = request.param
    assert kind in KINDS, f"sqsl_project is one of {KINDS}, not {kind!r}"
    folder = tmp_path_factory.mktemp(f"sample-{kind}") / "sample-orders"
    settings = project.load(copy_sample_project(folder, fifo=kind == "fifo"))
    previous = project._current
    project.use(settings)
    yield settings
    project.use(previous)
