"""`run` (the local event source mapping) and `invoke` (the handler once on an event file).

Both run the handler in an execution environment, a worker process of its own
(:mod:`.environments`), as Lambda does; ``--debug`` runs it in this process instead, so that
a debugger's breakpoints work (:mod:`.in_process`).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from urllib.parse import urlsplit

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.text import Text

from . import code_import, lambda_logging, worker
from .endpoint import DEV_COMMAND, Endpoint, NoEndpointError, resolve_endpoint
from .environments import (
    INIT_LIMIT_SECONDS,
    ExecutionEnvironments,
    FunctionDefinition,
    lambda_variables,
)
from .esm import (
    BatchResult,
    Handler,
    LocalEventSourceMapping,
    MappingSettings,
    QueueSettings,
    refusals,
)
from .in_process import InProcessEnvironment
from .invocations import (
    HANDLER_NOT_FOUND,
    IMPORT_MODULE_ERROR,
    Environments,
    ErrorInfo,
    InitError,
    Invocation,
)
from .project import PYPROJECT, TABLE, Project, QueueUrls, Resources, SettingsError, current
from .run_report import RunOutput, console, invocation_lines, print_summary, retry_rule

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

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


@dataclass(frozen=True)
class RunOptions:
    """How ``run`` goes, beside the mapping's settings."""

    until_empty: bool = False
    max_messages: int | None = None
    retry_after: int | None = None
    debug: bool = False
    quiet: bool = False


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("invoke")(invoke)


DebugOption = Annotated[
    bool,
    typer.Option(
        "--debug",
        help="Run the handler in this process, one invocation at a time, so that a "
        "debugger's breakpoints work in it. The function timeout is reported, not "
        "enforced (a breakpoint would count as a timeout), and neither is the memory.",
    ),
]


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
            help="Records per invocation, 1-10000 (FIFO: 1-10) [default: [tool.sqsl.mapping] "
            "batch_size]",
            show_default=False,
        ),
    ] = None,
    window: Annotated[
        float | None,
        typer.Option(
            help="Batching window, 0-300 seconds (FIFO: none; above 10 records: at least 1) "
            "[default: [tool.sqsl.mapping] batching_window]",
            show_default=False,
        ),
    ] = None,
    max_concurrency: Annotated[
        int | None,
        typer.Option(
            help="Most invocations at once, 2-1000, each in an execution environment of its "
            "own [default: [tool.sqsl.mapping] maximum_concurrency, else "
            f"{DEFAULT_MAX_CONCURRENCY}]",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            max=900,
            help="Function timeout, in seconds, at most the queue's visibility timeout "
            "[default: [tool.sqsl.function] timeout]",
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
    debug: DebugOption = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="Print the summary only: no REPORT line, failure or retry line per "
            "invocation, no handler output.",
        ),
    ] = False,
    log_level: LogLevelOption = "WARNING",
    aws: AwsOption = False,
    suffix: SuffixOption = "",
) -> None:
    """Poll the source queue and invoke the handler like Lambda's event source mapping.

    Defaults are the project's mapping and function settings, as deployed, checked as
    CreateEventSourceMapping checks them before anything is polled. Each invocation runs
    in an execution environment, a worker process that imports the handler once and is
    reused while warm, killed when it runs past the function timeout or memory; a REPORT
    line tells each one. Ctrl-C (or SIGTERM) stops polling: batches under way finish,
    and what the long polls still open receive is released, so nothing is lost or left
    hidden.
    """
    project = current()
    endpoint = _endpoint(aws=aws)
    if retry_after is not None:
        _refuse_on_aws(endpoint)  # before any call to AWS
    if debug and max_concurrency is not None:
        raise SettingsError(
            f"--max-concurrency {max_concurrency} with --debug: --debug runs one invocation "
            "at a time, in this process (it is not a mapping setting). Leave out one of them."
        )
    target = _target(endpoint, project, suffix=suffix)
    settings = MappingSettings(
        batch_size=batch_size if batch_size is not None else project.mapping.batch_size,
        batching_window_seconds=(
            window if window is not None else project.mapping.batching_window_seconds
        ),
        max_concurrency=1
        if debug
        else (max_concurrency or project.mapping.maximum_concurrency or DEFAULT_MAX_CONCURRENCY),
        function_timeout_seconds=(
            timeout if timeout is not None else project.function.timeout_seconds
        ),
        fifo=project.queue.fifo,
        wait_time_seconds=wait if wait is not None else (1 if until_empty else 20),
        retry_after_seconds=retry_after,
    )
    try:
        queue = QueueSettings.read(target.sqs, target.source_queue_url)
    except (ClientError, BotoCoreError) as error:
        _fail(f"cannot read the settings of {target.resources.source_queue}: {error}")
    given = {
        "batch_size": batch_size,
        "batching_window_seconds": window,
        "max_concurrency": max_concurrency,
        "function_timeout_seconds": timeout,
    }
    _refuse_invalid(settings, queue, project, target, given, debug=debug)
    options = RunOptions(until_empty, max_messages, retry_after, debug, quiet)
    _run(
        project, target, settings, queue, function_environment(target, project, log_level), options
    )


