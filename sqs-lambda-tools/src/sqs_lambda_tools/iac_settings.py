"""A project's settings from its IaC, for a project without a ``[tool.sqsl]`` table.

As ``sam local`` reads ``template.yaml``, the tools read the project's IaC with the
preflight readers (SAM or CloudFormation ``template.yaml``, a CDK cloud assembly, a
Terraform folder) and take the one event source mapping from an SQS queue to a function:
its function (handler, code folder, name, runtime, architecture, timeout, memory,
environment), its queue and DLQ, the mapping's settings and the DynamoDB tables.

An environment value that names a resource of the IaC becomes the placeholder of that
resource, so that a run on other copies of the resources gives the function their names:
``!Ref OrdersTable`` is ``{tables.orders}``, ``!Ref DeadLetterQueue`` ``{dlq.url}``. Names
the IaC leaves to the deploy (no literal ``QueueName``) are made up from the resource's
id: the local loop creates its own copies anyway.

What cannot be found goes to :attr:`.Project.missing`, each entry saying how to declare it;
a command that needs it fails with that message (:func:`require`), the others run.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass
from pathlib import Path

from .preflight import cloudformation, terraform
from .preflight.model import REGION, Deployment, Mapping, Reference, SourceError, Value
from .project import (
    ARCHITECTURES,
    PYPROJECT,
    RUNTIMES,
    TABLE,
    DeadLetterSettings,
    FunctionSettings,
    IacKind,
    IacSettings,
    MappingSettings,
    Project,
    QueueSettings,
    SettingsError,
    TableSettings,
)

TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")
CDK_OUT_NAMES = ("build/cdk.out", "cdk.out")
TERRAFORM_DIR = "infra/terraform"
DEFAULT_REGION = "us-east-1"
_HANDLER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
# A CDK logical id ends in a hash of its construct path: OrdersTable1A2B3C4D.
_CDK_HASH = re.compile(r"[0-9A-F]{8}$")
_SQS_ARN = re.compile(r"^arn:[\w-]+:sqs:[\w-]+:\d+:(?P<name>[\w.-]+)$")

# How to declare what the IaC does not say, by key (the table's own names).
_DECLARE = {
    "function.name": 'name = "my-function"',
    "function.handler": 'handler = "pkg.module.function"',
    "function.code": 'code = "src"',
    "function.runtime": 'runtime = "python3.13"',
    "function.architecture": 'architecture = "arm64"',
    "function.memory": "memory = 256",
    "function.environment": 'NAME = "value"',
}
# Where a key is declared, when it is not the key's own prefix.
_SECTION = {"function.environment": "function.environment"}


@dataclass(frozen=True)
class FoundIac:
    kind: IacKind
    path: Path  # the template file, the cloud assembly or the Terraform folder


def find_iac(root: Path) -> FoundIac | None:
    """The project's IaC: ``template.yaml`` (SAM when it has the Serverless transform,
    else CloudFormation), else a CDK cloud assembly (``cdk.json``'s output,
    ``build/cdk.out``, ``cdk.out``), else Terraform (``infra/terraform``, or ``*.tf`` at
    the root); None when there is none."""
    for name in TEMPLATE_NAMES:
        template = root / name
        if template.is_file():
            text = template.read_text(encoding="utf-8", errors="replace")
            return FoundIac("sam" if "AWS::Serverless" in text else "cloudformation", template)
    for cdk_out in _cdk_out_candidates(root):
        if cdk_out.is_dir() and any(cdk_out.glob(cloudformation.CDK_TEMPLATES)):
            return FoundIac("cdk", cdk_out)
    for folder in (root / TERRAFORM_DIR, root):
        if folder.is_dir() and any(folder.glob("*.tf")):
            return FoundIac("terraform", folder)
    return None


def _cdk_out_candidates(root: Path) -> list[Path]:
    candidates = [root / name for name in CDK_OUT_NAMES]
    try:
        output = json.loads((root / "cdk.json").read_text(encoding="utf-8")).get("output")
    except (OSError, ValueError, AttributeError):
        output = None
    if isinstance(output, str):
        candidates.insert(0, root / output)
    return candidates


def from_iac(root: Path) -> Project:
    """The settings of the project at ``root`` from its IaC (:func:`find_iac`)."""
    pyproject = root / PYPROJECT
    found = find_iac(root)
    if found is None:
        raise SettingsError(
            f"no [{TABLE}] table in {pyproject} and no IaC found in {root} (template.yaml, "
            f"a CDK cloud assembly, {TERRAFORM_DIR}/ or *.tf): declare the project's settings "
            f"in {pyproject}, at least [{TABLE}.function] name and handler "
            '("pkg.module.function"), [tool.sqsl.queue] name and [tool.sqsl.dlq] name'
        )
    shown = _shown(found.path, root)
    try:
        deployments = _read(found)
    except SourceError as error:
        raise SettingsError(
            f"no [{TABLE}] table in {pyproject}, and its IaC cannot be read: {error}"
        ) from error
    mapped = [
        (deployment, mapping) for deployment in deployments for mapping in deployment.mappings
    ]
    if len(mapped) != 1:
        what = (
            "no event source mapping from an SQS queue to a function"
            if not mapped
            else f"{len(mapped)} SQS event source mappings "
            f"({', '.join(mapping.label for _, mapping in mapped)})"
        )
        raise SettingsError(
            f"no [{TABLE}] table in {pyproject}, and {shown} declares {what}: the tools serve "
            f"one function and its queue; declare them in {pyproject} as [{TABLE}]"
        )
    deployment, mapping = mapped[0]
    return _Builder(root, found, shown, deployment, mapping).project()


def require(project: Project, *keys: str) -> None:
    """Fail (:class:`.SettingsError`) when the IaC fallback could not find a setting under
    one of ``keys`` (``"function.handler"``, ``"function.environment"``, ``"tables"``...),
    with what it says about each."""
    wanted = [
        entry
        for entry in project.missing
        if any(
            (name := entry.split(":", 1)[0]) == key or name.startswith(f"{key}.") for key in keys
        )
    ]
    if wanted:
        raise SettingsError(
            "\n".join(wanted)
            + f"\n(a [{TABLE}] table in {PYPROJECT} is then the source of every setting: "
            "declare the others there too)"
        )


def from_table(project: Project) -> bool:
    """Whether ``project``'s settings come from a ``[tool.sqsl]`` table (not the IaC)."""
    return project.source.startswith(PYPROJECT)


