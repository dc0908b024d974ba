"""A service's settings: what the tools need to know of the project they serve.

The tools read nothing of a service but this. It comes from one table, ``[tool.sqsl]`` in
the service's ``pyproject.toml`` (the template renders it from its answers), or, for a
project without one, from its IaC (:mod:`.iac_settings`), as ``sam local`` reads
``template.yaml``::

    [tool.sqsl]
    region = "us-east-1"

    [tool.sqsl.function]
    name = "orders-consumer"
    handler = "orders_consumer.handler.lambda_handler"
    runtime = "python3.13"
    architecture = "arm64"
    timeout = 30
    memory = 256

    [tool.sqsl.function.environment]
    ORDERS_TABLE_NAME = "{tables.orders}"
    DEAD_LETTER_QUEUE_URL = "{dlq.url}"

    [tool.sqsl.mapping]
    batch_size = 10
    batching_window = 0
    maximum_concurrency = 10

    [tool.sqsl.queue]
    name = "orders-consumer"
    fifo = false
    visibility_timeout = 180
    retention = 345600

    [tool.sqsl.dlq]
    name = "orders-consumer-dlq"
    max_receive_count = 5
    retention = 1209600

    [tool.sqsl.tables.orders]
    name = "orders-consumer-orders"
    key = "orderId"

    [tool.sqsl.samples]
    function = "orders_consumer.samples:sample_order"
    group_key = "userId"

    [tool.sqsl.iac]
    kind = "sam"
    path = "template.yaml"
    stack_name = "orders-consumer"

Environment values may name the resources of the run with ``{queue.name}``,
``{queue.url}``, ``{queue.arn}``, ``{dlq.name}``, ``{dlq.url}``, ``{dlq.arn}``,
``{tables.<table>}``, ``{function.name}`` and ``{region}``: tests and ``--suffix`` runs use
copies of the resources under other names, and the handler must see those.

Bad settings are refused with one message that names the file and the key
(:class:`SettingsError`), before anything is started.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

TABLE = "tool.sqsl"
PYPROJECT = "pyproject.toml"
#: The environment variable that names the project's folder (else: found from the cwd).
PROJECT_VARIABLE = "SQSL_PROJECT"
SQS_MAX_QUEUE_NAME = 80
RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14")
ARCHITECTURES = ("arm64", "x86_64")
IAC_KINDS = ("sam", "cdk", "terraform", "cloudformation", "none")
#: Where each kind of IaC lives by default, relative to the project.
DEFAULT_IAC_PATHS = {
    "sam": "template.yaml",
    "cloudformation": "template.yaml",
    "cdk": "build/cdk.out",
    "terraform": "infra/terraform",
}

IacKind = Literal["sam", "cdk", "terraform", "cloudformation", "none"]


class SettingsError(ValueError):
    """The settings cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class FunctionSettings:
    name: str
    handler: str  # "package.module.function"
    # The folder the handler's module imports from (a SAM CodeUri), relative to the root.
    code_path: str = "src"
    runtime: str = "python3.13"
    architecture: str = "arm64"
    timeout_seconds: int = 3  # CreateFunction's default
    memory_mb: int = 128
    # Values may hold placeholders (module docstring), resolved per run by Project.environment.
    environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def handler_module(self) -> str:
        return self.handler.rpartition(".")[0]

    @property
    def handler_function(self) -> str:
        return self.handler.rpartition(".")[2]

    @property
    def package(self) -> str:
        """The top-level package of the handler: what ships in the Lambda artifact."""
        return self.handler.split(".", 1)[0]

    @property
    def python_version(self) -> str:
        """``python3.13`` -> ``3.13``."""
        return self.runtime.removeprefix("python")

    @property
    def platform(self) -> str:
        """The wheel platform of the architecture, for uv's ``--python-platform``."""
        cpu = "aarch64" if self.architecture == "arm64" else "x86_64"
        return f"{cpu}-manylinux2014"


@dataclass(frozen=True)
class MappingSettings:
    """The event source mapping (CreateEventSourceMapping's defaults)."""

    batch_size: int = 10
    batching_window_seconds: int = 0
    maximum_concurrency: int | None = None


