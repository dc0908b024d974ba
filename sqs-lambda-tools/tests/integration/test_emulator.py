"""`up`, `status` and `down` as a developer types them, and provisioning that converges.

The embedded emulator's lifecycle runs for real (a MiniStack of its own, on a free port,
recorded in the state folder of a copy of the sample project). No Docker engine is
needed: the tests take the no-engine branch on purpose, wherever they run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner, Result

from sqs_lambda_tools import emulator as emulators
from sqs_lambda_tools import endpoint, provisioning
from sqs_lambda_tools.cli import app
from sqs_lambda_tools.project import Project, Resources
from sqs_lambda_tools.pytest_plugin import ProvisionedResources

pytestmark = pytest.mark.integration

COMPOSE_FILE = "docker-compose.yml"


def invoke(*arguments: str) -> Result:
    return CliRunner().invoke(app, list(arguments))


@pytest.fixture
def state_file(sample_project: Project, monkeypatch: pytest.MonkeyPatch) -> Path:
    """GIVEN a project (a copy of the sample) whose record is the CLI's, no
    AWS_ENDPOINT_URL, and a terminal wide enough for the tables."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return endpoint.state_file(sample_project)


@pytest.fixture
def no_docker(sample_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN a project with a compose file, and no Docker engine that answers (as on
    machines without one; forced elsewhere)."""
    (sample_project.root / COMPOSE_FILE).write_text("services: {}\n", encoding="utf-8")
    monkeypatch.setattr(emulators, "docker_engine_available", lambda: False)


def test_up_starts_the_embedded_emulator_then_status_shows_it_and_down_stops_it(
    sample_project: Project, state_file: Path, no_docker: None
) -> None:
    port = emulators.free_port(preferred=None)
    names = sample_project.resources()

    started = invoke("up", "--port", str(port))
    try:
        assert started.exit_code == 0, started.output
        assert "No Docker engine answers: starting the embedded MiniStack" in started.output
        assert f"created queue {names.source_queue}" in started.output
        assert f"created queue {names.dead_letter_queue}" in started.output
        assert f"created table {names.tables['orders']}" in started.output
        assert state_file.parent == sample_project.root / ".local"
        recorded = json.loads(state_file.read_text(encoding="utf-8"))
        assert recorded["mode"] == "embedded"
        assert recorded["endpoint"] == f"http://127.0.0.1:{port}"
        pid = recorded["pid"]
        assert emulators.process_alive(pid)

        again = invoke("up")
        assert again.exit_code == 0, again.output
        assert "Already running: the embedded MiniStack" in again.output
        assert json.loads(state_file.read_text(encoding="utf-8"))["pid"] == pid
        provisioned = [line.strip() for line in again.output.splitlines() if line[:2] == "  "]
        assert provisioned, again.output
        assert all(line.endswith(": unchanged") for line in provisioned), again.output

        shown = invoke("status")
        assert shown.exit_code == 0, shown.output
        for expected in ("embedded", f"http://127.0.0.1:{port}", str(pid), "alive", "healthy"):
            assert expected in shown.output
        assert names.source_queue in shown.output
        assert names.tables["orders"] in shown.output

        stopped = invoke("down")
        assert stopped.exit_code == 0, stopped.output
        assert f"Stopped MiniStack (pid {pid})" in stopped.output
        assert not state_file.exists()
        assert not emulators.process_alive(pid)
    finally:
        left = emulators.Record.read(state_file)
        if left is not None and left.pid is not None:
            emulators.stop_embedded(left.pid)


# The CLI as another service runs it: its own project folder and resource names, no
# Docker engine, a machine-wide registry of the test's, and a preferred port of the
# test's instead of 4566 (which may be a developer's). Arguments: registry folder,
# preferred port, then the command line.
SERVICE = """
import sys
from pathlib import Path
from sqs_lambda_tools import config, emulator
from sqs_lambda_tools.cli import app

registry, port, *arguments = sys.argv[1:]
emulator.REGISTRY_DIR = Path(registry)
config.DEFAULT_EMULATOR_PORT = int(port)
emulator.docker_engine_available = lambda: False
app(arguments, prog_name="sqsl")
"""


@dataclass(frozen=True)
class Service:
    """One of two services on this machine, each with its own `sqsl up`."""

    project: Project
    registry: Path
    preferred_port: int
    environment: dict[str, str]

    @property
    def folder(self) -> Path:
        return self.project.root

    @property
    def state_file(self) -> Path:
        return endpoint.state_file(self.project)

    @property
    def resources(self) -> Resources:
        return self.project.resources()

    def start(self, *arguments: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-c", SERVICE, str(self.registry), str(self.preferred_port)]
        return subprocess.Popen(
            [*command, "--project", str(self.folder), *arguments],
            env=self.environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(self, *arguments: str) -> tuple[int, str]:
        process = self.start(*arguments)
        output, _ = process.communicate(timeout=180)
        return process.returncode, output

    def record(self) -> emulators.Record:
        record = emulators.Record.read(self.state_file)
        assert record is not None, f"no record in {self.state_file}"
        return record

    def queues(self) -> set[str]:
        """The queues in this service's emulator, by name."""
        target = endpoint.Endpoint(
            url=self.record().endpoint, source="embedded", region=self.project.region
        )
        sqs = target.sqs()
        return {url.rsplit("/", 1)[1] for url in sqs.list_queues().get("QueueUrls", [])}


@pytest.fixture
def two_services(
    tmp_path: Path, make_sample_project: Callable[..., Project]
) -> Iterator[tuple[Service, Service]]:
    """GIVEN two services (copies of the sample project named orders and billing) whose
    emulators both prefer the same free port, and a machine-wide registry of the test's
    own; both emulators are stopped at the end."""
    preferred = emulators.free_port()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_ENDPOINT_URL") and key != "SQSL_PROJECT"
    }
    environment["COLUMNS"] = "250"
    services = tuple(
        Service(
            make_sample_project(
                name=name,
                use=False,
                edit=lambda text, name=name: text.replace('"sample-orders', f'"{name}'),
            ),
            tmp_path / "registry",
            preferred,
            environment,
        )
        for name in ("orders", "billing")
    )
    try:
        yield services[0], services[1]
    finally:
        for service in services:
            left = emulators.Record.read(service.state_file)
            if left is not None and left.pid is not None:
                emulators.stop_embedded(left.pid)


