"""The emulator's lifecycle: the embedded MiniStack, or the docker compose stack.

Why MiniStack runs from a virtualenv of its own: it pins botocore exactly, so installed
beside the service it would pin the service's boto3 too. The venv is machine-wide, in the
user's cache (``~/.cache/sqs-lambda-tools/ministack-<version>``), shared by every project
and by their tests: it is created once per MiniStack version, with uv when there is one
(``uv run`` and the Makefile provide it), else with ``python -m venv`` and pip.

Why a session of its own: ``sqsl up`` returns while the emulator keeps running, and a
Ctrl-C in the terminal that started it must not stop it; ``sqsl down`` stops it through
the pid recorded in the project's ``.local/emulator.json``, the file :mod:`.endpoint`
reads to find it.

Why a registry of emulators in the user's cache (``~/.cache/sqs-lambda-tools/emulators``):
every service starts its MiniStack on 4566 when it can. The registry names the service
whose emulator holds a port, and its lock lets one ``up`` at a time choose a port and
start, so two services never race for the same port. A recorded emulator is used only
while its pid is alive, is MiniStack and itself listens on the recorded port: never
another service's emulator that answers on the same port.

POSIX only (process sessions and signals), like the Makefile that drives it.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import docker

from . import config, endpoint
from .project import Project, SettingsError, current

Log = Callable[[str], None]
Mode = Literal["embedded", "docker"]
StopResult = Literal["stopped", "killed", "not running"]

MINISTACK_REQUIREMENT = f"ministack=={config.MINISTACK_VERSION}"
# Installed beside MiniStack, its CloudFormation applies the SAM transform: `deploy-local`
# then deploys template.yaml as AWS would receive it (see local_deploy.py).
SAM_TRANSLATOR_VERSION = "1.115.0"
SAM_TRANSLATOR_REQUIREMENT = f"aws-sam-translator=={SAM_TRANSLATOR_VERSION}"


def _cache_home() -> Path:
    configured = os.environ.get("XDG_CACHE_HOME", "").strip()
    if configured:
        return Path(configured)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    return Path.home() / ".cache"


#: The tools' machine-wide state: every project's emulators share it.
CACHE_DIR = _cache_home() / "sqs-lambda-tools"
# Shared by every project and state folder: tests start their own emulators but reuse
# the install. One per version, so that projects pinning different releases coexist.
VENV_DIR = CACHE_DIR / f"ministack-{config.MINISTACK_VERSION}"
LOG_NAME = "ministack.log"
#: The project's compose file (at its root), for ``up --docker``.
COMPOSE_FILE_NAME = "docker-compose.yml"
# Project.state_dir's name: a state folder of that name belongs to its parent folder.
STATE_DIR_NAME = ".local"
# Only the emulator, as in embedded mode: the compose file's `app` (the local event
# source mapping in a container) would compete with `sqsl run` for the messages.
COMPOSE_SERVICES = ("emulator",)
# Loopback only: an emulator accepts any credentials, so it must not face the network.
LOCALHOST = "127.0.0.1"
HEALTH_PATH = "/_localstack/health"
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
DOCKER_PING_TIMEOUT_SECONDS = 3
# Variables of the caller that must not reach MiniStack: another endpoint (MiniStack
# reads AWS_ENDPOINT_URL for the functions it runs), the service's venv and path.
_NOT_FOR_MINISTACK = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "EDGE_PORT",
)

# Emulators this process started, so that their exit is reaped and seen at once
# (an unreaped child stays a zombie, which `kill -0` reports as alive).
_children: dict[int, subprocess.Popen[bytes]] = {}


class EmulatorError(RuntimeError):
    """The emulator could not be installed, started, reached or stopped.

    The message says what went wrong and what to do about it.
    """


@dataclass(frozen=True)
class Layout:
    """Where one emulator keeps its record and log.

    ``sqsl up`` uses the project's ``.local/``; the integration tests use a temporary
    folder, so their emulator never replaces the one a developer started.
    """

    state_file: Path
    venv: Path = VENV_DIR

    @classmethod
    def default(cls, project: Project | None = None) -> Layout:
        """The project's own: ``<project>/.local/emulator.json``."""
        return cls(state_file=endpoint.state_file(project))

    @classmethod
    def under(cls, directory: Path) -> Layout:
        return cls(state_file=directory / endpoint.STATE_FILE_NAME)

    @property
    def directory(self) -> Path:
        return self.state_file.parent

    @property
    def log_file(self) -> Path:
        return self.directory / LOG_NAME


