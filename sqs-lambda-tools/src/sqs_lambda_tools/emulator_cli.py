"""`up`, `down`, `status`: an emulator with the project's queues and tables.

`up` uses, in order: ``AWS_ENDPOINT_URL`` when it is set (any emulator, used as is);
docker compose when a Docker engine answers and the project has a ``docker-compose.yml``;
else the embedded MiniStack, which needs nothing but Python. Whichever it is, the
resources come from the project's settings (:mod:`.provisioning`), so the other commands
(`send`, `run`, ...) see the same names everywhere. Real AWS is never provisioned here:
the IaC owns it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import config, emulator, provisioning
from .endpoint import DEV_COMMAND, Endpoint
from .project import current

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

PANEL = "Emulator"
UP = f"{DEV_COMMAND} up"
DOWN = f"{DEV_COMMAND} down"
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"
_MISSING_CODES = frozenset(
    {
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "ResourceNotFoundException",
    }
)


def register(app: typer.Typer) -> None:
    group = typer.Typer()
    group.command(rich_help_panel=PANEL)(up)
    group.command(rich_help_panel=PANEL)(down)
    group.command(rich_help_panel=PANEL)(status)
    group.command("endpoint", rich_help_panel=PANEL)(print_endpoint)
    app.add_typer(group)


def up(
    port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            # \\[: a bracket rich prints, not markup.
            help=f"Port of the embedded emulator \\[default: {config.DEFAULT_EMULATOR_PORT} "
            "when free, else the next free one, and `up` says what holds it]",
            show_default=False,
        ),
    ] = None,
    embedded: Annotated[
        bool, typer.Option("--embedded", help="Start the embedded MiniStack even if Docker runs")
    ] = False,
    docker: Annotated[
        bool, typer.Option("--docker", help="Use docker compose; fail if no Docker engine answers")
    ] = False,
    aws: Annotated[
        bool, typer.Option("--aws", help="Real AWS: nothing to start, the IaC creates it all")
    ] = False,
    bare: Annotated[
        bool,
        typer.Option(
            "--bare",
            help="Create no queues or tables: for IaC that creates them itself, such as "
            "`tflocal apply` (embedded MiniStack only)",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the emulator to answer")
    ] = emulator.STARTUP_TIMEOUT_SECONDS,
) -> None:
    """Start an emulator (docker compose, else MiniStack) with the project's queues and tables.

    Run it again at any time: it keeps a running emulator and creates only what is missing.
    """
    if embedded + docker + aws > 1:
        _fail("choose one of --embedded, --docker and --aws")
    if aws:
        console.print(
            "Nothing to start for real AWS: the IaC creates the queues and tables there "
            "(deploy the stack), and the other commands reach them with --aws."
        )
        return
    configured = os.environ.get(ENDPOINT_VARIABLE, "").strip()
    if configured and not (embedded or docker or bare):
        if port is not None:
            _fail(
                f"--port is for an emulator that `up` starts, and {ENDPOINT_VARIABLE} "
                f"is set ({configured}): unset it, or drop --port"
            )
        console.print(f"{ENDPOINT_VARIABLE} is set: using {configured} as it is.")
        _provision(Endpoint(url=configured, source=ENDPOINT_VARIABLE))
        return

    if bare and docker:
        _fail(
            "--bare is for the embedded emulator: with docker, `up` always creates the "
            "queues and tables"
        )
    layout = emulator.Layout.default()
    record = _running(layout, port=port, embedded=embedded or bare, docker=docker)
    if record is None:
        mode = "embedded" if bare else _choose_mode(embedded=embedded, docker=docker)
        record = _start(mode, layout, port, timeout)
    if bare:
        console.print("No queues or tables created (--bare).")
    else:
        _provision(Endpoint(url=record.endpoint, source=record.mode))
    console.print(
        f"Ready: {_describe(record)}.\n"
        f"The {DEV_COMMAND} commands find it through "
        f"{emulator.display_path(layout.state_file)}; "
        f"for other tools, export {ENDPOINT_VARIABLE}={record.endpoint}. "
        f"`{DEV_COMMAND} down` stops it."
    )
    if configured and configured.rstrip("/") != record.endpoint:
        console.print(
            f"[yellow]note:[/] {ENDPOINT_VARIABLE} is set ({escape(configured)}) and the other "
            "commands use it before this emulator: unset it to use this one."
        )


def down(
    timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to wait after SIGTERM before SIGKILL")
    ] = emulator.STOP_TIMEOUT_SECONDS,
) -> None:
    """Stop the emulator that `up` started (its queues and tables go with it)."""
    layout = emulator.Layout.default()
    record = emulator.Record.read(layout.state_file)
    if record is None:
        if layout.state_file.exists():
            emulator.forget(layout.state_file)
            console.print(f"Removed an unreadable {emulator.display_path(layout.state_file)}.")
        console.print("No emulator recorded: nothing to stop.")
        configured = os.environ.get(ENDPOINT_VARIABLE, "").strip()
        if configured:
            console.print(
                f"{ENDPOINT_VARIABLE} ({configured}) is yours to stop: "
                "`down` stops only what `up` started."
            )
        return
    try:
        if record.mode == "docker":
            emulator.compose_down()
            console.print("Stopped the docker compose stack.")
        else:
            _stop_embedded(record, timeout)
    except emulator.EmulatorError as error:
        _fail(str(error))
    emulator.forget(layout.state_file)


def status(
    aws: Annotated[
        bool, typer.Option("--aws", help="Without an emulator, show the queues in real AWS")
    ] = False,
) -> None:
    """Show the emulator (mode, endpoint, process, health) and the depth of the queues."""
    layout = emulator.Layout.default()
    record = emulator.Record.read(layout.state_file)
    configured = os.environ.get(ENDPOINT_VARIABLE, "").strip()

    table = Table(title="Emulator", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    reachable = True
    target: Endpoint | None = None
    if configured:
        target = Endpoint(url=configured, source=ENDPOINT_VARIABLE)
        table.add_row("mode", f"{ENDPOINT_VARIABLE} (used as it is)")
        table.add_row("endpoint", configured)
        if record is not None:
            table.add_row("recorded", f"{_describe(record)}, not used while the variable is set")
    elif record is not None:
        # This service's own emulator only: never whatever answers on its port.
        target = Endpoint(url=record.endpoint, source=record.mode)
        reachable = _add_record_rows(table, record)
    elif aws:
        target = Endpoint(url=None, source="aws")
        table.add_row("mode", "real AWS (--aws)")
    else:
        table.add_row("mode", f"none: `{UP}` starts one")
    console.print(table)

    if target is None:
        return
    if not reachable:
        console.print(f"The emulator does not answer: `{UP}` starts it again.")
        return
    try:
        console.print(_resources_table(target))
    except BotoCoreError as error:
        _fail(f"cannot reach {_where(target)}: {error}")


def print_endpoint() -> None:
    """Print the endpoint of the emulator that `up` started, for other tools (tflocal).

    AWS_ENDPOINT_URL when it is set; else the recorded emulator, only while it runs and
    listens on its port itself; else it fails and says to run `sqsl up`.
    """
    configured = os.environ.get(ENDPOINT_VARIABLE, "").strip()
    if configured:
        typer.echo(configured)
        return
    layout = emulator.Layout.default()
    record = emulator.Record.read(layout.state_file)
    if record is None:
        _fail(
            f"no emulator is running for this service: `{UP}` starts one "
            f"(or set {ENDPOINT_VARIABLE} to an emulator of yours)"
        )
    alive, healthy = emulator.check(record)
    if not healthy:
        _fail(
            f"{_describe(record)}, recorded in {emulator.display_path(layout.state_file)}, "
            f"{_why_not_answering(record, alive)}: `{UP}` starts it again"
        )
    typer.echo(record.endpoint)


def _why_not_answering(record: emulator.Record, alive: bool) -> str:
    if record.mode == "docker":
        return "does not answer"
    if not alive:
        return "is not running"
    port = record.port
    if port is not None and emulator.standing(record) == "displaced":
        holder = emulator.port_holder(port)
        if holder is not None:
            return f"does not hold its port: {holder.describe()} does"
    return "does not answer"


def _running(
    layout: emulator.Layout, *, port: int | None, embedded: bool, docker: bool
) -> emulator.Record | None:
    """The recorded emulator when it answers (and fits the options); else forget it."""
    record = emulator.Record.read(layout.state_file)
    if record is None:
        return None
    alive, healthy = emulator.check(record)
    if record.pid is not None and record.mode != "docker" and alive and not healthy:
        healthy = _answers_soon(record, record.pid)
    if not healthy:
        console.print(f"The recorded {record.mode} emulator does not answer: starting a new one.")
        emulator.forget(layout.state_file)
        return None
    wrong_mode = (docker and record.mode != "docker") or (embedded and record.mode != "embedded")
    if wrong_mode or (port is not None and port != record.port):
        _fail(f"{_describe(record)} is already running: stop it with `{DOWN}` first")
    console.print(f"Already running: {_describe(record)}.")
    return record


def _answers_soon(record: emulator.Record, pid: int) -> bool:
    """A MiniStack that is still starting (another `up`) gets a few seconds; a hung one
    is stopped, to be replaced."""
    port = record.port
    deadline = time.monotonic() + 5.0
    while emulator.process_alive(pid):
        owned = port is None or emulator.owns_port(pid, port) is not False
        if owned and emulator.is_healthy(record.endpoint):
            return True
        if time.monotonic() >= deadline:
            console.print(f"MiniStack (pid {pid}) does not answer on its port: stopping it.")
            emulator.stop_embedded(pid)
            return False
        time.sleep(0.1)
    return False


def _choose_mode(*, embedded: bool, docker: bool) -> emulator.Mode:
    compose_file = emulator.compose_file()
    if docker:
        if not compose_file.is_file():
            _fail(
                f"--docker: no {compose_file.name} in {compose_file.parent}: docker mode runs "
                "the project's compose file. Run `up` without --docker to use the embedded "
                "emulator."
            )
        if not emulator.docker_engine_available():
            _fail(
                "--docker: no Docker engine answers (`docker info` says why). Start Docker, "
                "or run `up` without --docker to use the embedded emulator."
            )
        return "docker"
    if embedded:
        return "embedded"
    embedded_one = f"the embedded MiniStack {config.MINISTACK_VERSION}"
    if not compose_file.is_file():
        console.print(f"No {compose_file.name} in the project: starting {embedded_one}.")
        return "embedded"
    if emulator.docker_engine_available():
        console.print("A Docker engine answers: starting the docker compose stack.")
        return "docker"
    console.print(f"No Docker engine answers: starting {embedded_one}.")
    return "embedded"


def _start(
    mode: emulator.Mode, layout: emulator.Layout, port: int | None, timeout: float
) -> emulator.Record:
    try:
        if mode == "docker":
            if port is not None:
                _fail(
                    "--port sets the embedded emulator's port (the compose file sets "
                    "docker's): add --embedded, or drop --port"
                )
            conflict = emulator.compose_port_conflict()
            if conflict is not None:
                _fail(conflict)
            record = emulator.compose_up(timeout=timeout)
            record.write(layout.state_file)
            return record
        with console.status(f"Starting MiniStack {config.MINISTACK_VERSION}..."):
            return emulator.start_embedded(layout, port=port, timeout=timeout, log=_log)
    except emulator.EmulatorError as error:
        _fail(str(error))


def _stop_embedded(record: emulator.Record, timeout: float) -> None:
    pid = record.pid
    if pid is None or not emulator.process_alive(pid):
        console.print("MiniStack was not running (a stale record): forgot it.")
        return
    if not emulator.is_ministack(pid):
        console.print(f"Process {pid} is no longer MiniStack (a stale record): left it alone.")
        return
    with console.status(f"Stopping MiniStack (pid {pid})..."):
        result = emulator.stop_embedded(pid, timeout=timeout)
    if result == "killed":
        console.print(f"MiniStack (pid {pid}) ignored SIGTERM for {timeout:g} s: killed it.")
    else:
        console.print(f"Stopped MiniStack (pid {pid}).")


def _provision(endpoint: Endpoint) -> provisioning.Provisioned:
    console.print(f"Queues and tables at {endpoint.url}:")
    try:
        return provisioning.provision_resources(endpoint, current().resources(), log=_log)
    except (BotoCoreError, ClientError, provisioning.ProvisioningError) as error:
        _fail(f"creating the queues and tables at {endpoint.url} failed: {error}")


def _resources_table(target: Endpoint) -> Table:
    resources = current().resources()
    table = Table(title=f"Resources at {_where(target)}", title_justify="left")
    table.add_column("kind")
    table.add_column("name", overflow="fold")
    for column in ("messages", "in flight", "items"):
        table.add_column(column, justify="right")
    sqs = target.sqs()
    queues = (("queue", resources.source_queue), ("DLQ", resources.dead_letter_queue))
    for label, name in queues:
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
        except ClientError as error:
            table.add_row(label, name, _absent(error), "", "")
            continue
        visible = attributes.get("ApproximateNumberOfMessages", "?")
        in_flight = attributes.get("ApproximateNumberOfMessagesNotVisible", "?")
        table.add_row(label, name, visible, in_flight, "")
    dynamodb = target.dynamodb()
    for name in resources.tables.values():
        try:
            items = _item_count(dynamodb, name, exact=target.is_emulator)
        except ClientError as error:
            items = _absent(error)
        table.add_row("table", name, "", "", items)
    return table


def _item_count(dynamodb: DynamoDBClient, name: str, *, exact: bool) -> str:
    """A counting scan on an emulator; in AWS, the table's estimate (a scan costs money,
    and DescribeTable's ItemCount is refreshed about every six hours)."""
    if not exact:
        return f"~{dynamodb.describe_table(TableName=name)['Table'].get('ItemCount', 0)}"
    pages = dynamodb.get_paginator("scan").paginate(TableName=name, Select="COUNT")
    return str(sum(page["Count"] for page in pages))


