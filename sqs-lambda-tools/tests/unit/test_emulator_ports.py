"""Who holds a port, and which emulator the tools may talk to, without starting MiniStack.

A *fake MiniStack* here is a small Python process whose command line says "ministack" and
that answers the health check on a port: what the tools check of a real one. Every
service's emulators share a machine-wide registry; these tests give it a folder of theirs,
and the tools a copy of the sample project, whose ``.local/`` holds the record.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sqs_lambda_tools import config, endpoint
from sqs_lambda_tools import emulator as emulators
from sqs_lambda_tools.cli import app
from sqs_lambda_tools.project import Project

# Answers every GET with JSON (the health check), on the port given as its first argument;
# "ministack" in its arguments is what the tools look for in a command line.
FAKE_MINISTACK = """
import http.server, sys
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"services": {}}')
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health)
print("listening", flush=True)
server.serve_forever()
"""

Spawn = Callable[[int], subprocess.Popen[str]]


@pytest.fixture(autouse=True)
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """GIVEN a machine-wide registry of this test's own, and no AWS_ENDPOINT_URL."""
    folder = tmp_path / "registry"
    monkeypatch.setattr(emulators, "REGISTRY_DIR", folder)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return folder


@pytest.fixture
def fake_ministack() -> Iterator[Spawn]:
    """Start fake MiniStacks on given ports; all stopped at the end."""
    started: list[subprocess.Popen[str]] = []

    def spawn(port: int) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", FAKE_MINISTACK, str(port), "ministack"],
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "listening"
        return process

    yield spawn
    for process in started:
        process.kill()
        process.wait()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A port this test process listens on: something that is not one of our emulators."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server


def port_of(server: socket.socket) -> int:
    port: int = server.getsockname()[1]
    return port


def other_service(tmp_path: Path, pid: int, port: int) -> Path:
    """Register process ``pid`` as the emulator that `sqsl up` started in another service."""
    service = tmp_path / "billing-consumer"
    layout = emulators.Layout.under(service / ".local")
    record = emulators.Record(mode="embedded", endpoint=f"http://127.0.0.1:{port}", pid=pid)
    emulators.register(record, layout)
    return service


def test_a_port_held_by_another_process_is_named_with_its_pid_and_command(
    listener: socket.socket,
) -> None:
    holder = emulators.port_holder(port_of(listener))

    assert holder is not None
    assert holder.pid == os.getpid()
    assert holder.describe().startswith(f"pid {os.getpid()} (")
    assert "python" in holder.describe().lower() or "pytest" in holder.describe().lower()


def test_a_free_port_has_no_holder() -> None:
    assert emulators.port_holder(emulators.free_port()) is None


def test_a_port_held_by_another_services_emulator_names_that_service(
    tmp_path: Path, fake_ministack: Spawn
) -> None:
    port = emulators.free_port()
    process = fake_ministack(port)
    service = other_service(tmp_path, process.pid, port)

    holder = emulators.port_holder(port)

    assert holder is not None
    assert holder.describe() == (
        f"pid {process.pid} (MiniStack, the emulator of the service in {service.resolve()})"
    )


def test_the_next_free_port_is_chosen_and_the_log_says_what_held_the_preferred_one(
    tmp_path: Path, fake_ministack: Spawn
) -> None:
    port = emulators.free_port()
    process = fake_ministack(port)
    service = other_service(tmp_path, process.pid, port)
    lines: list[str] = []

    chosen = emulators.choose_port(port, log=lines.append)

    assert chosen != port
    assert not emulators.port_in_use(chosen)
    assert len(lines) == 1
    assert lines[0].startswith(
        f"port {port} is held by pid {process.pid} (MiniStack, the emulator of the service "
        f"in {service.resolve()})"
    )
    assert lines[0].endswith(f": using {chosen} instead")