@dataclass(frozen=True)
class Record:
    """What ``sqsl up`` started, as written to the state file.

    ``pid`` and ``log`` are the embedded emulator's; docker mode has neither.
    """

    mode: Mode
    endpoint: str
    pid: int | None = None
    log: str | None = None

    @classmethod
    def read(cls, state_file: Path) -> Record | None:
        """The record in ``state_file``, or None when there is none or it is unreadable."""
        try:
            text = state_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        mode, url, pid, log = (data.get(key) for key in ("mode", "endpoint", "pid", "log"))
        if mode not in ("embedded", "docker") or not isinstance(url, str):
            return None
        return cls(
            mode="docker" if mode == "docker" else "embedded",
            endpoint=url,
            pid=pid if isinstance(pid, int) and pid > 0 else None,
            log=log if isinstance(log, str) else None,
        )

    def write(self, state_file: Path) -> None:
        """Replace ``state_file`` atomically: a reader never sees half a record."""
        state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = state_file.with_name(f".{state_file.name}.{os.getpid()}")
        partial.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        partial.replace(state_file)

    @property
    def port(self) -> int | None:
        return urllib.parse.urlsplit(self.endpoint).port


def forget(state_file: Path) -> None:
    """Remove the record (nothing to do when there is none)."""
    state_file.unlink(missing_ok=True)


# --- Docker ----------------------------------------------------------------------------


def docker_engine_available() -> bool:
    """Whether a Docker engine answers a ping.

    Any failure means no: no socket, no permission, an engine that is starting, a
    DOCKER_HOST that does not answer within a few seconds.
    """
    try:
        client = docker.from_env(timeout=DOCKER_PING_TIMEOUT_SECONDS)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def compose_file(project: Project | None = None) -> Path:
    """The project's compose file: ``docker-compose.yml`` at its root, whose emulator
    service is named ``emulator`` (:data:`COMPOSE_SERVICES`)."""
    return (project or current()).root / COMPOSE_FILE_NAME


def compose_up(
    *, timeout: float = STARTUP_TIMEOUT_SECONDS, project: Project | None = None
) -> Record:
    """``docker compose up --wait`` for the emulator service of the project's compose file.

    The compose file publishes it on the default port; an init hook (LocalStack's
    ``ready.d``) may create the resources inside the container before it reports healthy,
    and ``up`` provisions them afterwards anyway, idempotently.
    """
    _compose(
        "up",
        "--detach",
        "--wait",
        "--wait-timeout",
        str(int(timeout)),
        *COMPOSE_SERVICES,
        project=project,
    )
    url = f"http://{LOCALHOST}:{config.DEFAULT_EMULATOR_PORT}"
    wait_healthy(url, timeout=timeout)
    return Record(mode="docker", endpoint=url)


def compose_port_conflict(
    port: int | None = None,
    *,
    stack_running: Callable[[], bool] | None = None,
    project: Project | None = None,
) -> str | None:
    """Why docker compose cannot publish the emulator on ``port`` (the compose file's,
    4566), or None when it can: the port is free, or this service's stack holds it."""
    if port is None:
        port = config.DEFAULT_EMULATOR_PORT
    holder = port_holder(port)
    if holder is None:
        return None
    running = stack_running or (lambda: compose_stack_running(project))
    if running():
        return None  # this service's own stack publishes it: `up --wait` keeps it
    return (
        f"{COMPOSE_FILE_NAME} publishes the emulator on port {port}, which is held by "
        f"{holder.describe()}: stop that emulator (`{endpoint.DEV_COMMAND} down` in its "
        "service), or start the embedded one, which takes another port: "
        f"`{endpoint.DEV_COMMAND} up --embedded`"
    )