def _refuse_invalid(
    settings: MappingSettings,
    queue: QueueSettings,
    project: Project,
    target: Target,
    given: Mapping[str, float | None],
    *,
    debug: bool,
) -> None:
    """Stop (exit 2) on settings CreateEventSourceMapping would refuse, each named with
    where it came from: a command-line option or the project's settings."""
    refused = refusals(
        settings, visibility_timeout_seconds=queue.visibility_timeout_seconds, in_process=debug
    )
    if not refused:
        return
    lines = []
    for refusal in refused:
        value = given.get(refusal.setting)
        where = (
            f"--{_OPTIONS[refusal.setting]} {value:g}"
            if value is not None
            else _project_setting(project, refusal.setting, refusal.value)
        )
        line = f"{where}: {refusal.message}"
        if refusal.setting == "function_timeout_seconds":
            line += (
                f" (the visibility timeout of queue {target.resources.source_queue}, "
                "as read from it)"
            )
        if refusal.setting == "max_concurrency" and refusal.value < 2:
            line += " (--debug runs one invocation at a time, in this process)"
        lines.append(line)
    raise SettingsError("\n".join(lines))


# The mapping's settings: run's option, and where the project declares it.
_OPTIONS = {
    "batch_size": "batch-size",
    "batching_window_seconds": "window",
    "max_concurrency": "max-concurrency",
    "function_timeout_seconds": "timeout",
}
_DECLARED = {
    "batch_size": ("mapping", "batch_size", "the mapping's BatchSize"),
    "batching_window_seconds": (
        "mapping",
        "batching_window",
        "the mapping's MaximumBatchingWindowInSeconds",
    ),
    "max_concurrency": (
        "mapping",
        "maximum_concurrency",
        "the mapping's ScalingConfig.MaximumConcurrency",
    ),
    "function_timeout_seconds": ("function", "timeout", "the function's Timeout"),
}


def _project_setting(project: Project, setting: str, value: float) -> str:
    """Where the project declares ``setting``, for messages."""
    table, key, in_iac = _DECLARED[setting]
    if project.source.startswith(PYPROJECT):
        return f"{project.root / PYPROJECT}: [{TABLE}.{table}] {key} = {value:g}"
    return f"{project.root} ({project.source}): {in_iac}, {value:g}"