def test_each_port_passed_over_is_named_with_its_holder(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN 4566 held by a process, 4567 by another service's emulator
    holders = {
        4566: emulators.PortHolder(port=4566, pid=11, command="java -jar other.jar"),
        4567: emulators.PortHolder(port=4567, pid=12, service="/work/billing"),
    }
    monkeypatch.setattr(emulators, "port_holder", holders.get)
    lines: list[str] = []

    assert emulators.choose_port(4566, log=lines.append) == 4568
    assert lines == [
        "port 4566 is held by pid 11 (java -jar other.jar), 4567 by pid 12 (MiniStack, the "
        "emulator of the service in /work/billing): using 4568 instead"
    ]


def test_a_free_preferred_port_is_taken_silently() -> None:
    port = emulators.free_port()
    lines: list[str] = []

    assert emulators.choose_port(port, log=lines.append) == port
    assert lines == []


def test_a_process_owns_the_port_it_listens_on_and_no_other(
    fake_ministack: Spawn, listener: socket.socket
) -> None:
    port = emulators.free_port()
    process = fake_ministack(port)

    assert emulators.owns_port(process.pid, port) is True
    assert emulators.owns_port(process.pid, port_of(listener)) is False
    assert emulators.owns_port(os.getpid(), port) is False


def test_proc_listeners_reads_the_listening_sockets_of_a_port(tmp_path: Path) -> None:
    # GIVEN a /proc with one process (42) listening on 4566 (0x11D6), one socket of
    # another user's listening on it too, and a connection on 4567 (not listening)
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    header = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid ...\n"
    )
    tail = "00000000:00000000 00:00000000 00000000"
    (proc / "net" / "tcp").write_text(
        header
        + f"   0: 0100007F:11D6 00000000:0000 0A {tail}  1000 0 111 1\n"
        + f"   1: 0100007F:11D7 0100007F:9C40 01 {tail}  1000 0 222 1\n",
        encoding="ascii",
    )
    (proc / "net" / "tcp6").write_text(
        header
        + "   0: 00000000000000000000000000000000:11D6 00000000000000000000000000000000:0000 0A"
        " 00000000:00000000 00:00000000 00000000     0 0 333 1\n",
        encoding="ascii",
    )
    (proc / "42" / "fd").mkdir(parents=True)
    (proc / "42" / "fd" / "6").symlink_to("socket:[111]")
    (proc / "43" / "fd").mkdir(parents=True)
    (proc / "43" / "fd" / "7").symlink_to("socket:[222]")

    found = emulators._proc_listeners(proc, 4566)

    assert found.pids == frozenset({42})
    assert found.uids == frozenset({0})
    assert found.hidden == 1
    assert emulators._proc_listeners(proc, 4567) == emulators.Listeners()


def test_a_holder_that_cannot_be_seen_is_described_by_its_user() -> None:
    holder = emulators.PortHolder(port=4566, uids=frozenset({0}))

    assert holder.describe().startswith("a process of user root (uid 0)")
    assert "docker ps" in holder.describe()


def test_without_proc_or_lsof_the_holder_says_how_to_find_it(
    monkeypatch: pytest.MonkeyPatch, listener: socket.socket
) -> None:
    monkeypatch.setattr(emulators, "listeners", lambda port: None)

    holder = emulators.port_holder(port_of(listener))

    assert holder is not None
    assert f"lsof -nP -iTCP:{port_of(listener)} -sTCP:LISTEN" in holder.describe()


# --- docker compose: the compose file publishes the emulator on 4566 ------------------------


def test_compose_may_publish_a_free_port() -> None:
    assert (
        emulators.compose_port_conflict(emulators.free_port(), stack_running=lambda: False) is None
    )


def test_compose_refuses_a_port_another_service_holds_and_names_it(
    tmp_path: Path, fake_ministack: Spawn
) -> None:
    port = emulators.free_port()
    process = fake_ministack(port)
    service = other_service(tmp_path, process.pid, port)

    conflict = emulators.compose_port_conflict(port, stack_running=lambda: False)

    assert conflict is not None
    assert f"publishes the emulator on port {port}, which is held by pid {process.pid}" in conflict
    assert str(service.resolve()) in conflict
    assert "up --embedded" in conflict


def test_compose_keeps_its_own_stack_on_the_port(listener: socket.socket) -> None:
    assert emulators.compose_port_conflict(port_of(listener), stack_running=lambda: True) is None