def compose_stack_running(project: Project | None = None) -> bool:
    """Whether this project's compose stack has an emulator container (running or not)."""
    project = project or current()
    file = compose_file(project)
    executable = shutil.which("docker")
    if executable is None or not file.is_file():
        return False
    command = [executable, "compose", "--file", str(file), "ps", "--quiet"]
    try:
        result = subprocess.run(
            [*command, *COMPOSE_SERVICES],
            cwd=project.root,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def compose_down(project: Project | None = None) -> None:
    """``docker compose down``: the containers go, and their in-memory state with them."""
    _compose("down", project=project)


def _compose(*arguments: str, project: Project | None = None) -> None:
    project = project or current()
    executable = shutil.which("docker")
    if executable is None:
        raise EmulatorError(
            "the docker CLI is not on PATH: install Docker with the compose plugin, "
            f"or use the embedded emulator (`{endpoint.DEV_COMMAND} up --embedded`)"
        )
    file = compose_file(project)
    if not file.is_file():
        raise EmulatorError(
            f"no {COMPOSE_FILE_NAME} in {project.root}: docker mode runs the project's "
            f"compose file; `{endpoint.DEV_COMMAND} up --embedded` needs none"
        )
    command = [executable, "compose", "--file", str(file), *arguments]
    result = subprocess.run(command, cwd=project.root, check=False)
    if result.returncode != 0:
        raise EmulatorError(
            f"`docker compose {' '.join(arguments)}` exited {result.returncode}: "
            "see its output above (`docker compose logs` shows the emulator's)"
        )


# --- The embedded emulator -------------------------------------------------------------


def ensure_ministack(venv: Path = VENV_DIR, *, log: Log = print) -> Path:
    """The pinned MiniStack's executable, installed into ``venv`` on first use.

    A lock serialises concurrent first runs (``sqsl up`` beside a test session).
    """
    executable = venv / "bin" / "ministack"
    if executable.exists() and _up_to_date(venv):
        return executable
    venv.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(venv.with_name(f"{venv.name}.lock")):
        if executable.exists() and _up_to_date(venv):
            return executable
        started = time.monotonic()
        log(f"installing {MINISTACK_REQUIREMENT} into {display_path(venv)} (once)")
        _install(venv)
        log(f"installed {MINISTACK_REQUIREMENT} in {time.monotonic() - started:.1f} s")
    if not executable.exists() or not _up_to_date(venv):
        raise EmulatorError(
            f"{MINISTACK_REQUIREMENT} and {SAM_TRANSLATOR_REQUIREMENT} are not both in "
            f"{display_path(venv)} after installing them: "
            f"delete {display_path(venv)} and run `{endpoint.DEV_COMMAND} up` again"
        )
    return executable


def installed_version(venv: Path, distribution: str = "ministack") -> str | None:
    """The version of ``distribution`` in ``venv``, read from its metadata without
    starting Python (``distribution`` as its dist-info folder spells it)."""
    pattern = f"lib/python*/site-packages/{distribution}-*.dist-info"
    for metadata in sorted(venv.glob(pattern)):
        return metadata.name.removeprefix(f"{distribution}-").removesuffix(".dist-info")
    return None


def _up_to_date(venv: Path) -> bool:
    """Whether ``venv`` holds the pinned MiniStack and SAM translator (a venv from an
    earlier version gets the translator added), and its Python still exists."""
    return (
        (venv / "bin" / "python").exists()
        and installed_version(venv) == config.MINISTACK_VERSION
        and installed_version(venv, "aws_sam_translator") == SAM_TRANSLATOR_VERSION
    )


def find_uv(project: Project | None = None) -> str | None:
    """uv: the one running us (``uv run`` sets UV), on PATH, or the project's Makefile's
    own (``.tools/bin/uv``)."""
    candidates = [os.environ.get("UV"), shutil.which("uv")]
    with contextlib.suppress(SettingsError):  # no project to look in: the first two will do
        candidates.append(str((project or current()).root / ".tools" / "bin" / "uv"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            return candidate
    return None


def _install(venv: Path) -> None:
    python = venv / "bin" / "python"
    if not python.exists() and venv.exists():
        shutil.rmtree(venv)  # a broken venv: start again
    uv = find_uv()
    if uv is not None:
        # This interpreter, not uv's choice: uv may not download one (UV_PYTHON_DOWNLOADS).
        if not python.exists():
            _run([uv, "venv", "--quiet", "--no-project", "--python", sys.executable, str(venv)])
        _run(
            [
                *(uv, "pip", "install", "--quiet", "--python", str(python)),
                *(MINISTACK_REQUIREMENT, SAM_TRANSLATOR_REQUIREMENT),
            ]
        )
        return
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)])
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, MINISTACK_REQUIREMENT, SAM_TRANSLATOR_REQUIREMENT])