@dataclass(frozen=True)
class QueueSettings:
    name: str
    fifo: bool = False
    visibility_timeout_seconds: int = 30  # CreateQueue's defaults
    retention_seconds: int = 345_600
    content_based_deduplication: bool = False
    high_throughput: bool = False


@dataclass(frozen=True)
class DeadLetterSettings:
    name: str
    max_receive_count: int = 5
    retention_seconds: int = 1_209_600


@dataclass(frozen=True)
class TableSettings:
    """A DynamoDB table the function uses: string partition key, on demand."""

    name: str
    key: str
    ttl_attribute: str | None = None


@dataclass(frozen=True)
class SampleSettings:
    """Where sample message bodies come from: ``module:function`` of the service."""

    function: str | None = None
    # FIFO: the body's field whose value is the message group (else one group).
    group_key: str | None = None


@dataclass(frozen=True)
class BenchSettings:
    """What ``sqsl bench`` compares the handler with: ``module:function`` of the record
    function its batch loop calls, which the baselines then call too (else they do
    nothing with a record, and the handler's own record work counts against it)."""

    record_handler: str | None = None


@dataclass(frozen=True)
class IacSettings:
    kind: IacKind = "none"
    path: str | None = None  # relative to the project root
    stack_name: str | None = None
    cdk_app: str | None = None  # cdk: the app's module, run with `python -m`


@dataclass(frozen=True)
class Resources:
    """The names of one run's queues and tables (the declared ones, or suffixed copies)."""

    source_queue: str
    dead_letter_queue: str
    tables: Mapping[str, str]
    fifo: bool = False

    def with_suffix(self, suffix: str) -> Resources:
        """The same resources named ``<name><suffix>`` (``.fifo`` stays last)."""

        def queue(name: str) -> str:
            base = name.removesuffix(".fifo")
            tail = f"{suffix}.fifo" if self.fifo else suffix
            # SQS names stop at 80 characters. Trim the front of the name, not its end,
            # so the source queue and its DLQ (the same name + "-dlq") stay distinct.
            return base[max(0, len(base) + len(tail) - SQS_MAX_QUEUE_NAME) :] + tail

        return replace(
            self,
            source_queue=queue(self.source_queue),
            dead_letter_queue=queue(self.dead_letter_queue),
            tables={key: f"{name}{suffix}" for key, name in self.tables.items()},
        )


@dataclass(frozen=True)
class QueueUrls:
    """Where one run's queues are, for the environment's placeholders."""

    source_url: str = ""
    source_arn: str = ""
    dead_letter_url: str = ""
    dead_letter_arn: str = ""


@dataclass(frozen=True)
class Project:
    """Everything the tools know of one service."""

    root: Path
    # Where the settings came from, for messages: "pyproject.toml [tool.sqsl]", "template.yaml".
    source: str
    function: FunctionSettings
    queue: QueueSettings
    dlq: DeadLetterSettings
    mapping: MappingSettings = field(default_factory=MappingSettings)
    tables: Mapping[str, TableSettings] = field(default_factory=dict)
    samples: SampleSettings = field(default_factory=SampleSettings)
    bench: BenchSettings = field(default_factory=BenchSettings)
    iac: IacSettings = field(default_factory=IacSettings)
    region: str = "us-east-1"
    # Settings the IaC fallback could not find, each with how to declare it.
    missing: tuple[str, ...] = ()

    @property
    def state_dir(self) -> Path:
        """Where the tools keep what outlives one command for this project (the embedded
        emulator's pid, log and endpoint): ``.local/``, to be ignored by git."""
        return self.root / ".local"

    @property
    def code_dir(self) -> Path:
        """The folder the handler imports from, as Lambda's code root."""
        return self.root / self.function.code_path

    @property
    def iac_path(self) -> Path | None:
        if self.iac.kind == "none":
            return None
        return self.root / (self.iac.path or DEFAULT_IAC_PATHS[self.iac.kind])

    @property
    def stack_name(self) -> str:
        return self.iac.stack_name or self.function.name

    def resources(self) -> Resources:
        return Resources(
            source_queue=self.queue.name,
            dead_letter_queue=self.dlq.name,
            tables={key: table.name for key, table in self.tables.items()},
            fifo=self.queue.fifo,
        )

    def environment(self, resources: Resources, urls: QueueUrls) -> dict[str, str]:
        """The function's environment for ``resources``, placeholders resolved.

        ``AWS_LAMBDA_FUNCTION_NAME`` is set as Lambda sets it.
        """
        values = {
            "queue.name": resources.source_queue,
            "queue.url": urls.source_url,
            "queue.arn": urls.source_arn,
            "dlq.name": resources.dead_letter_queue,
            "dlq.url": urls.dead_letter_url,
            "dlq.arn": urls.dead_letter_arn,
            "function.name": self.function.name,
            "region": self.region,
            **{f"tables.{key}": name for key, name in resources.tables.items()},
        }
        environment = {"AWS_LAMBDA_FUNCTION_NAME": self.function.name}
        for variable, template in self.function.environment.items():
            environment[variable] = _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)
        return environment