def assert_each_talks_only_to_its_own(first: Service, second: Service) -> None:
    one, two = first.record(), second.record()
    assert one.endpoint != two.endpoint
    for service, record in ((first, one), (second, two)):
        assert record.pid is not None
        assert record.port is not None
        assert emulators.owns_port(record.pid, record.port) is not False
        # THEN its queues are in its own emulator, and only there
        names = service.resources
        assert service.queues() == {names.source_queue, names.dead_letter_queue}
        # AND its status shows its own emulator and queues
        code, shown = service.run("status")
        assert code == 0, shown
        for expected in (record.endpoint, str(record.pid), "alive", "healthy", names.source_queue):
            assert expected in shown, shown
        assert "missing" not in shown, shown


def assert_said_why(output: str, holder: Service, chooser: Service) -> None:
    """THEN the `up` of ``chooser`` said which service held the preferred port, and which
    port it took instead (ports passed over in between are named too)."""
    held = (
        f"port {holder.preferred_port} is held by pid {holder.record().pid} (MiniStack, "
        f"the emulator of the service in {holder.folder.resolve()})"
    )
    said = [line.strip() for line in output.splitlines() if line.strip().startswith(held)]
    assert said, output
    assert said[0].endswith(f": using {chooser.record().port} instead"), output


def test_two_services_up_one_after_the_other_get_their_own_emulators(
    two_services: tuple[Service, Service],
) -> None:
    first, second = two_services

    code, started = first.run("up")
    assert code == 0, started
    code, then = second.run("up")
    assert code == 0, then

    one, two = first.record(), second.record()
    assert one.port == first.preferred_port
    assert_said_why(then, first, second)
    assert f"Ready: the embedded MiniStack at {two.endpoint} (pid {two.pid}" in then
    assert_each_talks_only_to_its_own(first, second)

    for service in (first, second):
        code, stopped = service.run("down")
        assert code == 0, stopped
        assert "Stopped MiniStack" in stopped


def test_two_services_up_at_the_same_time_get_their_own_emulators(
    two_services: tuple[Service, Service],
) -> None:
    first, second = two_services

    processes = [service.start("up") for service in two_services]
    outputs = [process.communicate(timeout=180)[0] for process in processes]

    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
    one, two = first.record(), second.record()
    # THEN two emulators, not one answering for both
    assert one.endpoint != two.endpoint, outputs
    assert one.pid != two.pid, outputs
    # AND one got the preferred port, the other the next one, and its `up` said why
    ports = {one.port, two.port}
    assert first.preferred_port in ports, outputs
    later, output = (
        (second, outputs[1]) if two.port != first.preferred_port else (first, outputs[0])
    )
    earlier = first if later is second else second
    assert_said_why(output, earlier, later)
    for record, out in ((one, outputs[0]), (two, outputs[1])):
        assert f"Ready: the embedded MiniStack at {record.endpoint} (pid {record.pid}" in out
    assert_each_talks_only_to_its_own(first, second)


