"""The emulator's lifecycle: the embedded MiniStack, or the docker compose stack.

Why MiniStack runs from a virtualenv of its own (``.local/ministack-venv``): it pins
botocore exactly, so installed beside the service it would pin the service's boto3 too.
The venv is created once, with uv when there is one (``uv run`` and the Makefile provide
it), else with ``python -m venv`` and pip, and reused while its version is the pinned one.

Why a session of its own: ``dev up`` returns while the emulator keeps running, and a
Ctrl-C in the terminal that started it must not stop it; ``dev down`` stops it through
the pid recorded in ``.local/emulator.json``, the file :mod:`.endpoint` reads to find it.

POSIX only (process sessions and signals), like the Makefile that drives it.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import docker

from . import config, endpoint

Log = Callable[[str], None]
Mode = Literal["embedded", "docker"]
StopResult = Literal["stopped", "killed", "not running"]

MINISTACK_REQUIREMENT = f"ministack=={config.MINISTACK_VERSION}"
# Installed beside MiniStack, its CloudFormation applies the SAM transform: `deploy-local`
# then deploys template.yaml as AWS would receive it (see local_deploy.py).
SAM_TRANSLATOR_VERSION = "1.115.0"
SAM_TRANSLATOR_REQUIREMENT = f"aws-sam-translator=={SAM_TRANSLATOR_VERSION}"
# Shared by every state folder: tests start their own emulators but reuse the install.
VENV_DIR = config.STATE_DIR / "ministack-venv"
LOG_NAME = "ministack.log"
COMPOSE_FILE = config.PROJECT_ROOT / "docker-compose.yml"
# Only the emulator, as in embedded mode: the compose file's `app` (the local event
# source mapping in a container) would compete with `dev run` for the messages.
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

    ``dev up`` uses the project's ``.local/``; the integration tests use a temporary
    folder, so their emulator never replaces the one a developer started.
    """

    state_file: Path
    venv: Path = VENV_DIR

    @classmethod
    def default(cls) -> Layout:
        # Read at call time, so that pointing endpoint.STATE_FILE elsewhere moves it all.
        return cls(state_file=endpoint.STATE_FILE)

    @classmethod
    def under(cls, directory: Path) -> Layout:
        return cls(state_file=directory / endpoint.STATE_FILE.name)

    @property
    def directory(self) -> Path:
        return self.state_file.parent

    @property
    def log_file(self) -> Path:
        return self.directory / LOG_NAME


@dataclass(frozen=True)
class Record:
    """What ``dev up`` started, as written to the state file.

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


def compose_up(*, timeout: float = STARTUP_TIMEOUT_SECONDS) -> Record:
    """``docker compose up --wait`` for the emulator service of the project's compose file.

    The compose file publishes it on the default port, and its ``ready.d`` hook creates
    the resources inside the container before it reports healthy.
    """
    _compose("up", "--detach", "--wait", "--wait-timeout", str(int(timeout)), *COMPOSE_SERVICES)
    url = f"http://{LOCALHOST}:{config.DEFAULT_EMULATOR_PORT}"
    wait_healthy(url, timeout=timeout)
    return Record(mode="docker", endpoint=url)


def compose_down() -> None:
    """``docker compose down``: the containers go, and their in-memory state with them."""
    _compose("down")


def _compose(*arguments: str) -> None:
    executable = shutil.which("docker")
    if executable is None:
        raise EmulatorError(
            "the docker CLI is not on PATH: install Docker with the compose plugin, "
            "or use the embedded emulator (`dev up --embedded`)"
        )
    if not COMPOSE_FILE.is_file():
        raise EmulatorError(f"{display_path(COMPOSE_FILE)} is missing: `copier update` restores it")
    command = [executable, "compose", "--file", str(COMPOSE_FILE), *arguments]
    result = subprocess.run(command, cwd=config.PROJECT_ROOT, check=False)
    if result.returncode != 0:
        raise EmulatorError(
            f"`docker compose {' '.join(arguments)}` exited {result.returncode}: "
            "see its output above (`docker compose logs` shows the emulator's)"
        )


# --- The embedded emulator -------------------------------------------------------------


def ensure_ministack(venv: Path = VENV_DIR, *, log: Log = print) -> Path:
    """The pinned MiniStack's executable, installed into ``venv`` on first use.

    A lock serialises concurrent first runs (``dev up`` beside a test session).
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
            f"delete {display_path(venv)} and run `dev up` again"
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
    earlier version of this project gets the translator added)."""
    return (
        installed_version(venv) == config.MINISTACK_VERSION
        and installed_version(venv, "aws_sam_translator") == SAM_TRANSLATOR_VERSION
    )


def find_uv() -> str | None:
    """uv: the one running us (``uv run`` sets UV), on PATH, or the Makefile's own."""
    candidates = (
        os.environ.get("UV"),
        shutil.which("uv"),
        str(config.PROJECT_ROOT / ".tools" / "bin" / "uv"),
    )
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


def free_port(preferred: int | None = config.DEFAULT_EMULATOR_PORT) -> int:
    """``preferred`` when it is free (the port tools expect), else one the OS picks."""
    if preferred is not None and not port_in_use(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOCALHOST, 0))
        port: int = probe.getsockname()[1]
        return port


def start_embedded(
    layout: Layout,
    *,
    port: int | None = None,
    timeout: float = STARTUP_TIMEOUT_SECONDS,
    log: Log = print,
) -> Record:
    """Install if needed, start MiniStack on ``port`` (default: 4566 or a free one),
    wait until it is healthy and record it in ``layout.state_file``.

    The resources are not created here: see :mod:`.provisioning`.
    """
    executable = ensure_ministack(layout.venv, log=log)
    if port is None:
        port = free_port()
    elif port_in_use(port):
        raise EmulatorError(
            f"port {port} is in use: choose another with --port, or omit it to get a free one"
        )
    layout.directory.mkdir(parents=True, exist_ok=True)
    environment = {key: value for key, value in os.environ.items() if key not in _NOT_FOR_MINISTACK}
    environment.update(
        BIND_HOST=LOCALHOST,
        GATEWAY_PORT=str(port),
        # ARNs in the service's region, as the IaC would create them.
        MINISTACK_REGION=config.REGION,
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
    except EmulatorError as error:
        stop_embedded(process.pid)
        raise EmulatorError(f"{error}\n{_tail(layout.log_file)}") from None
    log(f"MiniStack {config.MINISTACK_VERSION} answered after {seconds:.1f} s")
    record = Record(mode="embedded", endpoint=url, pid=process.pid, log=str(layout.log_file))
    record.write(layout.state_file)
    return record


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


def check(record: Record) -> tuple[bool, bool]:
    """Whether the recorded emulator's process is alive (docker: assumed), and whether it
    answers its health check. A pid that is no longer MiniStack counts as not alive."""
    if record.mode == "docker":
        return True, is_healthy(record.endpoint)
    pid = record.pid
    alive = pid is not None and process_alive(pid) and is_ministack(pid)
    return alive, alive and is_healthy(record.endpoint)


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
        return "not running"
    _signal(pid, signal.SIGTERM)
    if _wait_gone(pid, timeout):
        return "stopped"
    _signal(pid, signal.SIGKILL)
    if _wait_gone(pid, 5.0):
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


def display_path(path: Path) -> str:
    """``path`` relative to the project when it is inside it: shorter to read."""
    try:
        return str(path.relative_to(config.PROJECT_ROOT))
    except ValueError:
        return str(path)
