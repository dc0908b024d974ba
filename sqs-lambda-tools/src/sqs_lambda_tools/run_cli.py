"""`run` (the local event source mapping) and `invoke` (the handler once on an event file)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, NoReturn
from urllib.parse import urlsplit

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from . import code_import, lambda_logging
from .endpoint import DEV_COMMAND, Endpoint, NoEndpointError, resolve_endpoint
from .esm import (
    BatchResult,
    Handler,
    LocalEventSourceMapping,
    MappingSettings,
    MappingStats,
    QueueSettings,
    Retry,
)
from .lambda_context import make_context
from .project import PYPROJECT, TABLE, Project, QueueUrls, Resources, SettingsError, current

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

console = Console(stderr=True)
# Without a ScalingConfig, Lambda scales the invocations up to the function's (or the
# account's) concurrency; a local run caps them here.
DEFAULT_MAX_CONCURRENCY = 10

AwsOption = Annotated[
    bool, typer.Option("--aws", help="Use real AWS (the credential chain) when no emulator is set.")
]
LogLevelOption = Annotated[
    str,
    typer.Option(
        "--log-level",
        help="The handler's log level (WARNING keeps the run readable; INFO logs every batch).",
    ),
]
SuffixOption = Annotated[
    str,
    typer.Option(
        "--suffix", hidden=True, help="Use the resources named <name><suffix> (tests do)."
    ),
]


@dataclass(frozen=True)
class Target:
    """The queues and handler environment a command works with."""

    endpoint: Endpoint
    resources: Resources
    sqs: SQSClient
    source_queue_url: str
    source_queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str

    def environment(self, project: Project) -> dict[str, str]:
        """The function's environment for these queues and tables, pointed at the endpoint."""
        urls = QueueUrls(
            source_url=self.source_queue_url,
            source_arn=self.source_queue_arn,
            dead_letter_url=self.dead_letter_queue_url,
            dead_letter_arn=self.dead_letter_queue_arn,
        )
        return {
            **project.environment(self.resources, urls),
            **self.endpoint.environment(),
            # As Lambda sets it, beside the SDK's default region.
            "AWS_REGION": self.endpoint.region_name,
        }


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("invoke")(invoke)


def run(
    until_empty: Annotated[
        bool,
        typer.Option(
            "--until-empty",
            help="Stop once the queue is empty: nothing visible, in flight or delayed, no batch "
            "being gathered or invoked. Failed messages are waited for until they are "
            "processed or the redrive policy moves them to the DLQ.",
        ),
    ] = False,
    max_messages: Annotated[
        int | None,
        typer.Option("--max-messages", min=1, help="Stop after receiving this many messages."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=10_000,
            help="Records per invocation [default: [tool.sqsl.mapping] batch_size]",
            show_default=False,
        ),
    ] = None,
    window: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=300,
            help="Batching window, in seconds [default: [tool.sqsl.mapping] batching_window]",
            show_default=False,
        ),
    ] = None,
    max_concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=1000,
            help="Most invocations at once [default: [tool.sqsl.mapping] "
            f"maximum_concurrency, else {DEFAULT_MAX_CONCURRENCY}]",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            max=900,
            help="Function timeout, in seconds [default: [tool.sqsl.function] timeout]",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=20,
            help="Long-poll wait of an idle receive (default 20 s; 1 s with --until-empty).",
        ),
    ] = None,
    retry_after: Annotated[
        int | None,
        typer.Option(
            "--retry-after",
            min=0,
            max=43_200,
            help="Local pace, emulators only: a failed message is visible again SECONDS after "
            "its failure (ChangeMessageVisibility) instead of at the end of the queue's "
            "visibility timeout, so retries and the redrive to the DLQ take seconds. "
            "Refused against real AWS.",
        ),
    ] = None,
    log_level: LogLevelOption = "WARNING",
    aws: AwsOption = False,
    suffix: SuffixOption = "",
) -> None:
    """Poll the source queue and invoke the handler like Lambda's event source mapping.

    Defaults are the project's mapping and function settings, as deployed. Ctrl-C (or
    SIGTERM) stops polling: batches under way finish, and what the long polls still open
    receive is released, so nothing is lost or left hidden.
    """
    project = current()
    mapping_settings = project.mapping
    fifo = project.queue.fifo
    endpoint = _endpoint(aws=aws)
    if retry_after is not None:
        _refuse_on_aws(endpoint)  # before any call to AWS
    target = _target(endpoint, project, suffix=suffix)
    settings = MappingSettings(
        batch_size=batch_size if batch_size is not None else mapping_settings.batch_size,
        batching_window_seconds=(
            0
            if fifo
            else (window if window is not None else mapping_settings.batching_window_seconds)
        ),
        max_concurrency=(
            max_concurrency or mapping_settings.maximum_concurrency or DEFAULT_MAX_CONCURRENCY
        ),
        function_timeout_seconds=(
            timeout if timeout is not None else project.function.timeout_seconds
        ),
        fifo=fifo,
        wait_time_seconds=wait if wait is not None else (1 if until_empty else 20),
        retry_after_seconds=retry_after,
    )
    with _function_environment(target, project, log_level):
        handler = load_handler(project)
        _run(project, target, handler, settings, until_empty, max_messages, retry_after)