_PLACEHOLDER = re.compile(r"\{([a-z]+(?:\.[A-Za-z0-9_-]+)?)\}")
_PLACEHOLDER_NAMES = ("queue.name", "queue.url", "queue.arn", "dlq.name", "dlq.url", "dlq.arn")


# Loading --------------------------------------------------------------------------------


def find_root(start: Path | None = None) -> Path:
    """The project's folder: ``$SQSL_PROJECT``, else the nearest folder from ``start`` (the
    cwd) up that has a ``pyproject.toml`` with ``[tool.sqsl]``, else one with IaC or a
    ``pyproject.toml``; else ``start`` itself."""
    configured = os.environ.get(PROJECT_VARIABLE, "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    candidates = [here, *here.parents]
    for folder in candidates:
        if _has_table(folder / PYPROJECT):
            return folder
    for folder in candidates:
        if (folder / PYPROJECT).is_file() or any(
            (folder / path).exists() for path in ("template.yaml", "cdk.json")
        ):
            return folder
    return here


def load(root: Path | None = None) -> Project:
    """The settings of the project at ``root`` (default: :func:`find_root`).

    From ``[tool.sqsl]`` when the ``pyproject.toml`` has it, else from the IaC.
    """
    root = (root or find_root()).resolve()
    pyproject = root / PYPROJECT
    table = _read_table(pyproject)
    if table is not None:
        return from_table(table, root=root, source=f"{PYPROJECT} [{TABLE}]")
    from . import iac_settings  # the IaC readers are heavier than the table

    return iac_settings.from_iac(root)


_current: Project | None = None


def current() -> Project:
    """The project of this command, loaded once (``use`` sets another)."""
    global _current
    if _current is None:
        _current = load()
    return _current


def use(project: Project | None) -> None:
    """Make ``project`` the one :func:`current` returns (None: load again when asked)."""
    global _current
    _current = project


@contextmanager
def using(project: Project) -> Iterator[Project]:
    """``project`` as the current one for a block, the previous one restored after."""
    global _current
    previous = _current
    _current = project
    try:
        yield project
    finally:
        _current = previous


def _has_table(pyproject: Path) -> bool:
    try:
        return _read_table(pyproject) is not None
    except SettingsError:
        return True  # it has a table; loading it will say what is wrong


def _read_table(pyproject: Path) -> dict[str, Any] | None:
    if not pyproject.is_file():
        return None
    try:
        document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{pyproject}: not valid TOML: {error}") from error
    table = document.get("tool", {}).get("sqsl")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise SettingsError(f"{pyproject}: [{TABLE}] must be a table")
    return table


class _Reader:
    """Reads one table of the settings, naming the file and key in every refusal."""

    def __init__(self, table: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> None:
        self.table = table
        self.where = where
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise SettingsError(
                    f"{where}: unknown key {key!r}{hint}; allowed: {', '.join(allowed)}"
                )

    def _fail(self, key: str, expected: str) -> SettingsError:
        return SettingsError(f"{self.where} {key}: expected {expected}, got {self.table[key]!r}")

    def text(self, key: str, default: str | None = None, *, pattern: str | None = None) -> str:
        value = self.optional_text(key, pattern=pattern)
        if value is None:
            if default is None:
                raise SettingsError(f"{self.where}: {key} is required")
            return default
        return value

    def optional_text(self, key: str, *, pattern: str | None = None) -> str | None:
        if key not in self.table:
            return None
        value = self.table[key]
        if not isinstance(value, str) or not value.strip():
            raise self._fail(key, "a non-empty string")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise self._fail(key, f"a value matching {pattern}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.table.get(key, default)
        if value not in choices:
            raise self._fail(key, f"one of {', '.join(choices)}")
        return str(value)

    def number(self, key: str, default: int, low: int, high: int) -> int:
        value = self.optional_number(key, low, high)
        return default if value is None else value

    def optional_number(self, key: str, low: int, high: int) -> int | None:
        if key not in self.table:
            return None
        value = self.table[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self._fail(key, f"a whole number {low}-{high}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def subtable(self, key: str) -> Mapping[str, Any]:
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            raise self._fail(key, "a table")
        return value


_NAME = r"[A-Za-z0-9_-]{1,80}(\.fifo)?"
_HANDLER = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+"
_SAMPLE_FUNCTION = r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*"


def from_table(table: Mapping[str, Any], *, root: Path, source: str) -> Project:
    """The settings of ``[tool.sqsl]`` (already parsed), checked key by key."""
    file = root / PYPROJECT
    top = _Reader(
        table,
        f"{file}: [{TABLE}]",
        ("region", "function", "mapping", "queue", "dlq", "tables", "samples", "bench", "iac"),
    )
    region = top.text("region", "us-east-1", pattern=r"[a-z]{2}(-[a-z]+)+-\d")

    function_table = _Reader(
        top.subtable("function"),
        f"{file}: [{TABLE}.function]",
        (
            "name",
            "handler",
            "code",
            "runtime",
            "architecture",
            "timeout",
            "memory",
            "environment",
        ),
    )
    environment = function_table.subtable("environment")
    for variable, value in environment.items():
        if not isinstance(value, str):
            raise SettingsError(
                f"{file}: [{TABLE}.function.environment] {variable}: expected a string, "
                f"got {value!r}"
            )
    function = FunctionSettings(
        name=function_table.text("name", pattern=r"[A-Za-z0-9_-]{1,64}"),
        handler=function_table.text("handler", pattern=_HANDLER),
        code_path=function_table.text("code", "src" if (root / "src").is_dir() else "."),
        runtime=function_table.choice("runtime", RUNTIMES, "python3.13"),
        architecture=function_table.choice("architecture", ARCHITECTURES, "arm64"),
        timeout_seconds=function_table.number("timeout", 3, 1, 900),
        memory_mb=function_table.number("memory", 128, 128, 10_240),
        environment=dict(environment),
    )

    queue_table = _Reader(
        top.subtable("queue"),
        f"{file}: [{TABLE}.queue]",
        (
            "name",
            "fifo",
            "visibility_timeout",
            "retention",
            "content_based_deduplication",
            "high_throughput",
        ),
    )
    queue = QueueSettings(
        name=queue_table.text("name", pattern=_NAME),
        fifo=queue_table.flag("fifo", False),
        visibility_timeout_seconds=queue_table.number("visibility_timeout", 30, 0, 43_200),
        retention_seconds=queue_table.number("retention", 345_600, 60, 1_209_600),
        content_based_deduplication=queue_table.flag("content_based_deduplication", False),
        high_throughput=queue_table.flag("high_throughput", False),
    )
    if queue.fifo != queue.name.endswith(".fifo"):
        raise SettingsError(
            f"{file}: [{TABLE}.queue] name: a FIFO queue's name ends in .fifo and a standard "
            f"queue's does not (fifo = {str(queue.fifo).lower()}, name = {queue.name!r})"
        )

    dlq_table = _Reader(
        top.subtable("dlq"),
        f"{file}: [{TABLE}.dlq]",
        ("name", "max_receive_count", "retention"),
    )
    dlq = DeadLetterSettings(
        name=dlq_table.text("name", pattern=_NAME),
        max_receive_count=dlq_table.number("max_receive_count", 5, 1, 1000),
        retention_seconds=dlq_table.number("retention", 1_209_600, 60, 1_209_600),
    )
    if dlq.name.endswith(".fifo") != queue.fifo:
        raise SettingsError(
            f"{file}: [{TABLE}.dlq] name: the DLQ of a "
            f"{'FIFO' if queue.fifo else 'standard'} queue is "
            f"{'a FIFO queue (.fifo)' if queue.fifo else 'a standard queue'}, "
            f"got {dlq.name!r}"
        )

    mapping_table = _Reader(
        top.subtable("mapping"),
        f"{file}: [{TABLE}.mapping]",
        ("batch_size", "batching_window", "maximum_concurrency"),
    )
    mapping = MappingSettings(
        batch_size=mapping_table.number("batch_size", 10, 1, 10_000),
        batching_window_seconds=mapping_table.number("batching_window", 0, 0, 300),
        maximum_concurrency=mapping_table.optional_number("maximum_concurrency", 2, 1000),
    )

    tables: dict[str, TableSettings] = {}
    for key, value in top.subtable("tables").items():
        if not isinstance(value, dict):
            raise SettingsError(f"{file}: [{TABLE}.tables] {key}: expected a table")
        reader = _Reader(value, f"{file}: [{TABLE}.tables.{key}]", ("name", "key", "ttl"))
        tables[key] = TableSettings(
            name=reader.text("name", pattern=r"[A-Za-z0-9_.-]{3,255}"),
            key=reader.text("key"),
            ttl_attribute=reader.optional_text("ttl"),
        )

    samples_table = _Reader(
        top.subtable("samples"), f"{file}: [{TABLE}.samples]", ("function", "group_key")
    )
    samples = SampleSettings(
        function=samples_table.optional_text("function", pattern=_SAMPLE_FUNCTION),
        group_key=samples_table.optional_text("group_key"),
    )

    bench_table = _Reader(top.subtable("bench"), f"{file}: [{TABLE}.bench]", ("record_handler",))
    bench = BenchSettings(
        record_handler=bench_table.optional_text("record_handler", pattern=_SAMPLE_FUNCTION),
    )

    iac_table = _Reader(
        top.subtable("iac"), f"{file}: [{TABLE}.iac]", ("kind", "path", "stack_name", "cdk_app")
    )
    kind = iac_table.choice("kind", IAC_KINDS, "none")
    iac = IacSettings(
        kind=kind,  # type: ignore[arg-type]  # checked against IAC_KINDS just above
        path=iac_table.optional_text("path"),
        stack_name=iac_table.optional_text("stack_name"),
        cdk_app=iac_table.optional_text("cdk_app"),
    )
    if iac.kind == "cdk" and iac.cdk_app is None:
        raise SettingsError(
            f'{file}: [{TABLE}.iac] cdk_app is required for kind = "cdk": the module of the '
            'CDK app, run with `python -m` (e.g. "my_service_infra.app")'
        )

    project = Project(
        root=root,
        source=source,
        function=function,
        queue=queue,
        dlq=dlq,
        mapping=mapping,
        tables=tables,
        samples=samples,
        bench=bench,
        iac=iac,
        region=region,
    )
    _check_placeholders(project, f"{file}: [{TABLE}.function.environment]")
    return project


def _check_placeholders(project: Project, where: str) -> None:
    known = {*_PLACEHOLDER_NAMES, "function.name", "region"}
    known |= {f"tables.{key}" for key in project.tables}
    for variable, template in project.function.environment.items():
        for name in _PLACEHOLDER.findall(template):
            if name not in known:
                raise SettingsError(
                    f"{where} {variable}: unknown placeholder {{{name}}}; known: "
                    + ", ".join(f"{{{item}}}" for item in sorted(known))
                )