def _run(
    project: Project,
    target: Target,
    settings: MappingSettings,
    queue: QueueSettings,
    environment: dict[str, str],
    options: RunOptions,
) -> None:
    """Poll with ``settings`` until the run ends, telling each invocation, then sum up."""
    output = RunOutput(quiet=options.quiet, live=not options.debug)
    where = (
        "--debug: the handler in this process, the timeout reported, not enforced"
        if options.debug
        else f"each invocation in an execution environment, memory {project.function.memory_mb} MB"
    )
    where_invoked = _environments(project, environment, settings, options, output)
    with output.display(), where_invoked as environments:
        mapping = LocalEventSourceMapping(
            target.sqs,
            queue_url=target.source_queue_url,
            queue_arn=target.source_queue_arn,
            region=project.region,
            environments=environments,
            settings=settings,
            queue_settings=queue,
            on_batch=lambda result, stats: output.batch(result, stats, queue, fifo=settings.fifo),
            on_notice=output.notice,
            on_tick=output.tick,
        )
        try:
            environments.start()  # before polling: a handler that does not import stops here
        except InitError as error:
            _init_failed(error, project, then="Nothing was received from the queue.")
        output.notice(
            f"[bold]Polling[/] {target.resources.source_queue} at {_where(target.endpoint)}: "
            f"batch {settings.batch_size}, window {settings.batching_window_seconds:g} s, "
            f"concurrency {settings.max_concurrency}, "
            f"timeout {settings.function_timeout_seconds:g} s; {where}"
            + ("" if options.until_empty or options.max_messages else "  (Ctrl-C to stop)")
        )
        output.notice(retry_rule(queue, options.retry_after, project))
        failed_init: InitError | None = None
        try:
            with _sigterm_as_interrupt():
                stats = mapping.run(
                    until_empty=options.until_empty, max_messages=options.max_messages
                )
        except InitError as error:  # a new environment's, while the run went on
            stats, failed_init = mapping.stats, error
    print_summary(stats, queue, _queue_depths(target), fifo=settings.fifo, debug=options.debug)
    if failed_init is not None:
        _init_failed(failed_init, project, then=_released(stats.released_on_stop))


@contextmanager
def _environments(
    project: Project,
    environment: dict[str, str],
    settings: MappingSettings,
    options: RunOptions,
    output: RunOutput,
) -> Iterator[Environments]:
    """Where the invocations run: worker processes, or (``--debug``) this process, its
    ``os.environ`` the function's while the run lasts."""
    if not options.debug:
        with ExecutionEnvironments(
            _function_definition(project, environment),
            max_environments=settings.max_concurrency,
            on_output=output.handler_line,
            init_limit_seconds=max(INIT_LIMIT_SECONDS, settings.function_timeout_seconds),
        ) as environments:
            yield environments
        return
    with _function_environment(environment):
        try:
            in_process = _in_process(project, environment)
        except InitError as error:
            _init_failed(error, project, then="Nothing was received from the queue.")
        yield in_process


def _in_process(project: Project, environment: Mapping[str, str]) -> InProcessEnvironment:
    """The handler imported afresh in this process (``--debug``, in the function's
    environment), as a worker imports it: its import timed, an import that fails raised
    as the :class:`.invocations.InitError` a worker would report."""
    function = project.function
    code_import.purge(function.package)  # module state starts afresh, as in a new environment
    started = time.perf_counter()
    try:
        handler = worker.load_handler(function.handler, str(project.code_dir))
    except worker.HandlerNotImportedError as error:
        raise InitError(ErrorInfo(error.error_type, str(error))) from error
    except Exception as error:
        fields = worker.error_fields(error, skip={__file__})
        info = ErrorInfo(fields["errorType"], fields["errorMessage"], tuple(fields["stackTrace"]))
        raise InitError(info) from error
    return InProcessEnvironment(
        handler,
        function_name=function.name,
        memory_mb=function.memory_mb,
        region=environment["AWS_REGION"],
        init_duration_ms=(time.perf_counter() - started) * 1000,
    )