def _run(
    project: Project,
    target: Target,
    handler: Handler,
    settings: MappingSettings,
    until_empty: bool,
    max_messages: int | None,
    retry_after: int | None,
) -> None:
    """Poll with ``settings`` until the run ends, reporting each batch's failures, then sum up."""
    console.print(
        f"[bold]Polling[/] {target.resources.source_queue} at {_where(target.endpoint)}: "
        f"batch {settings.batch_size}, window {settings.batching_window_seconds:g} s, "
        f"concurrency {settings.max_concurrency}, timeout {settings.function_timeout_seconds:g} s"
        + ("" if until_empty or max_messages else "  (Ctrl-C to stop)")
    )
    status = Text()
    with Live(status, console=console, refresh_per_second=8, transient=True) as live:
        lock = threading.Lock()

        def on_batch(result: BatchResult, stats: MappingStats) -> None:
            with lock:
                if result.whole_batch_failed:
                    live.console.print(
                        f"[red]batch of {len(result.message_ids)} failed whole:[/] {result.reason}"
                    )
                for line in _retry_lines(result.retries, mapping.queue, fifo=settings.fifo):
                    live.console.print(f"  [yellow]retry[/] {line}")
                status.plain = _progress_line(stats)
                live.refresh()

        def on_notice(text: str) -> None:
            with lock:
                live.console.print(text)

        def on_tick(stats: MappingStats) -> None:
            with lock:
                status.plain = _progress_line(stats)

        mapping = LocalEventSourceMapping(
            target.sqs,
            queue_url=target.source_queue_url,
            queue_arn=target.source_queue_arn,
            region=project.region,
            handler=handler,
            settings=settings,
            on_batch=on_batch,
            on_notice=on_notice,
            on_tick=on_tick,
            context_factory=lambda: make_context(
                project, timeout_seconds=settings.function_timeout_seconds
            ),
        )
        try:
            queue = mapping.queue
        except (ClientError, BotoCoreError) as error:
            _fail(f"cannot read the settings of {target.resources.source_queue}: {error}")
        live.console.print(_retry_rule(queue, retry_after, project))
        with _sigterm_as_interrupt():
            stats = mapping.run(until_empty=until_empty, max_messages=max_messages)
    _print_summary(target, stats, queue, fifo=settings.fifo)


