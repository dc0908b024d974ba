"""The effective settings of one deployment: queues, functions, mappings, tables, alarms.

Every source fills these objects; the rules read nothing else. A setting a source leaves
out takes AWS's default (the ``DEFAULT_*`` values), as the deployed resource would.
Resources refer to one another by *key*: a template's logical id, a Terraform address or
an ARN, whatever identifies them within the source.

What a project's settings table also declares (names, handler, runtime, memory, the
function's environment, tables) is kept when the source gives it as a literal; a value
only a deploy knows (an unresolved intrinsic, a data source) is None, "unknown", never an
error. An environment value that names another resource of the source (``!Ref
OrdersTable``, ``aws_sqs_queue.dlq.url``) is a :class:`Reference` to it.
"""

from __future__ import annotations

from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ..project import Project

# AWS's defaults ("CreateQueue", "CreateFunction", "CreateEventSourceMapping" API pages).
DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 30
DEFAULT_RETENTION_SECONDS = 345600
DEFAULT_FUNCTION_TIMEOUT_SECONDS = 3
DEFAULT_BATCH_SIZE = 10
DEFAULT_BATCHING_WINDOW_SECONDS = 0
DEFAULT_MEMORY_MB = 128
DEFAULT_ARCHITECTURE = "x86_64"
#: How a live deployment's ``source`` starts: "live: <function> at <endpoint>".
LIVE_SOURCE = "live: "
#: The pseudo parameter ``AWS::Region`` (a :class:`Reference`'s key): the deploy's region.
REGION = "AWS::Region"


class SourceError(Exception):
    """The input cannot be read as a deployment; the message names the file and field."""


@dataclass(frozen=True)
class Redrive:
    """A queue's RedrivePolicy: where a message goes after ``max_receive_count`` receives."""

    target: str  # the DLQ's key (its ARN when it is not part of the source)
    max_receive_count: int


@dataclass(frozen=True)
class Reference:
    """A value that names a resource of the source: its key, and what of it.

    ``attribute`` is ``"name"``, ``"url"`` or ``"arn"`` (what ``!Ref`` gives depends on the
    type: a queue's URL, a table's or a function's name), or ``"value"`` for the pseudo
    parameter :data:`REGION`.
    """

    key: str
    attribute: Literal["name", "url", "arn", "value"]


#: An environment variable's value: a literal, a reference, or None (only a deploy knows).
Value = str | Reference | None


@dataclass(frozen=True)
class Queue:
    key: str
    label: str  # how findings name it: "SourceQueue (orders)", "aws_sqs_queue.source (orders)"
    fifo: bool
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT_SECONDS
    retention: int = DEFAULT_RETENTION_SECONDS
    # None: not declared, so encryption depends on the account's default for new queues.
    sse: bool | None = None
    redrive: Redrive | None = None
    name: str | None = None  # None: not a literal (CloudFormation names it, or a variable)
    content_based_deduplication: bool = False


@dataclass(frozen=True)
class Function:
    key: str
    label: str
    timeout: int = DEFAULT_FUNCTION_TIMEOUT_SECONDS
    reserved_concurrency: int | None = None  # None: unreserved (the account's pool)
    dead_letter_target: str | None = None  # a function-level DeadLetterConfig's target
    name: str | None = None
    handler: str | None = None
    runtime: str | None = None
    architecture: str | None = DEFAULT_ARCHITECTURE
    memory: int | None = DEFAULT_MEMORY_MB
    # Where the code is, as the source says it (SAM CodeUri, Code, filename); None: unknown.
    code: str | None = None
    # None: the source gives the variables as a whole only a deploy knows.
    environment: AnyMapping[str, Value] | None = field(default_factory=dict)


@dataclass(frozen=True)
class Table:
    """A DynamoDB table: its name, partition key and TTL attribute, where literal."""

    key: str
    label: str
    name: str | None = None
    partition_key: str | None = None
    ttl_attribute: str | None = None


@dataclass(frozen=True)
class Mapping:
    """An event source mapping from an SQS queue to a function."""

    label: str
    queue: str  # key of the queue
    function: str  # key of the function
    batch_size: int = DEFAULT_BATCH_SIZE
    batching_window: int = DEFAULT_BATCHING_WINDOW_SECONDS
    response_types: tuple[str, ...] = ()
    maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency


@dataclass(frozen=True)
class Deployment:
    source: str  # what was read, for the report: a path, or "live: <function> at <endpoint>"
    queues: dict[str, Queue] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)
    mappings: tuple[Mapping, ...] = ()
    # Keys of the queues an alarm watches (an AWS/SQS metric with their QueueName).
    alarmed_queues: frozenset[str] = frozenset()
    # What could not be checked and why (a queue outside the source, ...).
    notes: tuple[str, ...] = ()
    tables: dict[str, Table] = field(default_factory=dict)
    region: str | None = None  # where the source says it deploys (a Terraform provider's)
    # The settings table this deployment is checked against (SQSL013), when it is the
    # project's own and the project declares a [tool.sqsl] table.
    settings: Project | None = None

    def dead_letter_queues(self) -> dict[str, Queue | None]:
        """The redrive targets of the mapped queues, by key (None: not in this source)."""
        targets: dict[str, Queue | None] = {}
        for mapping in self.mappings:
            queue = self.queues.get(mapping.queue)
            if queue is not None and queue.redrive is not None:
                targets[queue.redrive.target] = self.queues.get(queue.redrive.target)
        return targets


def as_int(value: Any, where: str, hint: str) -> int | None:
    """A setting read as a number (an int, or a string of digits); None when absent.

    ``hint`` says what else the source would have accepted, for the error.
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise SourceError(f"{where}: expected a number ({hint}), got {value!r}")


def as_bool(value: Any, where: str) -> bool | None:
    """A setting read as true/false (a bool, or its name in any case); None when absent."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise SourceError(f"{where}: expected true or false, got {value!r}")