def _run(command: list[str]) -> None:
    result = subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    if result.returncode != 0:
        output = "\n".join(result.stdout.strip().splitlines()[-15:])
        raise EmulatorError(
            f"could not install {MINISTACK_REQUIREMENT}: `{' '.join(command)}` exited "
            f"{result.returncode}:\n{output}\n"
            "Check the network or your package index settings, or run an emulator yourself "
            "and set AWS_ENDPOINT_URL to it."
        )


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def port_in_use(port: int) -> bool:
    """Whether something listens on, or holds, ``port`` on the loopback address.

    Both checks: a listener on another address may still let a bind succeed (BSD), and
    a port in TIME_WAIT after a stopped emulator is free to bind again.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        if probe.connect_ex((LOCALHOST, port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOCALHOST, port))
        except OSError:
            return True
    return False


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when it is free, else a port the OS picks."""
    if preferred is not None and not port_in_use(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOCALHOST, 0))
        port: int = probe.getsockname()[1]
        return port


# --- Who holds a port ------------------------------------------------------------------

# Machine-wide, shared by every service's emulators. Read at call time: tests move it.
REGISTRY_DIR = CACHE_DIR / "emulators"
# After the preferred port, the next ones are tried in order: easy to read and to type.
PORT_SEARCH = 20


@dataclass(frozen=True)
class Registration:
    """One embedded emulator in the machine-wide registry: which service started it."""

    port: int
    pid: int
    service: str  # the folder of the service (its state folder's parent)
    state_file: str

    @classmethod
    def read(cls, path: Path) -> Registration | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                port=int(data["port"]),
                pid=int(data["pid"]),
                service=str(data["service"]),
                state_file=str(data["state_file"]),
            )
        except (OSError, ValueError, TypeError, KeyError):
            return None


def service_folder(layout: Layout) -> Path:
    """The service a state folder belongs to: the project for ``<project>/.local``."""
    directory = layout.directory.resolve()
    return directory.parent if directory.name == STATE_DIR_NAME else directory


def register(record: Record, layout: Layout) -> None:
    """Enter a started embedded emulator in the registry (best effort: a cache folder
    that cannot be written only makes the messages about its port less precise)."""
    if record.pid is None or record.port is None:
        return
    entry = Registration(
        port=record.port,
        pid=record.pid,
        service=str(service_folder(layout)),
        state_file=str(layout.state_file.resolve()),
    )
    with contextlib.suppress(OSError):
        REGISTRY_DIR.mkdir(parents=True, exist_ok=True)
        path = REGISTRY_DIR / f"{entry.port}.json"
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(json.dumps(asdict(entry), indent=2) + "\n", encoding="utf-8")
        partial.replace(path)


def unregister(pid: int) -> None:
    """Remove the registry's entries of process ``pid``."""
    for path in _registry_files():
        entry = Registration.read(path)
        if entry is not None and entry.pid == pid:
            path.unlink(missing_ok=True)


def registration(port: int) -> Registration | None:
    """The registered emulator on ``port`` while it runs; a stale entry is removed."""
    path = REGISTRY_DIR / f"{port}.json"
    entry = Registration.read(path)
    if entry is None:
        return None
    if process_alive(entry.pid) and is_ministack(entry.pid):
        return entry
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
    return None


def _registry_files() -> list[Path]:
    try:
        return sorted(REGISTRY_DIR.glob("*.json"))
    except OSError:
        return []


@contextlib.contextmanager
def machine_lock(log: Log = print) -> Iterator[None]:
    """One ``up`` at a time on this machine, from port choice until the emulator listens.

    Without the lock (a cache folder that cannot be written) the ownership check after
    start-up still catches a lost race.
    """
    try:
        REGISTRY_DIR.mkdir(parents=True, exist_ok=True)
        handle = (REGISTRY_DIR / "start.lock").open("a")
    except OSError:
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another emulator is starting on this machine: waiting for it to listen")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Listeners:
    """The processes listening on a port, as far as this user can see them.

    ``hidden`` counts listening sockets whose process is not visible: another user's,
    or a container's (docker publishes ports through a root-owned proxy).
    """

    pids: frozenset[int] = frozenset()
    uids: frozenset[int] = frozenset()
    hidden: int = 0


