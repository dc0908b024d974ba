"""A deployment model from a directory of Terraform files, parsed with python-hcl2.

Reads ``aws_sqs_queue`` (``redrive_policy`` as ``jsonencode({...})`` or a JSON string),
``aws_sqs_queue_redrive_policy``, ``aws_lambda_function``,
``aws_lambda_event_source_mapping``, ``aws_dynamodb_table``, ``aws_cloudwatch_metric_alarm``
and the ``aws`` provider's region. References
between them (``aws_sqs_queue.dead_letter.arn``) are followed; ``var.x`` takes the
variable's default and ``local.x`` its value. Nothing is planned or applied: a value only
``terraform plan`` knows (a data source, a function call) is reported as unusable.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import hcl2

from .model import (
    DEFAULT_ARCHITECTURE,
    DEFAULT_BATCH_SIZE,
    DEFAULT_BATCHING_WINDOW_SECONDS,
    DEFAULT_FUNCTION_TIMEOUT_SECONDS,
    DEFAULT_MEMORY_MB,
    DEFAULT_RETENTION_SECONDS,
    DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
    REGION,
    Deployment,
    Function,
    Mapping,
    Queue,
    Redrive,
    Reference,
    SourceError,
    Table,
    Value,
    as_bool,
    as_int,
)

OPTIONS = hcl2.SerializationOptions(with_comments=False, strip_string_quotes=True)
# "${aws_sqs_queue.dead_letter.arn}", "${aws_sqs_queue.x[0].arn}", "${var.timeout}"
REFERENCE = re.compile(
    r"^\$\{(?P<type>[a-z0-9_]+)\.(?P<name>[\w-]+)(?:\[[^\]]*\])?(?:\.(?P<attribute>\w+))?\}$"
)
SQS_ARN = re.compile(r"^arn:[\w-]+:sqs:[\w-]+:\d+:(?P<name>[\w.-]+)$")
# The two keys of a redrive policy inside jsonencode({...}): `key = value` or `"key": value`.
REDRIVE_TARGET = re.compile(r'"?deadLetterTargetArn"?\s*[=:]\s*"?(?P<value>[^,}\s"]+)')
REDRIVE_COUNT = re.compile(r'"?maxReceiveCount"?\s*[=:]\s*"?(?P<value>[^,}\s"]+)')
# Terraform's "no reservation" for reserved_concurrent_executions.
UNRESERVED = -1
# "${data.archive_file.package.output_path}", "${data.aws_region.current.name}"
DATA_REFERENCE = re.compile(
    r"^\$\{data\.(?P<type>[a-z0-9_]+)\.(?P<name>[\w-]+)\.(?P<attribute>\w+)\}$"
)
# What each attribute of a queue or table gives (the resources' "Attribute Reference").
_ATTRIBUTES: dict[str, dict[str, Literal["name", "url", "arn"]]] = {
    "aws_sqs_queue": {"name": "name", "url": "url", "id": "url", "arn": "arn"},
    "aws_dynamodb_table": {"name": "name", "id": "name", "arn": "arn"},
    "aws_lambda_function": {"function_name": "name", "arn": "arn"},
}
_BLOCK_MARK = "__is_block__"  # python-hcl2's mark on a block's attributes


def load_directory(directory: Path) -> Deployment:
    files = sorted(directory.glob("*.tf")) if directory.is_dir() else []
    if not files:
        raise SourceError(f"{directory}: no .tf files here: not a Terraform configuration")
    blocks: list[tuple[Path, dict[str, Any]]] = []
    for path in files:
        try:
            with path.open(encoding="utf-8") as handle:
                blocks.append((path, hcl2.load(handle, serialization_options=OPTIONS)))
        except OSError as error:
            raise SourceError(f"{path}: cannot read: {error.strerror}") from error
        except Exception as error:  # python-hcl2 raises lark's and its own errors
            raise SourceError(f"{path}: not valid HCL: {error}") from error
    return _Reader(directory, blocks).deployment()


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _expression(text: str) -> str:
    """A bare expression inside jsonencode (``var.count``) in the ``${...}`` form of
    attribute values; numbers and literal ARNs stay as they are."""
    if text.isdigit() or text.startswith("arn:"):
        return text
    return "${" + text + "}"


def _body(block: Any) -> dict[str, Any]:
    """A nested block's attributes (python-hcl2 gives a list of one mapping)."""
    if isinstance(block, list) and block and isinstance(block[0], dict):
        return block[0]
    return block if isinstance(block, dict) else {}