def test_up_with_docker_says_what_holds_the_port_and_runs_no_compose(
    sample_project: Project, monkeypatch: pytest.MonkeyPatch, listener: socket.socket
) -> None:
    # GIVEN a project with a compose file, an engine that answers, and 4566 (here: a port
    # of the test's) held by a process
    (sample_project.root / "docker-compose.yml").write_text("services: {}\n", encoding="utf-8")
    monkeypatch.setattr(config, "DEFAULT_EMULATOR_PORT", port_of(listener))
    monkeypatch.setattr(emulators, "docker_engine_available", lambda: True)
    monkeypatch.setattr(emulators, "compose_stack_running", lambda project=None: False)
    composed: list[str] = []
    monkeypatch.setattr(emulators, "compose_up", lambda **_: composed.append("up"))

    result = CliRunner().invoke(app, ["up"])

    assert result.exit_code == 1
    assert f"port {port_of(listener)}, which is held by pid {os.getpid()}" in result.stderr
    assert composed == []


def test_up_without_a_compose_file_starts_the_embedded_emulator_though_docker_runs(
    sample_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an engine that answers, and a project without docker-compose.yml
    monkeypatch.setattr(emulators, "docker_engine_available", lambda: True)
    started: list[emulators.Layout] = []

    def start_embedded(layout: emulators.Layout, **_: object) -> emulators.Record:
        started.append(layout)
        raise emulators.EmulatorError("not starting MiniStack in a unit test")

    monkeypatch.setattr(emulators, "start_embedded", start_embedded)

    result = CliRunner().invoke(app, ["up"])

    assert "No docker-compose.yml in the project: starting the embedded MiniStack" in (
        result.output
    )
    assert started == [emulators.Layout.default(sample_project)]
    assert result.exit_code == 1
    assert "not starting MiniStack in a unit test" in result.stderr


def test_up_with_docker_and_no_compose_file_names_the_file(
    sample_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(emulators, "docker_engine_available", lambda: True)

    result = CliRunner().invoke(app, ["up", "--docker"])

    assert result.exit_code == 1
    assert f"no docker-compose.yml in {sample_project.root}" in result.stderr
    assert "without --docker" in result.stderr
    assert not endpoint.state_file(sample_project).exists()


# --- where the tools keep their state ------------------------------------------------------


def test_the_record_is_in_the_projects_state_folder_and_the_venv_is_machine_wide(
    sample_project: Project,
) -> None:
    layout = emulators.Layout.default()

    assert layout.state_file == sample_project.root / ".local" / "emulator.json"
    assert layout.log_file == sample_project.root / ".local" / "ministack.log"
    assert emulators.service_folder(layout) == sample_project.root.resolve()
    # One install per MiniStack version for every project (and their tests).
    assert layout.venv == emulators.CACHE_DIR / f"ministack-{config.MINISTACK_VERSION}"
    assert emulators.CACHE_DIR.name == "sqs-lambda-tools"


def test_a_venv_whose_python_is_gone_is_installed_again(tmp_path: Path) -> None:
    # GIVEN a venv with the pinned distributions, but its interpreter removed (the Python
    # it was made from is gone)
    site = tmp_path / "venv" / "lib" / "python3.12" / "site-packages"
    site.mkdir(parents=True)
    (site / f"ministack-{config.MINISTACK_VERSION}.dist-info").mkdir()
    (site / f"aws_sam_translator-{emulators.SAM_TRANSLATOR_VERSION}.dist-info").mkdir()
    (tmp_path / "venv" / "bin").mkdir()

    assert not emulators._up_to_date(tmp_path / "venv")
    (tmp_path / "venv" / "bin" / "python").symlink_to(sys.executable)
    assert emulators._up_to_date(tmp_path / "venv")


# --- the endpoint the tools use ------------------------------------------------------------


@pytest.fixture
def state_file(sample_project: Project) -> Path:
    """GIVEN a project (a copy of the sample), whose record the tools read."""
    return endpoint.state_file(sample_project)


def record(state_file: Path, port: int, pid: int) -> None:
    emulators.Record(mode="embedded", endpoint=f"http://127.0.0.1:{port}", pid=pid).write(
        state_file
    )


def test_the_tools_use_the_recorded_emulator_while_it_holds_its_port(
    state_file: Path, fake_ministack: Spawn
) -> None:
    port = emulators.free_port()
    record(state_file, port, fake_ministack(port).pid)

    assert endpoint.resolve_endpoint().url == f"http://127.0.0.1:{port}"
    shown = CliRunner().invoke(app, ["endpoint"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == f"http://127.0.0.1:{port}\n"


def test_the_tools_refuse_a_recorded_port_another_process_answers_on(
    state_file: Path, fake_ministack: Spawn, listener: socket.socket
) -> None:
    # GIVEN the recorded MiniStack runs, but its recorded port is held by someone else
    # (what a lost start-up race left behind before)
    ours = fake_ministack(emulators.free_port())
    record(state_file, port_of(listener), ours.pid)

    with pytest.raises(endpoint.NoEndpointError, match=f"held|pid {os.getpid()}") as raised:
        endpoint.resolve_endpoint()
    assert f"does not hold its port {port_of(listener)}" in str(raised.value)
    shown = CliRunner().invoke(app, ["endpoint"])
    assert shown.exit_code == 1
    assert f"does not hold its port: pid {os.getpid()}" in shown.stderr
    assert "`sqsl up`" in shown.stderr


def test_the_tools_refuse_a_recorded_emulator_that_is_gone(
    state_file: Path, fake_ministack: Spawn
) -> None:
    # GIVEN a record whose process is gone, while another MiniStack answers on its port
    port = emulators.free_port()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    fake_ministack(port)
    record(state_file, port, gone.pid)

    with pytest.raises(endpoint.NoEndpointError, match="is not running"):
        endpoint.resolve_endpoint()
    shown = CliRunner().invoke(app, ["endpoint"])
    assert shown.exit_code == 1
    assert "is not running: `sqsl up` starts it again" in shown.stderr


def test_endpoint_without_an_emulator_names_make_up(state_file: Path) -> None:
    shown = CliRunner().invoke(app, ["endpoint"])

    assert shown.exit_code == 1
    assert "no emulator is running for this service: `sqsl up` starts one" in shown.stderr
    assert shown.stdout == ""


def test_without_an_emulator_the_tools_say_how_to_get_an_endpoint(state_file: Path) -> None:
    with pytest.raises(endpoint.NoEndpointError) as raised:
        endpoint.resolve_endpoint()

    assert str(raised.value) == (
        "no emulator endpoint: run `sqsl up`, set AWS_ENDPOINT_URL, or pass --aws to use real AWS"
    )
    assert endpoint.resolve_endpoint(aws=True) == endpoint.Endpoint(url=None, source="aws")


@pytest.mark.parametrize("how", ["--project", "SQSL_PROJECT"])
def test_the_project_given_on_the_command_line_is_the_one_whose_emulator_is_used(
    make_sample_project: Callable[..., Project],
    fake_ministack: Spawn,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    # GIVEN two projects, the current one without an emulator, the other with one
    make_sample_project(name="current")
    other = make_sample_project(name="other", use=False)
    port = emulators.free_port()
    record(endpoint.state_file(other), port, fake_ministack(port).pid)
    arguments = ["endpoint"]
    if how == "--project":
        arguments = ["--project", str(other.root), *arguments]
    else:
        monkeypatch.setenv("SQSL_PROJECT", str(other.root))

    shown = CliRunner().invoke(app, arguments)

    assert shown.exit_code == 0, shown.output
    assert shown.stdout == f"http://127.0.0.1:{port}\n"


def test_endpoint_prints_aws_endpoint_url_when_it_is_set(
    state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://emulator.example:4566")

    shown = CliRunner().invoke(app, ["endpoint"])

    assert shown.exit_code == 0
    assert shown.stdout == "http://emulator.example:4566\n"


def test_the_registry_forgets_an_emulator_that_is_gone(tmp_path: Path, registry: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    port = emulators.free_port()
    other_service(tmp_path, gone.pid, port)
    assert json.loads((registry / f"{port}.json").read_text(encoding="utf-8"))["pid"] == gone.pid

    assert emulators.registration(port) is None
    assert not (registry / f"{port}.json").exists()