def listeners(port: int) -> Listeners | None:
    """Who listens on TCP ``port``: /proc on Linux, else ``lsof``; None when neither tells."""
    proc = Path("/proc")
    if (proc / "net" / "tcp").is_file():
        return _proc_listeners(proc, port)
    return _lsof_listeners(port)


def _proc_listeners(proc: Path, port: int) -> Listeners:
    inodes: dict[str, int] = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            fields = line.split()
            if len(fields) < 10 or fields[3] != "0A":  # 0A: LISTEN
                continue
            if int(fields[1].rpartition(":")[2], 16) == port:
                inodes[f"socket:[{fields[9]}]"] = int(fields[7])
    if not inodes:
        return Listeners()
    pids: set[int] = set()
    seen: set[str] = set()
    for process in proc.iterdir():
        if not process.name.isdigit():
            continue
        try:
            descriptors = list((process / "fd").iterdir())
        except OSError:
            continue  # another user's, or gone
        for descriptor in descriptors:
            try:
                target = os.readlink(descriptor)
            except OSError:
                continue
            if target in inodes:
                pids.add(int(process.name))
                seen.add(target)
    hidden = [uid for inode, uid in inodes.items() if inode not in seen]
    return Listeners(pids=frozenset(pids), uids=frozenset(hidden), hidden=len(hidden))