def _absent(error: ClientError) -> str:
    code = error.response.get("Error", {}).get("Code", "")
    return f"missing: `{UP}`" if code in _MISSING_CODES else f"error: {code}"


def _add_record_rows(table: Table, record: emulator.Record) -> bool:
    """The recorded emulator's rows; whether it answers."""
    table.add_row("mode", record.mode)
    table.add_row("endpoint", record.endpoint)
    alive, healthy = emulator.check(record)
    if record.mode != "docker":
        pid = record.pid
        table.add_row("pid", str(pid) if pid is not None else "-")
        table.add_row("process", "alive" if alive else f"not running (`{DOWN}` forgets it)")
        if alive and not healthy:
            table.add_row("port", _why_not_answering(record, alive))
    table.add_row("health", "healthy" if healthy else "not answering")
    if record.log:
        table.add_row("log", emulator.display_path(Path(record.log)))
    return healthy


def _describe(record: emulator.Record) -> str:
    if record.mode == "docker":
        return f"the docker compose stack at {record.endpoint}"
    log = f", log {emulator.display_path(Path(record.log))}" if record.log else ""
    return f"the embedded MiniStack at {record.endpoint} (pid {record.pid}{log})"


def _where(target: Endpoint) -> str:
    return target.url if target.url is not None else f"real AWS ({target.region_name})"


def _log(line: str) -> None:
    console.print(f"  {escape(line)}")


def _fail(message: str) -> NoReturn:
    errors.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(1)