def test_up_on_a_port_that_is_held_names_what_holds_it(state_file: Path, no_docker: None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        result = invoke("up", "--port", str(port))

    assert result.exit_code == 1
    assert f"port {port} is held by pid {os.getpid()} (" in result.stderr
    assert "omit it to get a free one" in result.stderr
    assert not state_file.exists()


def test_up_bare_starts_an_emulator_with_no_queues_for_tflocal(
    state_file: Path, no_docker: None
) -> None:
    started = invoke("up", "--bare", "--port", str(emulators.free_port()))
    record = emulators.Record.read(state_file)
    try:
        assert started.exit_code == 0, started.output
        assert "No queues or tables created (--bare)" in started.output
        assert record is not None
        assert "created queue" not in started.output
        target = endpoint.Endpoint(url=record.endpoint, source=record.mode)
        assert target.sqs().list_queues().get("QueueUrls", []) == []
        shown = invoke("endpoint")
        assert shown.exit_code == 0, shown.output
        assert shown.stdout == f"{record.endpoint}\n"
    finally:
        if record is not None and record.pid is not None:
            emulators.stop_embedded(record.pid)


def test_status_and_down_forget_an_emulator_that_is_gone(state_file: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = emulators.Record(mode="embedded", endpoint="http://127.0.0.1:9", pid=gone.pid)
    stale.write(state_file)

    shown = invoke("status")
    assert shown.exit_code == 0, shown.output
    assert "not running" in shown.output
    assert "does not answer" in shown.output

    stopped = invoke("down")
    assert stopped.exit_code == 0, stopped.output
    assert "stale record" in stopped.output
    assert not state_file.exists()

    assert "nothing to stop" in invoke("down").output


def test_up_with_docker_and_no_engine_fails_and_says_what_to_do(
    state_file: Path, no_docker: None
) -> None:
    # GIVEN a project with a compose file (no_docker), and no engine
    result = invoke("up", "--docker")

    assert result.exit_code == 1
    assert "no Docker engine answers" in result.stderr
    assert "without --docker" in result.stderr
    assert not state_file.exists()


def test_up_runs_docker_compose_for_the_emulator_when_an_engine_answers(
    sample_project: Project, state_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an engine that answers, the project's compose file, and a docker CLI that
    # records its arguments (and where it runs) and fails
    calls = tmp_path / "docker-calls.txt"
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$PWD" "$@" >> "{calls}"\nexit 3\n', encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    compose_file = sample_project.root / COMPOSE_FILE
    compose_file.write_text("services: {}\n", encoding="utf-8")
    monkeypatch.setattr(emulators, "docker_engine_available", lambda: True)
    # AND port 4566 free for compose to publish (whatever holds it on this machine)
    monkeypatch.setattr(emulators, "compose_port_conflict", lambda: None)

    result = invoke("up")

    assert "A Docker engine answers: starting the docker compose stack" in result.output
    assert calls.read_text(encoding="utf-8").split() == [
        str(sample_project.root),
        "compose",
        "--file",
        str(compose_file),
        "up",
        "--detach",
        "--wait",
        "--wait-timeout",
        str(int(emulators.STARTUP_TIMEOUT_SECONDS)),
        *emulators.COMPOSE_SERVICES,
    ]
    assert result.exit_code == 1
    assert "`docker compose up --detach --wait" in result.stderr
    assert not state_file.exists()


@pytest.mark.parametrize("failure", ["from_env", "ping"])
def test_any_docker_error_means_no_engine(monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    class Unreachable:
        def ping(self) -> bool:
            raise docker.errors.APIError("engine is starting")

        def close(self) -> None:
            pass

    def from_env(**_: Any) -> Unreachable:
        if failure == "from_env":
            raise docker.errors.DockerException("Error while fetching server API version")
        return Unreachable()

    monkeypatch.setattr(docker, "from_env", from_env)

    assert emulators.docker_engine_available() is False


def test_up_with_aws_starts_nothing_and_points_to_the_iac(state_file: Path) -> None:
    result = invoke("up", "--aws")

    assert result.exit_code == 0, result.output
    assert "the IaC creates the queues and tables" in result.output
    assert not state_file.exists()


def test_up_uses_aws_endpoint_url_as_it_is(
    make_sample_project: Callable[..., Project],
    sqsl_emulator: endpoint.Endpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a project whose resources are named for this test alone
    project = make_sample_project(edit=lambda text: text.replace('"sample-orders', '"up-url'))
    names = project.resources()
    assert sqsl_emulator.url is not None
    monkeypatch.setenv("AWS_ENDPOINT_URL", sqsl_emulator.url)
    sqs = sqsl_emulator.sqs()

    result = invoke("up")
    try:
        assert result.exit_code == 0, result.output
        assert f"AWS_ENDPOINT_URL is set: using {sqsl_emulator.url}" in result.output
        assert f"created queue {names.source_queue}" in result.output
        assert not endpoint.state_file(project).exists()
        assert sqs.get_queue_url(QueueName=names.source_queue)["QueueUrl"]
    finally:
        for name in (names.source_queue, names.dead_letter_queue):
            with suppress(ClientError):
                sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
        with suppress(ClientError):
            sqsl_emulator.dynamodb().delete_table(TableName=names.tables["orders"])


def test_provisioning_twice_changes_nothing(
    sqsl_emulator: endpoint.Endpoint, sqsl_resources: ProvisionedResources
) -> None:
    resources = sqsl_resources
    assert f"created queue {resources.resources.source_queue}" in resources.provision_log
    lines: list[str] = []

    again = provisioning.provision_resources(sqsl_emulator, resources.resources, log=lines.append)

    assert lines, "the second run logged nothing"
    assert all(line.endswith(": unchanged") for line in lines), lines
    assert again["source_queue_url"] == resources.source_queue_url
    assert again["dead_letter_queue_arn"] == resources.dead_letter_queue_arn


def queue_attributes(resources: ProvisionedResources, url: str) -> dict[str, str]:
    attributes = resources.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    return {str(name): value for name, value in attributes["Attributes"].items()}


@pytest.mark.parametrize("sqsl_project", ["standard", "fifo"], indirect=True)
def test_the_queues_and_tables_are_as_the_settings_say(
    sqsl_project: Project, sqsl_resources: ProvisionedResources
) -> None:
    source = queue_attributes(sqsl_resources, sqsl_resources.source_queue_url)
    dlq = queue_attributes(sqsl_resources, sqsl_resources.dead_letter_queue_url)

    policy = json.loads(source["RedrivePolicy"])
    assert policy["deadLetterTargetArn"] == sqsl_resources.dead_letter_queue_arn
    assert int(policy["maxReceiveCount"]) == sqsl_project.dlq.max_receive_count == 3
    assert int(source["VisibilityTimeout"]) == sqsl_project.queue.visibility_timeout_seconds
    assert int(source["MessageRetentionPeriod"]) == sqsl_project.queue.retention_seconds
    assert int(dlq["MessageRetentionPeriod"]) == sqsl_project.dlq.retention_seconds
    for attributes in (source, dlq):
        assert attributes["SqsManagedSseEnabled"] == "true"
        if sqsl_project.queue.fifo:
            assert attributes["FifoQueue"] == "true"
            assert attributes["ContentBasedDeduplication"] == "true"
        else:
            assert "FifoQueue" not in attributes or attributes["FifoQueue"] == "false"
    assert sqsl_resources.resources.source_queue.endswith(".fifo") == sqsl_project.queue.fifo
    table = sqsl_resources.dynamodb.describe_table(
        TableName=sqsl_resources.resources.tables["orders"]
    )["Table"]
    assert table["KeySchema"] == [{"AttributeName": "orderId", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "orderId", "AttributeType": "S"}]
    assert table.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST"


def with_more_settings(text: str) -> str:
    """The sample's settings with high throughput and a table with a TTL."""
    return text.replace(
        "content_based_deduplication = true",
        "content_based_deduplication = true\nhigh_throughput = true",
    ) + (
        "\n[tool.sqsl.tables.idempotency]\n"
        'name = "sample-orders-idempotency"\nkey = "id"\nttl = "expiration"\n'
    )


@pytest.fixture
def fuller_resources(
    make_sample_project: Callable[..., Project], sqsl_emulator: endpoint.Endpoint
) -> Iterator[ProvisionedResources]:
    """GIVEN a FIFO project with high throughput and a second table with a TTL, its
    resources provisioned for this test."""
    project = make_sample_project(fifo=True, edit=with_more_settings)
    resources = ProvisionedResources.provision(sqsl_emulator, project)
    yield resources
    resources.delete()


def test_high_throughput_and_a_tables_ttl_are_provisioned(
    fuller_resources: ProvisionedResources,
) -> None:
    resources = fuller_resources
    idempotency = resources.resources.tables["idempotency"]

    for url in (resources.source_queue_url, resources.dead_letter_queue_url):
        attributes = queue_attributes(resources, url)
        assert attributes["DeduplicationScope"] == "messageGroup"
        assert attributes["FifoThroughputLimit"] == "perMessageGroupId"
    assert f"created table {idempotency}" in resources.provision_log
    assert f"table {idempotency}: TTL enabled on expiration" in resources.provision_log
    ttl = resources.dynamodb.describe_time_to_live(TableName=idempotency)
    assert ttl["TimeToLiveDescription"].get("AttributeName") == "expiration"
    assert ttl["TimeToLiveDescription"].get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
    key = resources.dynamodb.describe_table(TableName=idempotency)["Table"]["KeySchema"]
    assert key == [{"AttributeName": "id", "KeyType": "HASH"}]


def test_an_existing_queue_converges_to_the_settings_and_a_table_gets_its_ttl(
    sqsl_emulator: endpoint.Endpoint, fuller_resources: ProvisionedResources
) -> None:
    # GIVEN a queue someone changed, and a table whose TTL was turned off
    resources = fuller_resources
    resources.sqs.set_queue_attributes(
        QueueUrl=resources.source_queue_url,
        Attributes={"VisibilityTimeout": "5", "MessageRetentionPeriod": "600"},
    )
    idempotency = resources.resources.tables["idempotency"]
    resources.dynamodb.update_time_to_live(
        TableName=idempotency,
        TimeToLiveSpecification={"Enabled": False, "AttributeName": "expiration"},
    )
    lines: list[str] = []

    again = provisioning.provision_resources(
        sqsl_emulator, resources.resources, log=lines.append, project=resources.project
    )

    source = resources.resources.source_queue
    assert f"queue {source}: updated MessageRetentionPeriod, VisibilityTimeout" in lines
    assert f"queue {resources.resources.dead_letter_queue}: unchanged" in lines
    assert f"table {idempotency}: unchanged" in lines
    assert f"table {idempotency}: TTL enabled on expiration" in lines
    assert again["source_queue_url"] == resources.source_queue_url
    attributes = queue_attributes(resources, resources.source_queue_url)
    assert (
        int(attributes["VisibilityTimeout"]) == resources.project.queue.visibility_timeout_seconds
    )
    assert int(attributes["MessageRetentionPeriod"]) == resources.project.queue.retention_seconds


def test_provisioning_never_touches_real_aws(sample_project: Project) -> None:
    with pytest.raises(provisioning.ProvisioningError, match="IaC"):
        provisioning.provision_resources(
            endpoint.Endpoint(url=None, source="aws"), sample_project.resources()
        )


def test_provisioning_refuses_a_table_the_project_does_not_declare(
    sample_project: Project,
) -> None:
    names = Resources(
        source_queue="q", dead_letter_queue="q-dlq", tables={"orders": "o", "audit": "a"}
    )

    with pytest.raises(provisioning.ProvisioningError) as raised:
        # Refused before anything is sent: nothing listens on port 9.
        provisioning.provision_resources(
            endpoint.Endpoint(url="http://127.0.0.1:9", source="AWS_ENDPOINT_URL"), names
        )

    assert str(raised.value) == (
        "pyproject.toml [tool.sqsl] declares no table 'audit': its tables are 'orders'"
    )


def test_the_handler_environment_names_this_tests_resources(
    sqsl_handler_env: dict[str, str],
    sqsl_resources: ProvisionedResources,
    sqsl_emulator: endpoint.Endpoint,
) -> None:
    assert sqsl_handler_env["AWS_ENDPOINT_URL"] == sqsl_emulator.url
    assert sqsl_handler_env["ORDERS_TABLE_NAME"] == sqsl_resources.resources.tables["orders"]
    assert sqsl_handler_env["DEAD_LETTER_QUEUE_URL"] == sqsl_resources.dead_letter_queue_url
    assert sqsl_handler_env["AWS_LAMBDA_FUNCTION_NAME"] == "sample-orders"
    for name, value in sqsl_handler_env.items():
        assert os.environ[name] == value