class _Reader:
    def __init__(self, directory: Path, files: list[tuple[Path, dict[str, Any]]]) -> None:
        self.directory = directory
        self.resources: dict[str, dict[str, tuple[Path, dict[str, Any]]]] = {}
        self.variables: dict[str, Any] = {}
        self.locals: dict[str, Any] = {}
        self.data: dict[str, dict[str, Any]] = {}
        self.providers: list[dict[str, Any]] = []
        self.notes: list[str] = []
        for path, content in files:
            for entry in content.get("resource", []):
                for kind, named in entry.items():
                    for name, body in named.items():
                        key = _unquote(name)
                        self.resources.setdefault(_unquote(kind), {})[key] = (path, body)
            for entry in content.get("variable", []):
                for name, body in entry.items():
                    if isinstance(body, dict) and "default" in body:
                        self.variables[_unquote(name)] = body["default"]
            for entry in content.get("locals", []):
                self.locals.update({_unquote(k): v for k, v in entry.items()})
            for entry in content.get("data", []):
                for kind, named in entry.items():
                    for name, body in named.items() if isinstance(named, dict) else ():
                        self.data[f"{_unquote(kind)}.{_unquote(name)}"] = body
            for entry in content.get("provider", []):
                if isinstance(entry.get("aws"), dict):
                    self.providers.append(entry["aws"])

    def _of_type(self, kind: str) -> dict[str, tuple[Path, dict[str, Any]]]:
        return self.resources.get(kind, {})

    # -- values -----------------------------------------------------------------------

    def _value(self, value: Any) -> Any:
        """``var.x`` and ``local.x`` replaced by what they stand for; quotes removed."""
        for _ in range(10):  # a local may name a variable
            if not isinstance(value, str):
                return value
            match = REFERENCE.match(value)
            if match and match["type"] == "var" and match["name"] in self.variables:
                value = self.variables[match["name"]]
            elif match and match["type"] == "local" and match["name"] in self.locals:
                value = self.locals[match["name"]]
            else:
                return _unquote(value)
        return value

    def _int(self, value: Any, where: str) -> int | None:
        return as_int(self._value(value), where, "or a var./local. with a known value")

    def _bool(self, value: Any, where: str) -> bool | None:
        return as_bool(self._value(value), where)

    def _text(self, value: Any) -> str | None:
        """A literal string (or a var./local. with one); None for what only a plan knows."""
        value = self._value(value)
        if isinstance(value, str) and "${" not in value:
            return value
        return None

    def _lenient_int(self, value: Any) -> int | None:
        try:
            return as_int(self._value(value), "", "")
        except SourceError:
            return None

    def _environment_value(self, value: Any) -> Value:
        """A literal, a reference to a queue, table or function here (or the region), or
        None when only a plan knows it."""
        value = self._value(value)
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, int | float):
            return str(value)
        if not isinstance(value, str):
            return None
        if "${" not in value:
            return value
        data = DATA_REFERENCE.match(value)
        if data is not None:
            if data["type"] == "aws_region" and data["attribute"] in ("name", "region"):
                return Reference(REGION, "value")
            return None
        match = REFERENCE.match(value)
        if match is None or match["attribute"] is None:
            return None
        gives = _ATTRIBUTES.get(match["type"], {}).get(match["attribute"])
        address = f"{match['type']}.{match['name']}"
        if gives is None or match["name"] not in self._of_type(match["type"]):
            return None
        return Reference(address, gives)

    def _code(self, body: dict[str, Any]) -> str | None:
        """Where the function's code is: ``filename``, or the folder an ``archive_file``
        zips (``${path.module}`` is the Terraform folder); None when only a plan knows."""
        filename = self._value(body.get("filename"))
        if isinstance(filename, str):
            data = DATA_REFERENCE.match(filename)
            if data is not None and data["type"] == "archive_file":
                archive = self.data.get(f"archive_file.{data['name']}", {})
                filename = self._value(archive.get("source_dir", archive.get("source_file")))
        if not isinstance(filename, str):
            return None
        filename = filename.replace("${path.module}", str(self.directory))
        return None if "${" in filename else filename

    def _where(self, path: Path, kind: str, name: str, field: str) -> str:
        return f"{path}: {kind}.{name}.{field}"

    def _reference(self, value: Any, kind: str) -> str | None:
        """The address ``kind.name`` that ``${kind.name.attr}`` (or, inside jsonencode,
        ``kind.name.attr``) names; None for anything else."""
        if not isinstance(value, str):
            return None
        match = REFERENCE.match(value if value.startswith("${") else "${" + value + "}")
        if match and match["type"] == kind:
            return f"{kind}.{match['name']}"
        return None

    # -- resources --------------------------------------------------------------------

    def deployment(self) -> Deployment:
        queues: dict[str, Queue] = {}
        self.queue_names: dict[str, str] = {}
        for name, (path, body) in self._of_type("aws_sqs_queue").items():
            queue = self._queue(path, name, body)
            queues[queue.key] = queue
        for name, (path, body) in self._of_type("aws_sqs_queue_redrive_policy").items():
            key = self._reference(body.get("queue_url"), "aws_sqs_queue")
            if key in queues:
                where = self._where(path, "aws_sqs_queue_redrive_policy", name, "redrive_policy")
                redrive = self._redrive(body.get("redrive_policy"), where)
                queues[key] = replace(queues[key], redrive=redrive)
        self.function_names: dict[str, str] = {}
        functions = {}
        for name, (path, body) in self._of_type("aws_lambda_function").items():
            function = self._function(path, name, body)
            functions[function.key] = function
        mappings = []
        for name, (path, body) in self._of_type("aws_lambda_event_source_mapping").items():
            mapping = self._mapping(path, name, body, queues)
            if mapping is not None:
                mappings.append(mapping)
        for queue in queues.values():
            if queue.redrive is not None and queue.redrive.target not in queues:
                self.notes.append(
                    f"{queue.label}: its DLQ {queue.redrive.target} is not in {self.directory}: "
                    "its type, retention, encryption and alarm were not checked"
                )
        return Deployment(
            source=str(self.directory),
            queues=queues,
            functions=functions,
            mappings=tuple(mappings),
            alarmed_queues=self._alarmed(queues),
            notes=tuple(self.notes),
            tables=self._tables(),
            region=self._region(),
        )

    def _queue(self, path: Path, name: str, body: dict[str, Any]) -> Queue:
        def where(field: str) -> str:
            return self._where(path, "aws_sqs_queue", name, field)

        key = f"aws_sqs_queue.{name}"
        queue_name = self._value(body.get("name"))
        if isinstance(queue_name, str) and not queue_name.startswith("${"):
            self.queue_names[queue_name] = key
        label = f"{key} ({queue_name})" if isinstance(queue_name, str) else key
        fifo = self._bool(body.get("fifo_queue"), where("fifo_queue"))
        sse = self._bool(body.get("sqs_managed_sse_enabled"), where("sqs_managed_sse_enabled"))
        if body.get("kms_master_key_id") is not None:
            sse = True
        visibility = self._int(
            body.get("visibility_timeout_seconds"), where("visibility_timeout_seconds")
        )
        retention = self._int(
            body.get("message_retention_seconds"), where("message_retention_seconds")
        )
        policy = body.get("redrive_policy")
        try:
            deduplication = as_bool(self._value(body.get("content_based_deduplication")), "")
        except SourceError:
            deduplication = None
        return Queue(
            key=key,
            label=label,
            name=self._text(body.get("name")),
            content_based_deduplication=bool(deduplication),
            fifo=bool(fifo),
            visibility_timeout=(
                DEFAULT_VISIBILITY_TIMEOUT_SECONDS if visibility is None else visibility
            ),
            retention=DEFAULT_RETENTION_SECONDS if retention is None else retention,
            sse=sse,
            redrive=None if policy is None else self._redrive(policy, where("redrive_policy")),
        )

    def _redrive(self, policy: Any, where: str) -> Redrive:
        policy = self._value(policy)
        if isinstance(policy, str) and not policy.startswith("${"):
            try:  # a JSON string (a heredoc or a quoted literal)
                parsed = json.loads(policy)
            except ValueError as error:
                raise SourceError(f"{where}: neither jsonencode(...) nor JSON: {error}") from error
            target, count = parsed.get("deadLetterTargetArn"), parsed.get("maxReceiveCount")
        elif isinstance(policy, str):
            found_target = REDRIVE_TARGET.search(policy)
            found_count = REDRIVE_COUNT.search(policy)
            target = _expression(found_target["value"]) if found_target else None
            count = _expression(found_count["value"]) if found_count else None
        else:
            raise SourceError(f"{where}: expected jsonencode(...) or a JSON string")
        if not isinstance(target, str):
            raise SourceError(f"{where}: no deadLetterTargetArn")
        dlq = self._queue_key(target)
        number = self._int(count, f"{where}: maxReceiveCount")
        if number is None:
            raise SourceError(f"{where}: no maxReceiveCount")
        return Redrive(target=dlq or target, max_receive_count=number)

    def _queue_key(self, value: str) -> str | None:
        """The address of the queue a reference or a literal ARN names; None if no queue."""
        address = self._reference(value, "aws_sqs_queue")
        if address is not None:
            return address
        match = SQS_ARN.match(str(self._value(value)))
        if match is None:
            return None
        return self.queue_names.get(match["name"], match.string)

    def _function(self, path: Path, name: str, body: dict[str, Any]) -> Function:
        def where(field: str) -> str:
            return self._where(path, "aws_lambda_function", name, field)

        key = f"aws_lambda_function.{name}"
        function_name = self._value(body.get("function_name"))
        if isinstance(function_name, str) and not function_name.startswith("${"):
            self.function_names[function_name] = key
        timeout = self._int(body.get("timeout"), where("timeout"))
        reserved = self._int(
            body.get("reserved_concurrent_executions"), where("reserved_concurrent_executions")
        )
        dead_letter = _body(body.get("dead_letter_config"))
        target = dead_letter.get("target_arn") if dead_letter else None
        architectures = self._value(body.get("architectures"))
        architecture: str | None = None
        if architectures is None:
            architecture = DEFAULT_ARCHITECTURE
        elif isinstance(architectures, list) and len(architectures) == 1:
            architecture = self._text(architectures[0])
        memory = body.get("memory_size")
        environment: dict[str, Value] | None = {}
        if body.get("environment") is not None:
            variables = self._value(_body(body.get("environment")).get("variables"))
            if isinstance(variables, dict):
                environment = {
                    _unquote(str(name)): self._environment_value(value)
                    for name, value in variables.items()
                    if name != _BLOCK_MARK
                }
            elif variables is not None:
                environment = None  # a merge(), a variable: only a plan knows
        return Function(
            key=key,
            label=f"{key} ({function_name})" if isinstance(function_name, str) else key,
            timeout=DEFAULT_FUNCTION_TIMEOUT_SECONDS if timeout is None else timeout,
            reserved_concurrency=None if reserved in (None, UNRESERVED) else reserved,
            dead_letter_target=None if target is None else str(target),
            name=self._text(body.get("function_name")),
            handler=self._text(body.get("handler")),
            runtime=self._text(body.get("runtime")),
            architecture=architecture,
            memory=DEFAULT_MEMORY_MB if memory is None else self._lenient_int(memory),
            code=self._code(body),
            environment=environment,
        )

    def _tables(self) -> dict[str, Table]:
        tables: dict[str, Table] = {}
        for name, (_, body) in self._of_type("aws_dynamodb_table").items():
            key = f"aws_dynamodb_table.{name}"
            table_name = self._text(body.get("name"))
            ttl = _body(body.get("ttl"))
            try:
                enabled = as_bool(self._value(ttl.get("enabled", True)), "") if ttl else None
            except SourceError:
                enabled = None
            tables[key] = Table(
                key=key,
                label=f"{key} ({table_name})" if table_name else key,
                name=table_name,
                partition_key=self._text(body.get("hash_key")),
                ttl_attribute=self._text(ttl.get("attribute_name")) if enabled else None,
            )
        return tables

    def _region(self) -> str | None:
        """The default ``aws`` provider's region (one without an ``alias``), if literal."""
        for provider in self.providers:
            if "alias" not in provider:
                return self._text(provider.get("region"))
        return None

    def _mapping(
        self, path: Path, name: str, body: dict[str, Any], queues: dict[str, Queue]
    ) -> Mapping | None:
        def where(field: str) -> str:
            return self._where(path, "aws_lambda_event_source_mapping", name, field)

        label = f"aws_lambda_event_source_mapping.{name}"
        source = body.get("event_source_arn")
        queue = self._queue_key(source) if isinstance(source, str) else None
        if queue is None:
            return None  # not an SQS source
        if queue not in queues:
            self.notes.append(
                f"{label}: its queue {queue} is not in {self.directory}: the queue rules "
                "were not checked"
            )
        function = self._reference(body.get("function_name"), "aws_lambda_function")
        if function is None:
            literal = str(self._value(body.get("function_name")))
            function = self.function_names.get(literal.rsplit(":", 1)[-1], literal)
        batch_size = self._int(body.get("batch_size"), where("batch_size"))
        window = self._int(
            body.get("maximum_batching_window_in_seconds"),
            where("maximum_batching_window_in_seconds"),
        )
        scaling = _body(body.get("scaling_config"))
        maximum = self._int(
            scaling.get("maximum_concurrency"), where("scaling_config.maximum_concurrency")
        )
        response_types = self._value(body.get("function_response_types")) or []
        if not isinstance(response_types, list):
            raise SourceError(f"{where('function_response_types')}: expected a list")
        return Mapping(
            label=label,
            queue=queue,
            function=function,
            batch_size=DEFAULT_BATCH_SIZE if batch_size is None else batch_size,
            batching_window=DEFAULT_BATCHING_WINDOW_SECONDS if window is None else window,
            response_types=tuple(_unquote(str(kind)) for kind in response_types),
            maximum_concurrency=maximum,
        )

    def _alarmed(self, queues: dict[str, Queue]) -> frozenset[str]:
        alarmed: set[str] = set()
        for _, body in self._of_type("aws_cloudwatch_metric_alarm").values():
            metrics = [body]
            for query in body.get("metric_query") or []:
                if isinstance(query, dict):
                    metrics.append(_body(query.get("metric")))
            for metric in metrics:
                if self._value(metric.get("namespace")) != "AWS/SQS":
                    continue
                dimensions = metric.get("dimensions")
                value = dimensions.get("QueueName") if isinstance(dimensions, dict) else None
                if value is None:
                    continue
                address = self._reference(value, "aws_sqs_queue")
                if address in queues:
                    alarmed.add(address)
                elif self._value(value) in self.queue_names:
                    alarmed.add(self.queue_names[self._value(value)])
        return frozenset(alarmed)
