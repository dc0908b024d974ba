"""The rules an SQS-to-Lambda deployment must follow, each with an id, a severity and a fix.

Each rule reads a :class:`.model.Deployment` and yields a :class:`Finding` per resource
that breaks it. The numbers are AWS's ("Lambda parameters for Amazon SQS event source
mappings", "Using dead-letter queues", "Handling errors for an SQS event source", the
Compute Blog's "Introducing maximum concurrency of AWS Lambda functions when using Amazon
SQS as an event source"). ``error`` findings make ``preflight`` exit 1: AWS refuses the
setting or the pattern loses or mishandles messages; ``warning`` findings are risks.

SQSL013 is not AWS's: it compares the project's settings table with its own IaC, since
the local tools run the function with the table's settings and a deploy with the IaC's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .model import LIVE_SOURCE, REGION, Deployment, Function, Mapping, Queue, Reference, Value

if TYPE_CHECKING:
    from ..project import Project

Severity = Literal["error", "warning"]

# AWS: the queue's visibility timeout at least 6 x the function timeout (plus the window),
# so a batch retried after a throttle is not redelivered while still running.
VISIBILITY_FACTOR = 6
# AWS: with reserved concurrency, maxReceiveCount at least 5 (throttled receives count).
MIN_RECEIVES_WITH_RESERVED = 5
# Our bound: one receive means one timeout or throttle dead-letters a healthy message.
MIN_RECEIVES = 2
# A mapping's batch size above this needs a batching window; a FIFO mapping allows no more.
UNWINDOWED_BATCH_MAX = 10
FIFO_BATCH_MAX = 10
PARTIAL_BATCH_RESPONSE = "ReportBatchItemFailures"


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    resource: str
    message: str
    fix: str


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str  # as documented: "error", "warning" or "error / warning"
    summary: str
    check: Callable[[Deployment], Iterator[Finding]]


def _mapped(deployment: Deployment) -> Iterator[tuple[Mapping, Queue | None, Function | None]]:
    for mapping in deployment.mappings:
        yield (
            mapping,
            deployment.queues.get(mapping.queue),
            deployment.functions.get(mapping.function),
        )


def visibility_timeout(deployment: Deployment) -> Iterator[Finding]:
    for mapping, queue, function in _mapped(deployment):
        if queue is None or function is None:
            continue
        advised = VISIBILITY_FACTOR * function.timeout + mapping.batching_window
        if queue.visibility_timeout < function.timeout:
            yield Finding(
                "SQSL001",
                "error",
                queue.label,
                f"visibility timeout {queue.visibility_timeout} s is below the timeout of "
                f"{function.label} ({function.timeout} s): AWS refuses the mapping, and a "
                "running batch would be delivered again",
                f"set the queue's visibility timeout to at least {advised} s ({VISIBILITY_FACTOR}"
                f" x {function.timeout} s + {mapping.batching_window} s batching window)",
            )
        elif queue.visibility_timeout < VISIBILITY_FACTOR * function.timeout:
            yield Finding(
                "SQSL001",
                "warning",
                queue.label,
                f"visibility timeout {queue.visibility_timeout} s is below {VISIBILITY_FACTOR} x "
                f"the timeout of {function.label} ({function.timeout} s): a batch retried "
                "after throttling can reappear while still being processed",
                f"set the queue's visibility timeout to at least {advised} s",
            )


def redrive_present(deployment: Deployment) -> Iterator[Finding]:
    for _, queue, _ in _mapped(deployment):
        if queue is not None and queue.redrive is None:
            yield Finding(
                "SQSL002",
                "error",
                queue.label,
                "no redrive policy: a message that always fails is retried until its "
                "retention expires, blocking its FIFO group or wasting invocations",
                "add a RedrivePolicy with deadLetterTargetArn (a DLQ) and maxReceiveCount",
            )


def _redrives(deployment: Deployment) -> Iterator[tuple[Queue, Queue]]:
    """(source, DLQ) for each mapped queue whose DLQ is in the deployment."""
    seen: set[str] = set()
    for _, queue, _ in _mapped(deployment):
        if queue is None or queue.redrive is None or queue.key in seen:
            continue
        seen.add(queue.key)
        dlq = deployment.queues.get(queue.redrive.target)
        if dlq is not None:
            yield queue, dlq


def dlq_type(deployment: Deployment) -> Iterator[Finding]:
    for queue, dlq in _redrives(deployment):
        if queue.fifo != dlq.fifo:
            kinds = {True: "FIFO", False: "standard"}
            yield Finding(
                "SQSL003",
                "error",
                queue.label,
                f"a {kinds[queue.fifo]} queue with a {kinds[dlq.fifo]} DLQ {dlq.label}: "
                "SQS requires the same type",
                f"make the DLQ a {kinds[queue.fifo]} queue",
            )


def dlq_retention(deployment: Deployment) -> Iterator[Finding]:
    for queue, dlq in _redrives(deployment):
        # A standard queue's message keeps its enqueue time in the DLQ; FIFO's resets.
        if not queue.fifo and dlq.retention <= queue.retention:
            yield Finding(
                "SQSL004",
                "error",
                dlq.label,
                f"DLQ retention {dlq.retention} s is not above the retention of "
                f"{queue.label} ({queue.retention} s): a dead-lettered message keeps its "
                "original enqueue time and expires early",
                f"set the DLQ's retention above {queue.retention} s (1209600 s is the maximum)",
            )


def max_receive_count(deployment: Deployment) -> Iterator[Finding]:
    seen: set[str] = set()
    for _, queue, function in _mapped(deployment):
        if queue is None or queue.redrive is None or queue.key in seen:
            continue
        seen.add(queue.key)
        count = queue.redrive.max_receive_count
        reserved = function.reserved_concurrency if function is not None else None
        if reserved is not None and count < MIN_RECEIVES_WITH_RESERVED:
            yield Finding(
                "SQSL005",
                "error",
                queue.label,
                f"maxReceiveCount {count} with reserved concurrency {reserved}: throttled "
                "receives count too, so healthy messages reach the DLQ",
                f"set maxReceiveCount to at least {MIN_RECEIVES_WITH_RESERVED}",
            )
        elif count < MIN_RECEIVES:
            yield Finding(
                "SQSL005",
                "warning",
                queue.label,
                f"maxReceiveCount {count}: one timeout or throttled downstream call sends "
                "a healthy message to the DLQ",
                f"set maxReceiveCount to at least {MIN_RECEIVES} (5 is a common choice)",
            )
        elif count * queue.visibility_timeout >= queue.retention:
            yield Finding(
                "SQSL005",
                "warning",
                queue.label,
                f"maxReceiveCount {count} x visibility timeout {queue.visibility_timeout} s "
                f"is not below the retention ({queue.retention} s): a failing message "
                "expires before it reaches the DLQ",
                "lower maxReceiveCount or raise the queue's retention",
            )


def partial_batch_response(deployment: Deployment) -> Iterator[Finding]:
    for mapping in deployment.mappings:
        if PARTIAL_BATCH_RESPONSE not in mapping.response_types:
            yield Finding(
                "SQSL006",
                "error",
                mapping.label,
                "FunctionResponseTypes lacks ReportBatchItemFailures: Lambda ignores the "
                "handler's batchItemFailures and deletes the whole batch, failures included",
                "set FunctionResponseTypes: [ReportBatchItemFailures] on the mapping",
            )


def concurrency_cap(deployment: Deployment) -> Iterator[Finding]:
    for mapping, _, function in _mapped(deployment):
        reserved = function.reserved_concurrency if function is not None else None
        maximum = mapping.maximum_concurrency
        if reserved == 0:
            yield Finding(
                "SQSL007",
                "error",
                function.label if function is not None else mapping.label,
                "reserved concurrency 0: every invocation is throttled, messages only "
                "age toward the DLQ",
                "remove the reservation or set it at least to MaximumConcurrency",
            )
        elif maximum is None and reserved is None:
            yield Finding(
                "SQSL007",
                "warning",
                mapping.label,
                "no concurrency cap: the mapping scales up to the account's unreserved "
                "concurrency, and the downstream takes the whole load",
                "set ScalingConfig.MaximumConcurrency (2-1000) on the mapping",
            )
        elif maximum is None:
            yield Finding(
                "SQSL007",
                "warning",
                mapping.label,
                f"only reserved concurrency ({reserved}) caps the function: the mapping "
                "is throttled, and throttled messages drift to the DLQ",
                f"set ScalingConfig.MaximumConcurrency to at most {reserved}",
            )
        elif reserved is not None and maximum > reserved:
            yield Finding(
                "SQSL007",
                "error",
                mapping.label,
                f"MaximumConcurrency {maximum} is above the reserved concurrency "
                f"({reserved}): the mapping is throttled and healthy messages drift to the DLQ",
                f"set MaximumConcurrency to at most {reserved}, or reserve at least {maximum}",
            )


def batching_window(deployment: Deployment) -> Iterator[Finding]:
    for mapping, queue, _ in _mapped(deployment):
        fifo = queue is not None and queue.fifo
        if not fifo and mapping.batch_size > UNWINDOWED_BATCH_MAX and mapping.batching_window < 1:
            yield Finding(
                "SQSL008",
                "error",
                mapping.label,
                f"batch size {mapping.batch_size} with a batching window of "
                f"{mapping.batching_window} s: AWS refuses a batch size above "
                f"{UNWINDOWED_BATCH_MAX} without a window",
                "set MaximumBatchingWindowInSeconds to at least 1",
            )


def fifo_batch_size(deployment: Deployment) -> Iterator[Finding]:
    for mapping, queue, _ in _mapped(deployment):
        if queue is not None and queue.fifo and mapping.batch_size > FIFO_BATCH_MAX:
            yield Finding(
                "SQSL009",
                "error",
                mapping.label,
                f"batch size {mapping.batch_size} on the FIFO queue {queue.label}: AWS "
                f"allows at most {FIFO_BATCH_MAX}",
                f"set BatchSize to {FIFO_BATCH_MAX} or less",
            )


def function_dead_letter(deployment: Deployment) -> Iterator[Finding]:
    mapped = {mapping.function for mapping in deployment.mappings}
    for key in sorted(mapped):
        function = deployment.functions.get(key)
        if function is not None and function.dead_letter_target is not None:
            yield Finding(
                "SQSL010",
                "warning",
                function.label,
                "a function-level DeadLetterConfig: it applies to asynchronous invocations "
                "only and never receives a message of this mapping",
                "remove DeadLetterConfig; the source queue's RedrivePolicy is the DLQ",
            )


def queue_encryption(deployment: Deployment) -> Iterator[Finding]:
    """Only a queue declared unencrypted is a finding: since October 2022 SQS encrypts every
    new queue with SSE-SQS unless it is told not to ("Encryption at rest in Amazon SQS"),
    so an IaC that says nothing gets encryption."""
    keys: list[str] = []
    for mapping in deployment.mappings:
        keys.append(mapping.queue)
    keys.extend(deployment.dead_letter_queues())
    for key in dict.fromkeys(keys):
        queue = deployment.queues.get(key)
        if queue is None or queue.sse is not False:
            continue
        yield Finding(
            "SQSL011",
            "warning",
            queue.label,
            "server-side encryption disabled (SqsManagedSseEnabled: false, no KMS key): "
            "messages are stored unencrypted",
            "remove SqsManagedSseEnabled: false (SSE-SQS is the default), or set a KmsMasterKeyId",
        )


def dlq_alarm(deployment: Deployment) -> Iterator[Finding]:
    for key, dlq in deployment.dead_letter_queues().items():
        if dlq is not None and key not in deployment.alarmed_queues:
            yield Finding(
                "SQSL012",
                "warning",
                dlq.label,
                "no CloudWatch alarm on this DLQ: dead-lettered messages go unnoticed "
                "until their retention expires",
                "add an alarm on AWS/SQS ApproximateNumberOfMessagesVisible > 0 for the DLQ",
            )


# --- SQSL013: the settings table and the IaC ----------------------------------------------

_PLACEHOLDER = re.compile(r"\{([a-z]+(?:\.[A-Za-z0-9_-]+)?)\}")
# What one environment value stands for, comparable across sources: a literal, or
# (kind, name, attribute) of a queue, table or function, or the deploy's region.
_Meaning = tuple[str, ...]
_REGION_MEANING: _Meaning = ("region",)


def settings_drift(deployment: Deployment) -> Iterator[Finding]:
    """Each setting that the project's settings table and its IaC both declare, and that
    differs (SQSL013). Values only a deploy knows are not compared."""
    project = deployment.settings
    if project is None:
        return
    chosen = _project_mapping(deployment, project)
    if chosen is None:
        return
    mapping, queue, function = chosen
    drift = _Drift(project, _shown(deployment.source, project.root))
    if function is not None:
        settings = project.function
        resource = function.label
        drift.compare("function", "name", settings.name, function.name, resource)
        drift.compare("function", "handler", settings.handler, function.handler, resource)
        drift.compare("function", "runtime", settings.runtime, function.runtime, resource)
        drift.compare(
            "function", "architecture", settings.architecture, function.architecture, resource
        )
        drift.compare("function", "timeout", settings.timeout_seconds, function.timeout, resource)
        drift.compare("function", "memory", settings.memory_mb, function.memory, resource)
        for variable, template in settings.environment.items():
            if function.environment is not None and variable in function.environment:
                found = function.environment[variable]
                drift.environment(variable, template, found, deployment, resource)
    drift.compare(
        "mapping", "batch_size", project.mapping.batch_size, mapping.batch_size, mapping.label
    )
    drift.compare(
        "mapping",
        "batching_window",
        project.mapping.batching_window_seconds,
        mapping.batching_window,
        mapping.label,
    )
    if project.mapping.maximum_concurrency is not None:
        drift.compare(
            "mapping",
            "maximum_concurrency",
            project.mapping.maximum_concurrency,
            mapping.maximum_concurrency,
            mapping.label,
            absent="no MaximumConcurrency",
        )
    if queue is not None:
        declared = project.queue
        drift.compare("queue", "name", declared.name, queue.name, queue.label)
        drift.compare("queue", "fifo", declared.fifo, queue.fifo, queue.label)
        drift.compare(
            "queue",
            "visibility_timeout",
            declared.visibility_timeout_seconds,
            queue.visibility_timeout,
            queue.label,
        )
        drift.compare(
            "queue", "retention", declared.retention_seconds, queue.retention, queue.label
        )
        if declared.fifo and queue.fifo:
            drift.compare(
                "queue",
                "content_based_deduplication",
                declared.content_based_deduplication,
                queue.content_based_deduplication,
                queue.label,
            )
        if queue.redrive is not None:
            drift.compare(
                "dlq",
                "max_receive_count",
                project.dlq.max_receive_count,
                queue.redrive.max_receive_count,
                queue.label,
            )
            dlq = deployment.queues.get(queue.redrive.target)
            if dlq is not None:
                drift.compare("dlq", "name", project.dlq.name, dlq.name, dlq.label)
                drift.compare(
                    "dlq", "retention", project.dlq.retention_seconds, dlq.retention, dlq.label
                )
    drift.tables(deployment)
    yield from drift.findings


def _project_mapping(
    deployment: Deployment, project: Project
) -> tuple[Mapping, Queue | None, Function | None] | None:
    """The mapping the settings describe: the only one, or the one of the project's queue
    or function; None when the source does not say which."""
    mapped = list(_mapped(deployment))
    if len(mapped) == 1:
        return mapped[0]
    by_queue = [entry for entry in mapped if entry[1] and entry[1].name == project.queue.name]
    if len(by_queue) == 1:
        return by_queue[0]
    by_function = [entry for entry in mapped if entry[2] and entry[2].name == project.function.name]
    return by_function[0] if len(by_function) == 1 else None


def _shown(source: str, root: Path) -> str:
    """How the drift's message names the source: its path in the project, or the live
    deployment."""
    if source.startswith(LIVE_SOURCE):
        return "the deployment"
    try:
        return str(Path(source).resolve().relative_to(root.resolve()))
    except ValueError:
        return source


def _format(value: object) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


class _Drift:
    """The findings of one comparison, worded as
    ``pyproject.toml [tool.sqsl.mapping] batch_size is 10, template.yaml says 20``."""

    def __init__(self, project: Project, iac: str) -> None:
        self.project = project
        self.iac = iac
        self.findings: list[Finding] = []

    def _add(self, section: str, key: str, declared: str, found: str, resource: str) -> None:
        self.findings.append(
            Finding(
                "SQSL013",
                "error",
                resource,
                f"pyproject.toml [tool.sqsl.{section}] {key} is {declared}, {self.iac} says "
                f"{found}: the local tools run with one, a deploy with the other",
                f"make them agree: change [tool.sqsl.{section}] {key} or {self.iac}",
            )
        )

    def compare(
        self,
        section: str,
        key: str,
        declared: object,
        found: object,
        resource: str,
        *,
        absent: str | None = None,
    ) -> None:
        """A finding when both are known and differ (``absent``: how the IaC's None reads,
        when None is a setting of its own rather than unknown)."""
        if found is None and absent is None:
            return
        if declared != found:
            shown = absent if found is None and absent is not None else _format(found)
            self._add(section, key, _format(declared), shown, resource)

    def environment(
        self, variable: str, template: str, found: Value, deployment: Deployment, resource: str
    ) -> None:
        expected = self._declared_meaning(template)
        actual = _found_meaning(found, deployment)
        if expected is None or actual is None or _same(expected, actual, self.project):
            return
        shown = _format(found) if isinstance(found, str) else _describe(actual)
        self._add("function.environment", variable, _format(template), shown, resource)

    def _declared_meaning(self, template: str) -> _Meaning | None:
        """What a value of the table stands for; None when only a run knows (a URL inside
        a longer text)."""
        project = self.project
        whole = _PLACEHOLDER.fullmatch(template)
        if whole is not None:
            return _placeholder_meaning(whole.group(1), project)
        names = {
            "queue.name": project.queue.name,
            "dlq.name": project.dlq.name,
            "function.name": project.function.name,
            "region": project.region,
            **{f"tables.{key}": table.name for key, table in project.tables.items()},
        }
        unknown = [name for name in _PLACEHOLDER.findall(template) if name not in names]
        if unknown:
            return None
        return ("literal", _PLACEHOLDER.sub(lambda match: names[match.group(1)], template))

    def tables(self, deployment: Deployment) -> None:
        found = {table.name: table for table in deployment.tables.values()}
        for key, declared in self.project.tables.items():
            section = f"tables.{key}"
            table = found.get(declared.name)
            if table is None:
                names = sorted(name for name in found if name is not None)
                if names and None not in found:
                    self._add(
                        section,
                        "name",
                        _format(declared.name),
                        "no table of that name (its tables: "
                        + ", ".join(_format(name) for name in names)
                        + ")",
                        declared.name,
                    )
                continue
            self.compare(section, "key", declared.key, table.partition_key, table.label)
            self.compare(
                section,
                "ttl",
                declared.ttl_attribute,
                table.ttl_attribute,
                table.label,
                absent="no TTL",
            )


def _placeholder_meaning(name: str, project: Project) -> _Meaning | None:
    kind, _, attribute = name.partition(".")
    if kind == "queue":
        return ("queue", project.queue.name, attribute)
    if kind == "dlq":
        return ("queue", project.dlq.name, attribute)
    if kind == "tables" and attribute in project.tables:
        return ("table", project.tables[attribute].name, "name")
    if name == "function.name":
        return ("function", project.function.name, "name")
    if name == "region":
        return _REGION_MEANING
    return None


def _found_meaning(value: Value, deployment: Deployment) -> _Meaning | None:
    if value is None:
        return None
    if isinstance(value, str):
        return ("literal", value)
    return _reference_meaning(value, deployment)


def _reference_meaning(reference: Reference, deployment: Deployment) -> _Meaning | None:
    if reference.key == REGION:
        return _REGION_MEANING
    named: tuple[str, str | None] | None = None
    if reference.key in deployment.queues:
        named = ("queue", deployment.queues[reference.key].name)
    elif reference.key in deployment.tables:
        named = ("table", deployment.tables[reference.key].name)
    elif reference.key in deployment.functions:
        named = ("function", deployment.functions[reference.key].name)
    if named is None or named[1] is None:
        return None  # a resource CloudFormation names: which one the table means is unknown
    return (named[0], named[1], reference.attribute)


def _same(expected: _Meaning, actual: _Meaning, project: Project) -> bool:
    if expected == actual:
        return True
    literal, reference = (expected, actual) if expected[0] == "literal" else (actual, expected)
    if literal[0] != "literal" or reference[0] == "literal":
        return False
    text = literal[1]
    if reference == _REGION_MEANING:
        # The table's {region} against a literal: the table's region. A literal against the
        # IaC's region: the deploy's region is unknown here, so it is not a difference.
        return expected[0] == "literal" or text == project.region
    _, name, attribute = reference
    if attribute == "name":
        return text == name
    if attribute == "url":  # a live function's value: https://sqs.<region>.../<account>/<name>
        return text.endswith(f"/{name}")
    return text.endswith(f":{name}")  # an ARN


def _describe(meaning: _Meaning) -> str:
    if meaning == _REGION_MEANING:
        return "the region"
    kind, name, attribute = meaning
    return f"the {attribute} of the {kind} {_format(name)}"


RULES: tuple[Rule, ...] = (
    Rule(
        "SQSL001",
        "error / warning",
        "Visibility timeout >= 6 x function timeout (error below the function timeout)",
        visibility_timeout,
    ),
    Rule("SQSL002", "error", "The mapped queue has a redrive policy (a DLQ)", redrive_present),
    Rule("SQSL003", "error", "The DLQ has the source's type (FIFO with FIFO)", dlq_type),
    Rule("SQSL004", "error", "Standard queues: DLQ retention > source retention", dlq_retention),
    Rule(
        "SQSL005",
        "error / warning",
        "maxReceiveCount >= 5 with reserved concurrency (error), >= 2, and "
        "maxReceiveCount x visibility timeout < retention (warnings)",
        max_receive_count,
    ),
    Rule("SQSL006", "error", "ReportBatchItemFailures enabled", partial_batch_response),
    Rule(
        "SQSL007",
        "error / warning",
        "A concurrency cap (MaximumConcurrency), <= reserved concurrency when both; "
        "reserved concurrency 0 is an error",
        concurrency_cap,
    ),
    Rule("SQSL008", "error", "Batch size > 10 needs a batching window >= 1 s", batching_window),
    Rule("SQSL009", "error", "FIFO batch size <= 10", fifo_batch_size),
    Rule("SQSL010", "warning", "No function-level DeadLetterConfig", function_dead_letter),
    Rule("SQSL011", "warning", "No queue declared unencrypted", queue_encryption),
    Rule("SQSL012", "warning", "An alarm on the DLQ's depth", dlq_alarm),
    Rule(
        "SQSL013",
        "error",
        "The project's [tool.sqsl] settings agree with its IaC",
        settings_drift,
    ),
)


def evaluate(deployment: Deployment) -> list[Finding]:
    """Every finding of every rule, in rule order."""
    return [finding for rule in RULES for finding in rule.check(deployment)]
