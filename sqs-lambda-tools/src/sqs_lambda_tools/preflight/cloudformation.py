"""A deployment model from a CloudFormation template: SAM, plain CFN, or CDK synth output.

Reads ``AWS::SQS::Queue``, ``AWS::Lambda::Function``, ``AWS::Lambda::EventSourceMapping``,
``AWS::DynamoDB::Table``, ``AWS::CloudWatch::Alarm`` (what ``cdk synth`` writes) and SAM's
``AWS::Serverless::Function`` with ``Events: {Type: SQS}`` (and its ``Globals``), in YAML
with short tags (``!GetAtt``, ``!Ref``) or JSON. ``!Ref``/``!GetAtt`` between resources
are followed; a ``!Ref`` to a parameter takes the parameter's ``Default``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from collections.abc import Mapping as AnyMapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import yaml

from .. import cfn_yaml
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

SQS_ARN = re.compile(r"^arn:[\w-]+:sqs:[\w-]+:\d+:(?P<name>[\w.-]+)$")
CDK_TEMPLATES = "*.template.json"
QUEUE = "AWS::SQS::Queue"
TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")
FUNCTION_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")
# What ``!Ref`` gives for each type ("Return values" of each resource's page).
_REF_GIVES: dict[str, Literal["name", "url"]] = {
    QUEUE: "url",
    "AWS::DynamoDB::Table": "name",
    "AWS::Serverless::SimpleTable": "name",
    "AWS::Lambda::Function": "name",
    "AWS::Serverless::Function": "name",
}
_GETATT_GIVES: dict[str, Literal["name", "url", "arn"]] = {
    "Arn": "arn",
    "QueueName": "name",
    "QueueUrl": "url",
}


def parse(text: str, source: str) -> dict[str, Any]:
    """A template's text (JSON or YAML with short tags) as a mapping with ``Resources``."""
    try:
        data = cfn_yaml.load(text)
    except yaml.YAMLError as error:
        raise SourceError(f"{source}: not valid YAML or JSON: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise SourceError(f"{source}: no Resources mapping: not a CloudFormation template")
    return data


def load_template(path: Path) -> Deployment:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SourceError(f"{path}: cannot read the template: {error.strerror}") from error
    return from_template(parse(text, str(path)), str(path))


def load_cdk_out(directory: Path) -> list[Deployment]:
    """One deployment per stack template of a CDK cloud assembly (``cdk synth``'s output)."""
    templates = sorted(directory.glob(CDK_TEMPLATES)) if directory.is_dir() else []
    if not templates:
        raise SourceError(
            f"{directory}: no {CDK_TEMPLATES} here: not a CDK cloud assembly (run `cdk synth`)"
        )
    return [load_template(path) for path in templates]


def from_template(template: dict[str, Any], source: str) -> Deployment:
    return _Reader(template, source).deployment()


class _Reader:
    def __init__(self, template: dict[str, Any], source: str) -> None:
        self.source = source
        self.resources: dict[str, Any] = template["Resources"]
        parameters = template.get("Parameters")
        self.parameters: dict[str, Any] = parameters if isinstance(parameters, dict) else {}
        globals_ = template.get("Globals")
        function_globals = globals_.get("Function") if isinstance(globals_, dict) else None
        self.function_globals: dict[str, Any] = (
            function_globals if isinstance(function_globals, dict) else {}
        )
        self.notes: list[str] = []

    # -- values -----------------------------------------------------------------------

    def _where(self, logical_id: str, field: str) -> str:
        return f"{self.source}: Resources.{logical_id}.{field}"

    def _fields_of(self, logical_id: str, prefix: str = "") -> Callable[[str], str]:
        """Names a field of the resource in messages: ``<file>: Resources.X.<prefix>.<field>``."""
        return lambda field: self._where(logical_id, f"{prefix}.{field}" if prefix else field)

    def _parameter(self, value: Any) -> Any:
        """A ``!Ref`` to a parameter is its Default; anything else is itself."""
        if isinstance(value, dict) and set(value) == {"Ref"}:
            parameter = self.parameters.get(value["Ref"])
            if isinstance(parameter, dict) and "Default" in parameter:
                return parameter["Default"]
        return value

    def _int(self, value: Any, where: str) -> int | None:
        return as_int(self._parameter(value), where, "or a !Ref to a parameter with a Default")

    def _bool(self, value: Any, where: str) -> bool | None:
        return as_bool(self._parameter(value), where)

    def _text(self, value: Any) -> str | None:
        """A literal string (or a parameter's Default); None for anything a deploy resolves."""
        value = self._parameter(value)
        return value if isinstance(value, str) else None

    def _lenient_int(self, value: Any) -> int | None:
        """A number the rules do not need: unknown (None) when it is not a literal."""
        try:
            return as_int(self._parameter(value), "", "")
        except SourceError:
            return None

    def _type_of(self, logical_id: str) -> str | None:
        resource = self.resources.get(logical_id)
        kind = resource.get("Type") if isinstance(resource, dict) else None
        return kind if isinstance(kind, str) else None

    def _value(self, value: Any) -> Value:
        """An environment variable's value: a literal, a reference to a resource of this
        template (or the region), or None when only a deploy knows it (``!Sub``, ``!If``)."""
        value = self._parameter(value)
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, str | int | float):
            return str(value)
        if not isinstance(value, dict) or len(value) != 1:
            return None
        if "Ref" in value:
            target = value["Ref"]
            if target == REGION:
                return Reference(REGION, "value")
            gives = _REF_GIVES.get(self._type_of(str(target)) or "")
            return Reference(str(target), gives) if gives else None
        attribute = value.get("Fn::GetAtt")
        if isinstance(attribute, list) and len(attribute) == 2:
            target, name = (str(part) for part in attribute)
            gives_attribute = _GETATT_GIVES.get(name)
            if gives_attribute is not None and self._type_of(target) is not None:
                return Reference(target, gives_attribute)
        return None

    def _target(self, value: Any) -> str | None:
        """The logical id a ``!Ref``/``!GetAtt`` names, or a literal string (name or ARN)."""
        value = self._parameter(value)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and "Ref" in value:
            return str(value["Ref"])
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            attribute = value["Fn::GetAtt"]
            if isinstance(attribute, list) and attribute:
                return str(attribute[0])
            if isinstance(attribute, str):
                return attribute.split(".", 1)[0]
        return None

    def _of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        found = {}
        for logical_id, resource in self.resources.items():
            if isinstance(resource, dict) and resource.get("Type") == kind:
                properties = resource.get("Properties") or {}
                if not isinstance(properties, dict):
                    raise SourceError(f"{self._where(logical_id, 'Properties')}: not a mapping")
                found[logical_id] = properties
        return found

    # -- resources --------------------------------------------------------------------

    def deployment(self) -> Deployment:
        queue_properties = self._of_type("AWS::SQS::Queue")
        # Literal names and ARNs (a hand-written template's) find the queue they name.
        self.queue_names = {
            name: logical_id
            for logical_id, properties in queue_properties.items()
            if (name := self._text(properties.get("QueueName"))) is not None
        }
        queues = {
            logical_id: self._queue(logical_id, properties)
            for logical_id, properties in queue_properties.items()
        }
        functions: dict[str, Function] = {}
        self.function_names: dict[str, str] = {}
        mappings: list[Mapping] = []
        for logical_id, properties in self._of_type("AWS::Lambda::Function").items():
            functions[logical_id] = self._function(logical_id, properties, sam=False)
        for logical_id, properties in self._of_type("AWS::Serverless::Function").items():
            functions[logical_id] = self._function(logical_id, properties, sam=True)
            mappings.extend(self._sam_events(logical_id, properties, queues))
        for logical_id, properties in self._of_type("AWS::Lambda::EventSourceMapping").items():
            mapping = self._mapping(logical_id, properties, queues, functions)
            if mapping is not None:
                mappings.append(mapping)
        queues = {key: self._link_redrive(queue, queues) for key, queue in queues.items()}
        return Deployment(
            source=self.source,
            queues=queues,
            functions=functions,
            mappings=tuple(mappings),
            alarmed_queues=self._alarmed(queues),
            notes=tuple(self.notes),
            tables=self._tables(),
        )

    def _queue(self, logical_id: str, properties: dict[str, Any]) -> Queue:
        name = self._text(properties.get("QueueName"))
        fifo = self._bool(properties.get("FifoQueue"), self._where(logical_id, "FifoQueue"))
        sse = self._bool(
            properties.get("SqsManagedSseEnabled"),
            self._where(logical_id, "SqsManagedSseEnabled"),
        )
        if properties.get("KmsMasterKeyId") is not None:
            sse = True
        visibility = self._int(
            properties.get("VisibilityTimeout"), self._where(logical_id, "VisibilityTimeout")
        )
        retention = self._int(
            properties.get("MessageRetentionPeriod"),
            self._where(logical_id, "MessageRetentionPeriod"),
        )
        label = f"{logical_id} ({name})" if isinstance(name, str) else logical_id
        deduplication = self._bool_or_none(properties.get("ContentBasedDeduplication"))
        return Queue(
            key=logical_id,
            label=label,
            name=name,
            content_based_deduplication=bool(deduplication),
            fifo=bool(fifo) or (isinstance(name, str) and name.endswith(".fifo")),
            visibility_timeout=(
                DEFAULT_VISIBILITY_TIMEOUT_SECONDS if visibility is None else visibility
            ),
            retention=DEFAULT_RETENTION_SECONDS if retention is None else retention,
            sse=sse,
            redrive=self._redrive(logical_id, properties.get("RedrivePolicy")),
        )

    def _redrive(self, logical_id: str, policy: Any) -> Redrive | None:
        where = self._where(logical_id, "RedrivePolicy")
        if policy is None:
            return None
        if isinstance(policy, str):
            try:
                policy = json.loads(policy)
            except ValueError as error:
                raise SourceError(f"{where}: not a JSON object: {error}") from error
        if not isinstance(policy, dict):
            raise SourceError(f"{where}: expected a mapping, got {policy!r}")
        if policy.get("deadLetterTargetArn") is None:
            raise SourceError(f"{where}.deadLetterTargetArn: missing")
        # A computed ARN (!Sub, !ImportValue) names no resource here: noted, not checked.
        target = self._target(policy["deadLetterTargetArn"]) or "(a computed ARN)"
        count = self._int(policy.get("maxReceiveCount"), f"{where}.maxReceiveCount")
        if count is None:
            raise SourceError(f"{where}.maxReceiveCount: missing")
        return Redrive(target=target, max_receive_count=count)

    def _queue_key(self, reference: str | None, queues: dict[str, Queue]) -> str | None:
        """A queue's key from a logical id or a literal ARN; None when it is no SQS queue."""
        if reference is None:
            return None
        if reference in queues:
            return reference
        match = SQS_ARN.match(reference)
        if match is None:
            return None
        return self.queue_names.get(match["name"], reference)

    def _link_redrive(self, queue: Queue, queues: dict[str, Queue]) -> Queue:
        if queue.redrive is None:
            return queue
        target = self._queue_key(queue.redrive.target, queues) or queue.redrive.target
        if target not in queues:
            self.notes.append(
                f"{queue.label}: its DLQ {target} is not in this template: its type, "
                "retention, encryption and alarm were not checked"
            )
        return replace(queue, redrive=Redrive(target, queue.redrive.max_receive_count))

    def _function(self, logical_id: str, properties: dict[str, Any], *, sam: bool) -> Function:
        settings = {**self.function_globals, **properties} if sam else properties
        name = self._text(settings.get("FunctionName"))
        if isinstance(name, str):
            self.function_names[name] = logical_id
        timeout = self._int(settings.get("Timeout"), self._where(logical_id, "Timeout"))
        reserved = self._int(
            settings.get("ReservedConcurrentExecutions"),
            self._where(logical_id, "ReservedConcurrentExecutions"),
        )
        # SAM names the function-level DLQ DeadLetterQueue; CloudFormation DeadLetterConfig.
        dead_letter = settings.get("DeadLetterQueue" if sam else "DeadLetterConfig")
        target = None
        if isinstance(dead_letter, dict):
            target = self._target(dead_letter.get("TargetArn")) or "(unresolved)"
        architectures = self._parameter(settings.get("Architectures"))
        architecture: str | None = None
        if architectures is None:
            architecture = DEFAULT_ARCHITECTURE
        elif isinstance(architectures, list) and len(architectures) == 1:
            architecture = self._text(architectures[0])
        memory = settings.get("MemorySize")
        return Function(
            key=logical_id,
            label=f"{logical_id} ({name})" if isinstance(name, str) else logical_id,
            timeout=DEFAULT_FUNCTION_TIMEOUT_SECONDS if timeout is None else timeout,
            reserved_concurrency=reserved,
            dead_letter_target=target,
            name=name,
            handler=self._text(settings.get("Handler")),
            runtime=self._text(settings.get("Runtime")),
            architecture=architecture,
            memory=DEFAULT_MEMORY_MB if memory is None else self._lenient_int(memory),
            # SAM: CodeUri, a folder (or an S3 location: unknown here); CloudFormation: a
            # folder only before `aws cloudformation package` (else S3Bucket/S3Key, ZipFile).
            code=self._text(settings.get("CodeUri" if sam else "Code")),
            environment=self._environment(settings, sam=sam),
        )

    def _environment(self, settings: dict[str, Any], *, sam: bool) -> dict[str, Value] | None:
        variables: dict[str, Any] = {}
        # SAM merges the Globals' variables with the function's own (the function's win).
        layers = [self.function_globals, settings] if sam else [settings]
        for layer in layers:
            environment = layer.get("Environment")
            if environment is None:
                continue
            declared = environment.get("Variables") if isinstance(environment, dict) else None
            if declared is None:
                continue
            if not isinstance(declared, dict) or any(key.startswith("Fn::") for key in declared):
                return None  # the whole map is computed (!If, a transform): unknown
            variables.update(declared)
        return {str(name): self._value(value) for name, value in variables.items()}

    def _tables(self) -> dict[str, Table]:
        tables: dict[str, Table] = {}
        for kind in TABLE_TYPES:
            for logical_id, properties in self._of_type(kind).items():
                name = self._text(properties.get("TableName"))
                if kind == "AWS::Serverless::SimpleTable":
                    primary = properties.get("PrimaryKey")
                    # SimpleTable's default key: a string "id".
                    key = self._text(primary.get("Name")) if isinstance(primary, dict) else "id"
                    ttl = None
                else:
                    key = self._hash_key(properties.get("KeySchema"))
                    ttl = self._ttl(properties.get("TimeToLiveSpecification"))
                tables[logical_id] = Table(
                    key=logical_id,
                    label=f"{logical_id} ({name})" if name else logical_id,
                    name=name,
                    partition_key=key,
                    ttl_attribute=ttl,
                )
        return tables

    def _hash_key(self, schema: Any) -> str | None:
        schema = self._parameter(schema)
        for element in schema if isinstance(schema, list) else ():
            if isinstance(element, dict) and element.get("KeyType") == "HASH":
                return self._text(element.get("AttributeName"))
        return None

    def _ttl(self, specification: Any) -> str | None:
        if not isinstance(specification, dict):
            return None
        if self._bool_or_none(specification.get("Enabled")) is not True:
            return None
        return self._text(specification.get("AttributeName"))

    def _bool_or_none(self, value: Any) -> bool | None:
        try:
            return as_bool(self._parameter(value), "")
        except SourceError:
            return None

    def _sam_events(
        self, logical_id: str, properties: dict[str, Any], queues: dict[str, Queue]
    ) -> list[Mapping]:
        events = properties.get("Events") or {}
        mappings = []
        for event_id, event in events.items() if isinstance(events, dict) else ():
            if not isinstance(event, dict) or event.get("Type") != "SQS":
                continue
            settings = event.get("Properties") or {}
            prefix = f"Events.{event_id}.Properties"
            mapping = self._mapping_from(
                f"{logical_id}.Events.{event_id}",
                logical_id,
                settings.get("Queue"),
                settings,
                self._fields_of(logical_id, prefix),
                queues,
            )
            if mapping is not None:
                mappings.append(mapping)
        return mappings

    def _mapping(
        self,
        logical_id: str,
        properties: dict[str, Any],
        queues: dict[str, Queue],
        functions: dict[str, Function],
    ) -> Mapping | None:
        function = self._target(properties.get("FunctionName"))
        if function is not None and function not in functions:
            # A literal name or ARN: the function with that FunctionName, if declared here.
            function = self.function_names.get(function.rsplit(":", 1)[-1], function)
        return self._mapping_from(
            logical_id,
            function or "(unresolved)",
            properties.get("EventSourceArn"),
            properties,
            self._fields_of(logical_id),
            queues,
        )

    def _mapping_from(
        self,
        label: str,
        function: str,
        source: Any,
        settings: dict[str, Any],
        where: Callable[[str], str],
        queues: dict[str, Queue],
    ) -> Mapping | None:
        queue = self._queue_key(self._target(source), queues)
        if queue is None:
            return None  # not an SQS source (Kinesis, DynamoDB streams, ...)
        if queue not in queues:
            self.notes.append(
                f"{label}: its queue {queue} is not in this template: the queue rules "
                "were not checked"
            )
        batch_size = self._int(settings.get("BatchSize"), where("BatchSize"))
        window = self._int(
            settings.get("MaximumBatchingWindowInSeconds"), where("MaximumBatchingWindowInSeconds")
        )
        scaling = settings.get("ScalingConfig")
        maximum = (
            self._int(scaling.get("MaximumConcurrency"), where("ScalingConfig.MaximumConcurrency"))
            if isinstance(scaling, dict)
            else None
        )
        response_types = settings.get("FunctionResponseTypes") or []
        if not isinstance(response_types, list):
            raise SourceError(f"{where('FunctionResponseTypes')}: expected a list")
        return Mapping(
            label=label,
            queue=queue,
            function=function,
            batch_size=DEFAULT_BATCH_SIZE if batch_size is None else batch_size,
            batching_window=DEFAULT_BATCHING_WINDOW_SECONDS if window is None else window,
            response_types=tuple(str(kind) for kind in response_types),
            maximum_concurrency=maximum,
        )

    def _alarmed(self, queues: dict[str, Queue]) -> frozenset[str]:
        """The queues an alarm watches: an AWS/SQS metric whose QueueName dimension is theirs."""
        alarmed: set[str] = set()
        for properties in self._of_type("AWS::CloudWatch::Alarm").values():
            metrics: list[AnyMapping[str, Any]] = [properties]
            for query in properties.get("Metrics") or []:
                stat = query.get("MetricStat") if isinstance(query, dict) else None
                if isinstance(stat, dict) and isinstance(stat.get("Metric"), dict):
                    metrics.append(stat["Metric"])
            for metric in metrics:
                if metric.get("Namespace") != "AWS/SQS":
                    continue
                for dimension in metric.get("Dimensions") or []:
                    if isinstance(dimension, dict) and dimension.get("Name") == "QueueName":
                        target = self._target(dimension.get("Value"))
                        if target in queues:
                            alarmed.add(target)
                        elif target in self.queue_names:
                            alarmed.add(self.queue_names[target])
        return frozenset(alarmed)
