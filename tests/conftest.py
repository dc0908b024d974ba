"""Shared fixtures: renders cached per session, the probe template, and the run's summary.

With pytest-xdist each worker is its own session. A combination is rendered once per run
(``RenderCache``), by whichever worker needs it first, and each worker hands its numbers to
the controller through ``config.workeroutput``, xdist's channel for exactly this; the
controller merges them in ``pytest_testnodedown`` and prints the summary. (Numbers a worker
held when it crashed are lost with it; the test failures still show.)
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from plumbum import local

from tests.matrix import Combination
from tests.rendering import make_probe_template, probe, render

_STATS_KEY = "copier_sqs_lambda_stats"


@dataclass
class RunStats:
    """What this session rendered and ran, merged from every xdist worker."""

    rendered: set[str] = field(default_factory=set)
    project_tests: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"rendered": sorted(self.rendered), "project_tests": self.project_tests})

    def merge_json(self, text: str) -> None:
        data = json.loads(text)
        self.rendered.update(str(item) for item in data["rendered"])
        self.project_tests.update({str(k): int(v) for k, v in data["project_tests"].items()})


STATS = pytest.StashKey[RunStats]()


def pytest_configure(config: pytest.Config) -> None:
    # Rendering from the working tree (uncommitted template files included) is the point.
    config.addinivalue_line("filterwarnings", "ignore::copier.errors.DirtyLocalWarning")
    # Registered by pytest-xdist too; repeated so `-p no:xdist` works with --strict-markers.
    config.addinivalue_line(
        "markers", "xdist_group(name): keep the tests of one render on one xdist worker"
    )
    config.stash[STATS] = RunStats()


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the numbers to the controller
        workeroutput[_STATS_KEY] = session.config.stash[STATS].to_json()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object | None) -> None:
    """On the xdist controller: merge a finished worker's numbers."""
    text = getattr(node, "workeroutput", {}).get(_STATS_KEY)
    if text:
        node.config.stash[STATS].merge_json(text)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    if hasattr(config, "workerinput"):
        return
    stats = config.stash[STATS]
    terminalreporter.section("copier-sqs-lambda")
    terminalreporter.write_line(f"rendered {len(stats.rendered)} combinations")
    passed = sum(stats.project_tests.values())
    terminalreporter.write_line(
        f"generated projects: {passed} tests passed across {len(stats.project_tests)} projects"
    )
    for project, count in sorted(stats.project_tests.items()):
        terminalreporter.write_line(f"  {project}: {count} passed")


@pytest.fixture(scope="session")
def run_stats(pytestconfig: pytest.Config) -> RunStats:
    """This worker's registry of renders and generated-project results."""
    return pytestconfig.stash[STATS]


class RenderCache:
    """Renders each combination once per run, whichever xdist worker asks first.

    ``--dist loadgroup`` is meant to keep a combination's tests on one worker, but with
    pytest 9.2 and pytest-xdist 3.8 it silently stops grouping (pytest-dev/pytest-xdist#1386).
    So the renders live in the run's shared temporary folder and a file lock makes the first
    worker render while the others wait and reuse it; the checks only read a render (tool
    caches go elsewhere), so sharing one is safe.
    """

    def __init__(self, root: Path, stats: RunStats) -> None:
        self._root = root
        self._stats = stats
        self._done: dict[str, Path | str] = {}

    def get(self, combination: Combination) -> Path:
        if combination.id not in self._done:
            self._done[combination.id] = self._render_once(combination)
        result = self._done[combination.id]
        if isinstance(result, str):
            pytest.fail(
                f"[{combination.id}] rendering failed with answers {dict(combination.answers)}:"
                f" {result}",
                pytrace=False,
            )
        return result

    def _render_once(self, combination: Combination) -> Path | str:
        dest = self._root / combination.id
        outcome = self._root / f"{combination.id}.outcome.json"
        with _exclusive_lock(self._root / f"{combination.id}.lock"):
            if not outcome.exists():
                try:
                    render(dest, **combination.answers)
                    self._stats.rendered.add(combination.id)
                    error = None
                except Exception as exc:  # kept, so each test of the render reports it
                    error = f"{type(exc).__name__}: {exc}"
                outcome.write_text(json.dumps({"error": error}), encoding="utf-8")
            error = json.loads(outcome.read_text(encoding="utf-8"))["error"]
        return dest if error is None else str(error)


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shared_tmp(factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder every xdist worker of this run shares (the workers' basetemps' parent)."""
    base = factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = root / name
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def renders(tmp_path_factory: pytest.TempPathFactory, run_stats: RunStats) -> RenderCache:
    """The matrix renders, made on first use, shared by the workers of the run."""
    return RenderCache(shared_tmp(tmp_path_factory, "renders"), run_stats)


@pytest.fixture(scope="session")
def probe_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template of this repository's copier.yml and one file dumping every value as JSON."""
    return make_probe_template(tmp_path_factory.mktemp("probe-template"))


Probe = Callable[..., dict[str, Any]]


@pytest.fixture
def probe_values(probe_template: Path, tmp_path: Path) -> Probe:
    """``probe_values(**answers)``: every answer and computed value for those answers."""
    counter = iter(range(1_000_000))

    def run(**answers: Any) -> dict[str, Any]:
        return probe(probe_template, tmp_path / f"probe-{next(counter)}", **answers)

    return run


# -- the environment of Copier's tasks -------------------------------------------------------

IDENTITY = {
    "GIT_AUTHOR_NAME": "Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
}


TaskEnv = Callable[..., None]


@pytest.fixture
def task_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[TaskEnv]:
    """``task_env(NAME="value", OTHER=None)``: environment variables the tasks see.

    Copier runs tasks with plumbum's copy of the environment, taken when plumbum was
    imported: setting ``os.environ`` alone would not reach them. ``None`` removes a variable.
    """
    saved = local.env.getdict()

    def apply(**values: str | None) -> None:
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
                local.env.pop(name, "")
            else:
                monkeypatch.setenv(name, value)
                local.env[name] = value

    yield apply
    local.env.clear()
    local.env.update(saved)


@pytest.fixture
def git_identity(task_env: TaskEnv) -> None:
    task_env(**IDENTITY)


@pytest.fixture
def no_git_identity(task_env: TaskEnv, tmp_path: Path) -> None:
    """git with no identity at all, and told not to guess one from the host name."""
    task_env(
        **dict.fromkeys(IDENTITY),
        GIT_CONFIG_GLOBAL=str(tmp_path / "empty-gitconfig"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0="user.useConfigOnly",
        GIT_CONFIG_VALUE_0="true",
    )