def invoke(
    event_file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="A Lambda SQS event (see events/)."),
    ],
    log_level: LogLevelOption = "INFO",
    aws: AwsOption = False,
    suffix: SuffixOption = "",
) -> None:
    """Run the handler once on EVENT_FILE, against the emulator's tables and DLQ.

    The records' receipt handles are not real: nothing is deleted from any queue.
    `sqsl events` writes sample events to events/.
    """
    project = current()
    try:
        event = json.loads(event_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        _fail(f"{event_file} is not JSON: {error}")
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        _fail(f"{event_file} is not an SQS event: expected an object with a Records list")
    target = _target(_endpoint(aws=aws), project, suffix=suffix)
    with _function_environment(target, project, log_level):
        handler = load_handler(project)
        response = handler(event, make_context(project))
    typer.echo(json.dumps(response, indent=2, default=str))


def _endpoint(*, aws: bool) -> Endpoint:
    try:
        return resolve_endpoint(aws=aws)
    except NoEndpointError as error:
        _fail(str(error))


def _target(endpoint: Endpoint, project: Project, *, suffix: str) -> Target:
    resources = project.resources().with_suffix(suffix)
    sqs = endpoint.sqs()
    try:
        source_url = sqs.get_queue_url(QueueName=resources.source_queue)["QueueUrl"]
        dlq_url = sqs.get_queue_url(QueueName=resources.dead_letter_queue)["QueueUrl"]
        source_arn, dlq_arn = (
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            for url in (source_url, dlq_url)
        )
    except (ClientError, BotoCoreError) as error:
        _fail(
            f"cannot reach queue {resources.source_queue} at {_where(endpoint)}: {error}\n"
            f"Is the emulator up and provisioned? Run `{DEV_COMMAND} up`."
        )
    return Target(endpoint, resources, sqs, source_url, source_arn, dlq_url, dlq_arn)


@contextmanager
def _function_environment(target: Target, project: Project, log_level: str) -> Iterator[None]:
    """``os.environ`` as the function's, for ``target``, while the handler is imported and
    runs; restored afterwards."""
    saved = dict(os.environ)
    # A per-service endpoint would win over AWS_ENDPOINT_URL in boto3.
    if target.endpoint.is_emulator:
        for name in [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL_")]:
            del os.environ[name]
    os.environ.update(target.environment(project))
    os.environ["LOG_LEVEL"] = os.environ["POWERTOOLS_LOG_LEVEL"] = log_level.upper()
    lambda_logging.install()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load_handler(project: Project | None = None) -> Handler:
    """The project's handler (``[tool.sqsl.function] handler``), imported afresh.

    Its top-level package is taken out of ``sys.modules`` first, so its module state
    (settings read once, clients, caches) starts from the environment set now, as in a
    new execution environment. It imports from the project's code folder, as Lambda
    imports it from the artifact. A handler that does not import, or names no function,
    is refused with a :class:`.project.SettingsError` naming the setting.
    """
    project = project or current()
    function = project.function
    refusal = f"{_handler_setting(project)} = {function.handler!r}"
    not_imported = f"{refusal}: {function.handler_module} does not import"
    try:
        module = code_import.import_module(project, function.handler_module, fresh=True)
    except ModuleNotFoundError as error:
        parts = function.handler_module.split(".")
        if error.name in {".".join(parts[:end]) for end in range(1, len(parts) + 1)}:
            raise SettingsError(
                f"{not_imported}: no module {error.name!r} in {project.code_dir} or on the "
                "Python path"
            ) from error
        # The handler's own import of something else: a dependency not installed here.
        raise SettingsError(
            f"{not_imported}: {type(error).__name__}: {error} (is it installed in this "
            "environment?)"
        ) from error
    except Exception as error:
        raise SettingsError(f"{not_imported}: {type(error).__name__}: {error}") from error
    handler = getattr(module, function.handler_function, None)
    if not callable(handler):
        raise SettingsError(
            f"{refusal}: {function.handler_module} has no function {function.handler_function!r}"
        )
    loaded: Handler = handler
    return loaded


def _handler_setting(project: Project) -> str:
    """Where the handler was declared, for messages."""
    if project.source.startswith(PYPROJECT):
        return f"{project.root / PYPROJECT}: [{TABLE}.function] handler"
    return f"{project.root} ({project.source}): the function's handler"


# Hosts of AWS's own endpoints: a URL there is real AWS, not an emulator.
AWS_HOST_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")
# Failed messages are described one by one up to this many per batch, then summed up.
RETRY_LINES_PER_BATCH = 3


def _is_emulator(endpoint: Endpoint) -> bool:
    """An emulator's endpoint: not real AWS (``--aws``, or a URL on AWS's own hosts)."""
    if endpoint.url is None:
        return False
    host = (urlsplit(endpoint.url).hostname or "").lower().rstrip(".")
    return not any(host == suffix[1:] or host.endswith(suffix) for suffix in AWS_HOST_SUFFIXES)


def _refuse_on_aws(endpoint: Endpoint) -> None:
    """``--retry-after`` changes a queue's messages: an emulator's only, never AWS's."""
    if not _is_emulator(endpoint):
        _fail(
            "--retry-after is a local pace, for an emulator's queue only, and this run would "
            f"reach real AWS ({endpoint.url or '--aws: the credential chain'}), where a failed "
            "message comes back when the queue's visibility timeout ends, as deployed. "
            "Run without --retry-after."
        )


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``docker compose stop``, ``kill``) stops the run as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _retry_rule(queue: QueueSettings, retry_after: int | None, project: Project) -> str:
    """How a failed message comes back on this queue, and when it goes to the DLQ."""
    if queue.max_receive_count is None:
        dlq = "the queue has no redrive policy: a failed message comes back until it is processed"
    else:
        dlq = (
            f"after {queue.max_receive_count} failed receives the redrive policy moves it "
            "to the DLQ"
        )
    deployed_visibility = project.queue.visibility_timeout_seconds
    if retry_after is None:
        visibility = queue.visibility_timeout_seconds
        deployed = (
            "" if visibility == deployed_visibility else f" (deployed: {deployed_visibility} s)"
        )
        return (
            f"A failed message comes back when the visibility timeout ends, {visibility} s "
            f"after its receive{deployed}; {dlq}."
        )
    return (
        f"[bold]local pace:[/] a failed message comes back {retry_after} s after its failure "
        f"on the emulator's queue (deployed: when the visibility timeout ends, "
        f"{deployed_visibility} s after its receive); {dlq}."
    )


def _to_go(retry: Retry, queue: QueueSettings) -> str:
    """What happens to ``retry`` if it keeps failing."""
    limit = queue.max_receive_count
    if limit is None:
        return "No redrive policy: it comes back until it is processed."
    left = limit - retry.receive_count
    if left <= 0:
        return f"It has had its {limit} receives: the redrive policy moves it to the DLQ."
    return (
        f"{left} more failed receive{'s' if left > 1 else ''} and the redrive policy moves "
        "it to the DLQ."
    )


def _when(at: float, *, last: bool = False) -> str:
    """When a failed message is due: back in the queue, or, after its ``last`` receive,
    out of it (SQS applies the redrive policy when it would be received again)."""
    clock = time.strftime("%H:%M:%S", time.localtime(at))
    due = "due to leave for the DLQ" if last else "back"
    return f"{due} at {clock} (in {max(0, round(at - time.time()))} s)"


def _is_last(retry: Retry, queue: QueueSettings) -> bool:
    limit = queue.max_receive_count
    return limit is not None and retry.receive_count >= limit


def _retry_lines(retries: Sequence[Retry], queue: QueueSettings, *, fifo: bool) -> list[str]:
    """What a batch's failed messages wait for, and why: one line per message (FIFO: per
    message group), in batch order."""
    limit = queue.max_receive_count
    of = f" of {limit}" if limit is not None else ""
    if not fifo:
        if len(retries) > RETRY_LINES_PER_BATCH:
            counts = sorted({retry.receive_count for retry in retries})
            span = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
            return [
                f"{len(retries)} failed messages (receive {span}{of}), "
                f"{_when(max(retry.returns_at for retry in retries))}."
            ]
        return [
            f"message {retry.message_id[:8]} failed on receive {retry.receive_count}{of}, "
            f"{_when(retry.returns_at, last=_is_last(retry, queue))}. {_to_go(retry, queue)}"
            for retry in retries
        ]
    groups: dict[str | None, list[Retry]] = {}
    for retry in retries:
        groups.setdefault(retry.group, []).append(retry)
    lines = []
    for group, in_group in groups.items():
        first, later = in_group[0], in_group[1:]
        line = (
            f"group {group} waits: message {first.message_id[:8]} failed on receive "
            f"{first.receive_count}{of}, {_when(first.returns_at, last=_is_last(first, queue))}; "
            "SQS holds the rest of "
            f"the group until then. {_to_go(first, queue)}"
        )
        if later:
            alike = sum(1 for retry in later if retry.receive_count >= first.receive_count)
            line += (
                f" The {len(later)} later message{'s' if len(later) > 1 else ''} of the group "
                "in its batch were reported with it, unprocessed, to keep the group's order"
            )
            line += (
                f"; {alike} of them, received as often, go to the DLQ with it if it gets there."
                if alike and limit is not None
                else "."
            )
        lines.append(line)
    return lines


def _progress_line(stats: MappingStats) -> str:
    line = (
        f"received {stats.received} · invocations {stats.invocations} · "
        f"deleted {stats.deleted} · failed {stats.failed} "
        f"(whole batches {stats.whole_batch_failures}) · in flight {stats.in_flight}"
    )
    waiting = list(stats.waiting.values())
    if waiting:
        soonest = min(retry.returns_at for retry in waiting)
        line += (
            f" · {len(waiting)} failed waiting, next back in "
            f"{max(0, round(soonest - time.time()))} s"
        )
    return line


def _print_summary(
    target: Target, stats: MappingStats, queue: QueueSettings, *, fifo: bool
) -> None:
    depths = _queue_depths(target)
    table = Table(title="Local event source mapping", show_header=False)
    table.add_row("messages received", str(stats.received))
    table.add_row("invocations", str(stats.invocations))
    table.add_row("deleted (processed)", str(stats.deleted))
    table.add_row("reported failed (left for retry)", str(stats.failed))
    table.add_row("whole-batch failures", str(stats.whole_batch_failures))
    if fifo:
        table.add_row("released (group in flight)", str(stats.released))
    if stats.released_on_stop:
        table.add_row("released on stop (received by open polls)", str(stats.released_on_stop))
    if stats.waiting:
        table.add_row("failed, waiting to come back", str(len(stats.waiting)))
    if stats.dead_lettered:
        table.add_row("moved to the DLQ (redrive policy)", str(len(stats.dead_lettered)))
    table.add_row("source queue: visible / in flight", depths.get("source", "?"))
    table.add_row("DLQ messages", depths.get("dlq", "?"))
    console.print(table)
    if stats.dead_lettered:
        groups = sorted({retry.group for retry in stats.dead_lettered if retry.group})
        where = f" (message group {', '.join(groups)})" if groups else ""
        many = len(stats.dead_lettered) > 1
        console.print(
            f"The redrive policy moved {len(stats.dead_lettered)} failed "
            f"message{'s' if many else ''}{where} to the DLQ after {queue.max_receive_count} "
            f"receives: `dlq` lists {'them' if many else 'it'}, `redrive` sends "
            f"{'them' if many else 'it'} back."
        )
    if stats.waiting:
        waiting = list(stats.waiting.values())
        latest = max(retry.returns_at for retry in waiting)
        console.print(
            f"{len(waiting)} failed message{'s are' if len(waiting) > 1 else ' is'} still in "
            f"the queue, {_when(latest)} at the latest; "
            + (
                f"after {queue.max_receive_count} receives the queue's redrive policy moves "
                "a message to the DLQ."
                if queue.max_receive_count is not None
                else "the queue has no redrive policy."
            )
        )


def _queue_depths(target: Target) -> dict[str, str]:
    depths: dict[str, str] = {}
    for name, url in (("source", target.source_queue_url), ("dlq", target.dead_letter_queue_url)):
        try:
            attributes = target.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
        except (ClientError, BotoCoreError):
            continue
        visible = attributes.get("ApproximateNumberOfMessages", "?")
        hidden = attributes.get("ApproximateNumberOfMessagesNotVisible", "?")
        depths[name] = f"{visible} / {hidden}" if name == "source" else str(visible)
    return depths


def _where(endpoint: Endpoint) -> str:
    return endpoint.url or "AWS"


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/] {message}")
    raise typer.Exit(1)