def _read(found: FoundIac) -> list[Deployment]:
    if found.kind == "cdk":
        return cloudformation.load_cdk_out(found.path)
    if found.kind == "terraform":
        return [terraform.load_directory(found.path)]
    return [cloudformation.load_template(found.path)]


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root)) or "."
    except ValueError:
        return str(path)


def _derived_name(key: str, limit: int = 64) -> str:
    """A name from a resource's id: ``aws_sqs_queue.orders`` -> ``orders``,
    ``SourceQueue`` -> ``source-queue``."""
    last = key.rsplit(".", 1)[-1]
    last = _CDK_HASH.sub("", last) or last
    kebab = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", last).lower().replace("_", "-")
    return re.sub(r"[^a-z0-9-]+", "-", kebab).strip("-")[:limit] or "function"


def _table_key(key: str) -> str:
    """A table's key for ``{tables.<key>}``: ``OrdersTable`` -> ``orders``."""
    name = _derived_name(key).replace("-", "_")
    return name.removesuffix("_table") or name


class _Builder:
    def __init__(
        self, root: Path, found: FoundIac, shown: str, deployment: Deployment, mapping: Mapping
    ) -> None:
        self.root = root
        self.found = found
        self.shown = shown
        self.deployment = deployment
        self.mapping = mapping
        self.missing: list[str] = []

    def _missing(self, key: str, why: str | None = None) -> None:
        section, _, name = key.rpartition(".")
        section = _SECTION.get(key, section)
        example = _DECLARE.get(key, f'{name} = "..."')
        self.missing.append(
            f"{key}: {why or f'not found in {self.shown}'}; declare it in {PYPROJECT} as "
            f"[{TABLE}.{section}] {example}"
        )

    def project(self) -> Project:
        deployment, mapping = self.deployment, self.mapping
        queue = self._queue()
        dlq = self._dlq(queue)
        tables = self._tables()
        function = self._function(tables)
        window = mapping.batching_window
        return Project(
            root=self.root,
            source=self.shown,
            function=function,
            queue=queue,
            dlq=dlq,
            mapping=MappingSettings(
                batch_size=mapping.batch_size,
                batching_window_seconds=window,
                maximum_concurrency=mapping.maximum_concurrency,
            ),
            tables={key: settings for key, (_, settings) in tables.items()},
            iac=IacSettings(kind=self.found.kind, path=self.shown),
            region=deployment.region or self._samconfig_region() or DEFAULT_REGION,
            missing=tuple(self.missing),
        )

    # -- queues -------------------------------------------------------------------------

    def _queue(self) -> QueueSettings:
        queue = self.deployment.queues.get(self.mapping.queue)
        if queue is None:
            arn = _SQS_ARN.match(self.mapping.queue)
            name = arn["name"] if arn else _derived_name(self.mapping.queue)
            if arn is None:
                self._missing("queue.name", f"the mapped queue is not in {self.shown}")
            return QueueSettings(name=name, fifo=name.endswith(".fifo"))
        name = queue.name or self._fifo_name(_derived_name(queue.key, 70), queue.fifo)
        return QueueSettings(
            name=name,
            fifo=queue.fifo,
            visibility_timeout_seconds=queue.visibility_timeout,
            retention_seconds=queue.retention,
            content_based_deduplication=queue.content_based_deduplication,
        )

    def _dlq(self, source: QueueSettings) -> DeadLetterSettings:
        queue = self.deployment.queues.get(self.mapping.queue)
        redrive = queue.redrive if queue is not None else None
        base = source.name.removesuffix(".fifo")
        if redrive is None:
            self._missing(
                "dlq.name", f"{self.shown} gives the queue {source.name} no redrive policy (DLQ)"
            )
            return DeadLetterSettings(name=self._fifo_name(f"{base}-dlq", source.fifo))
        dlq = self.deployment.queues.get(redrive.target)
        if dlq is None:
            arn = _SQS_ARN.match(redrive.target)
            if arn is None:
                self._missing("dlq.name", f"the DLQ of {source.name} is not in {self.shown}")
            name = arn["name"] if arn else self._fifo_name(f"{base}-dlq", source.fifo)
            return DeadLetterSettings(name=name, max_receive_count=redrive.max_receive_count)
        return DeadLetterSettings(
            name=dlq.name or self._fifo_name(_derived_name(dlq.key, 70), source.fifo),
            max_receive_count=redrive.max_receive_count,
            retention_seconds=dlq.retention,
        )

    @staticmethod
    def _fifo_name(name: str, fifo: bool) -> str:
        return f"{name}.fifo" if fifo else name

    # -- tables -------------------------------------------------------------------------

    def _tables(self) -> dict[str, tuple[str, TableSettings]]:
        """By table key: (the IaC's key of the table, its settings)."""
        tables: dict[str, tuple[str, TableSettings]] = {}
        for table in self.deployment.tables.values():
            key = _table_key(table.key)
            while key in tables:
                key = f"{key}_"
            if table.partition_key is None:
                self._missing(f"tables.{key}.key", f"{table.label} in {self.shown} has none")
            tables[key] = (
                table.key,
                TableSettings(
                    name=table.name or _derived_name(table.key, 200),
                    key=table.partition_key or "id",
                    ttl_attribute=table.ttl_attribute,
                ),
            )
        return tables

    # -- function -----------------------------------------------------------------------

    def _function(self, tables: dict[str, tuple[str, TableSettings]]) -> FunctionSettings:
        function = self.deployment.functions.get(self.mapping.function)
        if function is None:
            why = f"the mapped function is not in {self.shown}"
            for key in ("function.name", "function.handler"):
                self._missing(key, why)
            return FunctionSettings(name=_derived_name(self.mapping.function), handler="")
        name = function.name
        if name is None:
            self._missing(
                "function.name", f"{self.shown} gives {function.label} no literal function name"
            )
        handler = function.handler
        if handler is not None and not _HANDLER.fullmatch(handler):
            self._missing(
                "function.handler", f"{self.shown} says {handler!r}, not package.module.function"
            )
            handler = None
        elif handler is None:
            self._missing("function.handler")
        runtime = function.runtime
        if runtime is None:
            self._missing("function.runtime")
        elif runtime not in RUNTIMES:
            self._missing(
                "function.runtime",
                f"{self.shown} says {runtime}, not a Python runtime the tools run "
                f"({', '.join(RUNTIMES)})",
            )
        architecture = function.architecture
        if architecture not in ARCHITECTURES:
            self._missing("function.architecture")
            architecture = "x86_64"
        memory = function.memory
        if memory is None:
            self._missing("function.memory")
        settings = FunctionSettings(
            name=name or _derived_name(function.key),
            handler=handler or "",
            runtime=runtime if runtime in RUNTIMES else "python3.13",
            architecture=architecture,
            timeout_seconds=function.timeout,
            memory_mb=memory or 128,
        )
        code_path = self._code_path(function.code, settings) if handler else "."
        environment = self._environment(function.environment, function.key, tables)
        return FunctionSettings(
            name=settings.name,
            handler=settings.handler,
            code_path=code_path,
            runtime=settings.runtime,
            architecture=settings.architecture,
            timeout_seconds=settings.timeout_seconds,
            memory_mb=settings.memory_mb,
            environment=environment,
        )

    def _code_path(self, code: str | None, function: FunctionSettings) -> str:
        """The folder the handler's package imports from: the IaC's code folder when it
        holds it, else ``src/``, else the root; a folder the IaC builds into (``build/``)
        last, as it is ``package``'s output rather than the source."""
        base = self.found.path.parent if self.found.path.is_file() else self.found.path
        candidates: list[Path] = []
        late: list[Path] = []
        if code is not None and "://" not in code:
            folder = (base / code).resolve()
            builds = (self.root / "build").resolve()
            (late if folder.is_relative_to(builds) else candidates).append(folder)
        candidates += [self.root / "src", self.root, *late]
        package = function.package
        for folder in candidates:
            if (folder / package).is_dir() or (folder / f"{package}.py").is_file():
                return _shown(folder.resolve(), self.root.resolve())
        self._missing(
            "function.code",
            f"the handler's package {package} is in none of "
            + ", ".join(_shown(folder, self.root) for folder in dict.fromkeys(candidates)),
        )
        return "src" if (self.root / "src").is_dir() else "."

    def _environment(
        self,
        environment: AnyMapping[str, Value] | None,
        function_key: str,
        tables: dict[str, tuple[str, TableSettings]],
    ) -> dict[str, str]:
        if environment is None:
            self._missing(
                "function.environment",
                f"{self.shown} gives the variables as a value only a deploy knows",
            )
            return {}
        queue_key = self.mapping.queue
        source = self.deployment.queues.get(queue_key)
        dlq_key = source.redrive.target if source is not None and source.redrive else None
        table_keys = {iac_key: key for key, (iac_key, _) in tables.items()}
        result: dict[str, str] = {}
        for variable, value in environment.items():
            placeholder: str | None = None
            if isinstance(value, str):
                placeholder = value
            elif isinstance(value, Reference):
                if value.key == REGION:
                    placeholder = "{region}"
                elif value.key == queue_key:
                    placeholder = f"{{queue.{value.attribute}}}"
                elif value.key == dlq_key:
                    placeholder = f"{{dlq.{value.attribute}}}"
                elif value.key in table_keys and value.attribute == "name":
                    placeholder = f"{{tables.{table_keys[value.key]}}}"
                elif value.key == function_key and value.attribute == "name":
                    placeholder = "{function.name}"
            if placeholder is None:
                self._missing(
                    f"function.environment.{variable}",
                    f"its value in {self.shown} is one only a deploy knows",
                )
                continue
            result[variable] = placeholder
        return result

    def _samconfig_region(self) -> str | None:
        """The region ``sam deploy`` uses: samconfig.toml's ``[default.*.parameters]``."""
        try:
            document = tomllib.loads((self.root / "samconfig.toml").read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return None
        default = document.get("default", {})
        for command in ("deploy", "global"):
            region = default.get(command, {}).get("parameters", {}).get("region")
            if isinstance(region, str):
                return region
        return None