def _lsof_listeners(port: int) -> Listeners | None:
    lsof = shutil.which("lsof")
    if lsof is None:
        return None
    try:
        result = subprocess.run(
            [lsof, "-nP", f"-iTCP:{port}", "-sTCP:LISTEN", "-Fp"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    pids = {int(line[1:]) for line in result.stdout.splitlines() if re.fullmatch(r"p\d+", line)}
    if not pids:
        return None  # lsof shows only this user's processes: nothing certain
    return Listeners(pids=frozenset(pids))


def owns_port(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` (or a process of its group) listens on ``port``.

    None when this platform cannot tell.
    """
    found = listeners(port)
    if found is None:
        return None
    return any(holder == pid or _process_group(holder) == pid for holder in found.pids)


def _process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


@dataclass(frozen=True)
class PortHolder:
    """What holds a port, for the messages: as much as can be found out."""

    port: int
    pid: int | None = None
    command: str | None = None
    service: str | None = None  # one of our emulators: the service that started it
    uids: frozenset[int] = field(default_factory=frozenset)

    def describe(self) -> str:
        if self.service is not None:
            return f"pid {self.pid} (MiniStack, the emulator of the service in {self.service})"
        if self.pid is not None:
            return f"pid {self.pid} ({self.command or 'command unknown'})"
        if self.uids:
            users = ", ".join(sorted(_user_name(uid) for uid in self.uids))
            return (
                f"a process of user {users} that this user cannot see "
                "(another user's, or a container's published port: `docker ps` lists those)"
            )
        return (
            f"a process this tool cannot identify (`lsof -nP -iTCP:{self.port} -sTCP:LISTEN` "
            "names it)"
        )


def port_holder(port: int) -> PortHolder | None:
    """What holds ``port`` on the loopback address, or None when it is free."""
    if not port_in_use(port):
        return None
    entry = registration(port)
    found = listeners(port)
    if entry is not None and (found is None or entry.pid in _with_groups(found.pids)):
        return PortHolder(port=port, pid=entry.pid, service=entry.service)
    if found is None:
        return PortHolder(port=port)
    for pid in sorted(found.pids):
        return PortHolder(port=port, pid=pid, command=_command(pid))
    return PortHolder(port=port, uids=found.uids)


def _with_groups(pids: frozenset[int]) -> set[int]:
    groups = {_process_group(pid) for pid in pids}
    return set(pids) | {group for group in groups if group is not None}


def _user_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _command(pid: int, limit: int = 100) -> str | None:
    cmdline = Path("/proc") / str(pid) / "cmdline"
    if cmdline.parent.parent.is_dir():
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            return None
    else:
        result = subprocess.run(  # no /proc (macOS)
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
        )
        text = result.stdout.strip()
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 3] + "..."


def choose_port(preferred: int | None = None, *, log: Log = print) -> int:
    """``preferred`` (default 4566) when free; else the next free port after it, and
    ``log`` says what holds each port passed over."""
    if preferred is None:
        preferred = config.DEFAULT_EMULATOR_PORT
    holder = port_holder(preferred)
    if holder is None:
        return preferred
    held = [f"port {preferred} is held by {holder.describe()}"]
    port: int | None = None
    for candidate in range(preferred + 1, min(preferred + 1 + PORT_SEARCH, 65536)):
        other = port_holder(candidate)
        if other is None:
            port = candidate
            break
        held.append(f"{candidate} by {other.describe()}")
    if port is None:
        port = free_port()
        held = held[:1]  # the whole range is taken: the first one says enough
    log(f"{', '.join(held)}: using {port} instead")
    return port


def start_embedded(
    layout: Layout,
    *,
    port: int | None = None,
    timeout: float = STARTUP_TIMEOUT_SECONDS,
    log: Log = print,
    region: str | None = None,
) -> Record:
    """Install if needed, start MiniStack on ``port`` (default: 4566 or the next free
    one), wait until it is healthy *and listens on that port itself*, and record it in
    ``layout.state_file`` and in the machine-wide registry.

    ``region`` (default: the current project's) is MiniStack's own, for what it creates
    without a request's region. The resources are not created here: see :mod:`.provisioning`.
    """
    region = region or current().region
    executable = ensure_ministack(layout.venv, log=log)
    with machine_lock(log):
        if port is None:
            chosen = choose_port(log=log)
        else:
            holder = port_holder(port)
            if holder is not None:
                raise EmulatorError(
                    f"port {port} is held by {holder.describe()}: choose another with --port, "
                    "or omit it to get a free one"
                )
            chosen = port
        record = _start_on(executable, layout, chosen, region, timeout=timeout, log=log)
        register(record, layout)
    record.write(layout.state_file)
    return record


def _start_on(
    executable: Path, layout: Layout, port: int, region: str, *, timeout: float, log: Log
) -> Record:
    layout.directory.mkdir(parents=True, exist_ok=True)
    environment = {key: value for key, value in os.environ.items() if key not in _NOT_FOR_MINISTACK}
    environment.update(
        BIND_HOST=LOCALHOST,
        GATEWAY_PORT=str(port),
        # ARNs in the service's region, as the IaC would create them.
        MINISTACK_REGION=region,
        # Its IoT TLS listener would hold port 8883 and clash with a second instance.
        IOT_MTLS_ENABLED="0",
    )
    with layout.log_file.open("wb") as output:
        process = subprocess.Popen(
            [str(executable)],
            cwd=layout.directory,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[process.pid] = process
    url = f"http://{LOCALHOST}:{port}"
    try:
        seconds = wait_healthy(url, timeout=timeout, alive=lambda: process.poll() is None)
        _check_owner(process, port)
    except EmulatorError as error:
        stop_embedded(process.pid)
        raise EmulatorError(f"{error}\n{_tail(layout.log_file)}") from None
    log(f"MiniStack {config.MINISTACK_VERSION} answered after {seconds:.1f} s")
    return Record(mode="embedded", endpoint=url, pid=process.pid, log=str(layout.log_file))


def _check_owner(process: subprocess.Popen[bytes], port: int) -> None:
    """The health check may have been answered by another process on ``port`` (one that
    took it between our check and MiniStack's bind): then MiniStack exits, and the
    answer was not its own."""
    owned = owns_port(process.pid, port)
    if owned is None:  # this platform cannot tell: MiniStack exits at once when it lost
        time.sleep(0.5)
        owned = process.poll() is None
    if not owned:
        holder = port_holder(port)
        what = holder.describe() if holder is not None else "another process"
        raise EmulatorError(
            f"port {port} was taken by {what} while MiniStack started, and answered in its "
            "place: run `up` again to get another port"
        )


def is_healthy(url: str, *, timeout: float = 1.0) -> bool:
    """Whether ``url`` answers the LocalStack health check with 200 and JSON."""
    # No proxy: a corporate HTTP_PROXY must not intercept a loopback health check.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url.rstrip("/") + HEALTH_PATH, timeout=timeout) as response:
            if response.status != 200:
                return False
            json.loads(response.read())
    except (OSError, http.client.HTTPException, ValueError):  # no answer, or not JSON
        return False
    return True


def wait_healthy(
    url: str, *, timeout: float, alive: Callable[[], bool] | None = None, interval: float = 0.1
) -> float:
    """Poll the health check until it passes; the seconds it took.

    ``alive`` stops the wait as soon as the process has exited: its log says why.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if is_healthy(url):
            return time.monotonic() - started
        if alive is not None and not alive():
            raise EmulatorError(f"the emulator exited before {url} answered")
        if time.monotonic() >= deadline:
            raise EmulatorError(f"{url}{HEALTH_PATH} did not answer within {timeout:g} s")
        time.sleep(interval)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie child of ours counts as gone)."""
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and surely not our emulator
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        # Not our child: once it exits it is a zombie until init reaps it, which may take
        # a second or more, and `kill -0` still finds it.
        return not _is_zombie(pid)
    return reaped == 0


def _is_zombie(pid: int) -> bool:
    stat = Path("/proc") / str(pid) / "stat"
    if stat.parent.parent.is_dir():
        try:
            text = stat.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return True  # gone while we looked
        # "pid (command) state ...": the command may contain spaces and parentheses.
        fields = text.rpartition(")")[2].split()
        return not fields or fields[0] == "Z"
    result = subprocess.run(  # no /proc (macOS)
        ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return result.stdout.strip().startswith("Z") or result.returncode != 0


# What became of a recorded emulator: it runs on its port; its process is gone (or is no
# longer MiniStack); or it runs while another process holds the recorded port.
Standing = Literal["running", "gone", "displaced"]


def standing(record: Record) -> Standing:
    """Whether the recorded emulator still runs and holds its own port, without asking it
    anything (docker: assumed running, the compose stack publishes the port)."""
    if record.mode == "docker":
        return "running"
    pid = record.pid
    if pid is None or not (process_alive(pid) and is_ministack(pid)):
        return "gone"
    port = record.port
    if port is not None and owns_port(pid, port) is False:
        return "displaced"
    return "running"


def check(record: Record) -> tuple[bool, bool]:
    """Whether the recorded emulator's process is alive (docker: assumed), and whether it
    answers its health check on its own port. A pid that is no longer MiniStack counts
    as not alive; a port that another process holds answers for someone else, not it."""
    state = standing(record)
    if state == "gone":
        return False, False
    if state == "displaced":
        return True, False
    return True, is_healthy(record.endpoint)


def is_ministack(pid: int) -> bool:
    """Whether ``pid`` is a MiniStack process: a recorded pid may have been reused."""
    cmdline = Path("/proc") / str(pid) / "cmdline"
    if cmdline.parent.parent.is_dir():
        try:
            return b"ministack" in cmdline.read_bytes()
        except OSError:
            return False
    result = subprocess.run(  # no /proc (macOS)
        ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return "ministack" in result.stdout


def stop_embedded(pid: int, *, timeout: float = STOP_TIMEOUT_SECONDS) -> StopResult:
    """SIGTERM, then SIGKILL after ``timeout`` s, to MiniStack's whole process group.

    The group, because MiniStack runs Lambda functions as its own subprocesses.
    """
    if not process_alive(pid):
        _reap(pid)
        unregister(pid)
        return "not running"
    _signal(pid, signal.SIGTERM)
    if _wait_gone(pid, timeout):
        unregister(pid)
        return "stopped"
    _signal(pid, signal.SIGKILL)
    if _wait_gone(pid, 5.0):
        unregister(pid)
        return "killed"
    raise EmulatorError(f"process {pid} survived SIGKILL: check it with `ps -p {pid}`")


def _signal(pid: int, signum: signal.Signals) -> None:
    try:
        if os.getpgid(pid) == pid:  # the leader of the session it was started in
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    child = _children.pop(pid, None)
    if child is not None:
        child.wait()


def _tail(log_file: Path, lines: int = 20) -> str:
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {display_path(log_file)})"
    tail = "\n".join(text.strip().splitlines()[-lines:])
    if not tail:
        return f"{display_path(log_file)} is empty"
    return f"last lines of {display_path(log_file)}:\n{tail}"


def display_path(path: Path, project: Project | None = None) -> str:
    """``path`` relative to the project when it is inside it: shorter to read."""
    try:
        return str(path.relative_to((project or current()).root))
    except (ValueError, SettingsError):
        return str(path)