def invoke(
    event_file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="A Lambda SQS event (see events/)."),
    ],
    debug: DebugOption = False,
    log_level: LogLevelOption = "INFO",
    aws: AwsOption = False,
    suffix: SuffixOption = "",
) -> None:
    """Run the handler once on EVENT_FILE, against the emulator's tables and DLQ, in an
    execution environment of its own (--debug: in this process).

    Prints the handler's response (an error's document when it fails, exit status 1),
    and the REPORT line to stderr. The records' receipt handles are not real: nothing is
    deleted from any queue. `sqsl events` writes sample events to events/.
    """
    project = current()
    try:
        event = json.loads(event_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        _fail(f"{event_file} is not JSON: {error}")
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        _fail(f"{event_file} is not an SQS event: expected an object with a Records list")
    target = _target(_endpoint(aws=aws), project, suffix=suffix)
    environment = function_environment(target, project, log_level)
    timeout = project.function.timeout_seconds
    try:
        invocation = _invoke_once(project, environment, event, timeout, debug=debug)
    except InitError as error:
        _init_failed(error, project)
    document: object = (
        invocation.response
        if invocation.succeeded
        else invocation.error.document()
        if invocation.error is not None
        else None
    )
    typer.echo(json.dumps(document, indent=2, default=str))
    for line in invocation_lines(_lone_result(invocation)):
        console.print(line, soft_wrap=True)
    if not invocation.succeeded:
        raise typer.Exit(1)


def _invoke_once(
    project: Project,
    environment: dict[str, str],
    event: dict[str, Any],
    timeout: float,
    *,
    debug: bool,
) -> Invocation:
    if debug:
        with _function_environment(environment):
            return _in_process(project, environment).invoke(event, timeout_seconds=timeout)
    with ExecutionEnvironments(
        _function_definition(project, environment),
        max_environments=1,
        on_output=lambda line: console.print(Text(line), soft_wrap=True),
        init_limit_seconds=max(INIT_LIMIT_SECONDS, timeout),
    ) as environments:
        return environments.invoke(event, timeout_seconds=timeout)


def _lone_result(invocation: Invocation) -> BatchResult:
    """``invoke``'s invocation, told as ``run`` tells a batch's (nothing deleted)."""
    return BatchResult(
        message_ids=(),
        deleted=0,
        failed_ids=(),
        whole_batch_failed=False,
        reason="",
        seconds=invocation.duration_ms / 1000,
        invocation=invocation,
    )


def _init_failed(error: InitError, project: Project, *, then: str = "") -> NoReturn:
    """Stop on a failed init, saying it once: a handler path that names nothing is a
    setting to fix (exit 2); an error the handler's code raised while it was imported is
    shown with its traceback (exit 1). ``then``: what became of the queue's messages."""
    info = error.error
    function = project.function
    if info.type in (IMPORT_MODULE_ERROR, HANDLER_NOT_FOUND):
        raise SettingsError(f"{_handler_setting(project)} = {function.handler!r}: {info.message}")
    console.print(
        f"[red]error:[/] the function's init failed ({info.type}): {function.handler_module}, "
        f"the handler's module ({_handler_setting(project)}), did not import."
    )
    for line in info.stack_trace or (f"{info.type}: {info.message}",):
        console.print(Text(line), soft_wrap=True)
    if then:
        console.print(then)
    raise typer.Exit(1)


def _released(count: int) -> str:
    if not count:
        return "The run stopped; no message was left hidden by it."
    many = count > 1
    return (
        f"The run stopped; {count} message{'s' if many else ''} received and not invoked "
        f"{'were' if many else 'was'} released: visible again at once."
    )


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


def function_environment(target: Target, project: Project, log_level: str) -> dict[str, str]:
    """The whole environment of the function's process, for ``target``: this process's,
    the function's variables (placeholders resolved), the endpoint, the log level, and the
    variables Lambda defines (``_HANDLER``, ``LAMBDA_TASK_ROOT``: the code folder, ...)."""
    environment = dict(os.environ)
    # A per-service endpoint would win over AWS_ENDPOINT_URL in boto3.
    if target.endpoint.is_emulator:
        for name in [name for name in environment if name.startswith("AWS_ENDPOINT_URL_")]:
            del environment[name]
    function = project.function
    region = target.endpoint.region_name
    environment.update(target.environment(project))
    environment["LOG_LEVEL"] = environment["POWERTOOLS_LOG_LEVEL"] = log_level.upper()
    environment.update(
        lambda_variables(
            function_name=function.name,
            handler=function.handler,
            code_dir=project.code_dir,
            memory_mb=function.memory_mb,
            region=region,
        )
    )
    return environment


def _function_definition(project: Project, environment: Mapping[str, str]) -> FunctionDefinition:
    function = project.function
    return FunctionDefinition(
        name=function.name,
        handler=function.handler,
        code_dir=project.code_dir,
        memory_mb=function.memory_mb,
        region=environment["AWS_REGION"],
        environment=environment,
    )


@contextmanager
def _function_environment(environment: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` as ``environment`` (the function's), with Lambda's log format, while
    the handler is imported and runs in this process (``--debug``); restored afterwards."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environment)
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
