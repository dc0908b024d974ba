"""Sample messages for the local loop, awkward ones included, and the shape of a message to send.

The bodies come from the project's own sample function (``[tool.sqsl.samples] function``,
``(number, run_id) -> dict | str``, next to its schema): the tools know nothing of a
message's fields. A consumer earns its keep on the messages that are not simple: the same
message delivered twice (a producer that retried, or SQS's at-least-once delivery) and a
body that cannot be parsed at all. :func:`sample_orders` mixes both into ordinary traffic,
so ``sqsl send --sample`` and the tests exercise idempotency and the poison policy, not only
the happy path.

On a FIFO queue every message needs a group and a deduplication id. The group is the
body's ``[tool.sqsl.samples] group_key`` field (an order's user, say), so one user's
orders stay in order while different users' run in parallel. The deduplication id is new
for every message *sent*: a deliberate duplicate is a second message, as a producer's
retry would be, and must reach the handler twice; reusing the id would let SQS drop it and
the handler's idempotency would never be tested.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import code_import
from .project import PYPROJECT, TABLE, Project, SettingsError, current
from .sqs_events import DEFAULT_GROUP_ID
from .sqs_events import group_of as _group_of

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

__all__ = [
    "DEFAULT_GROUP_ID",
    "DUPLICATE_DELAY",
    "OutgoingMessage",
    "SampleFunction",
    "group_of",
    "outgoing",
    "sample_body",
    "sample_function",
    "sample_orders",
]

#: A duplicate is sent this many messages after its original: late, as a retry would be.
DUPLICATE_DELAY = 2

#: ``(number, run_id) -> body``: a dict (sent as JSON) or the body's text.
SampleFunction = Callable[[int, str], "dict[str, Any] | str"]


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to send: its body and, on a FIFO queue, its group and deduplication id."""

    body: str
    group_id: str | None = None
    deduplication_id: str | None = None
    attributes: Mapping[str, MessageAttributeValueTypeDef] = field(default_factory=dict)

    def entry(self, entry_id: str) -> SendMessageBatchRequestEntryTypeDef:
        """This message as an entry of ``SendMessageBatch``; ``entry_id`` is unique per batch."""
        entry: SendMessageBatchRequestEntryTypeDef = {"Id": entry_id, "MessageBody": self.body}
        if self.attributes:
            entry["MessageAttributes"] = dict(self.attributes)
        if self.group_id is not None:
            entry["MessageGroupId"] = self.group_id
        if self.deduplication_id is not None:
            entry["MessageDeduplicationId"] = self.deduplication_id
        return entry


def group_of(body: str, project: Project | None = None) -> str:
    """The FIFO group a body belongs to: its ``[tool.sqsl.samples] group_key`` field, else
    :data:`DEFAULT_GROUP_ID` (the project: the current one unless given)."""
    return _group_of(body, (project or current()).samples.group_key)


def outgoing(
    body: str,
    *,
    group_id: str | None = None,
    deduplication_id: str | None = None,
    fifo: bool | None = None,
    project: Project | None = None,
) -> OutgoingMessage:
    """A message for ``body``; on a FIFO queue (``fifo``, default: the project's) the group
    defaults to the body's :func:`group_of`.

    The deduplication id defaults to a fresh UUID, so two sends of the same body are two
    messages (content-based deduplication, if the queue has it, is overridden by an
    explicit id). A standard queue takes neither, so both are dropped there.
    """
    if fifo is None:
        fifo = (project or current()).queue.fifo
    if not fifo:
        return OutgoingMessage(body)
    return OutgoingMessage(
        body,
        group_id=group_id or group_of(body, project),
        deduplication_id=deduplication_id or str(uuid.uuid4()),
    )


def sample_function(project: Project | None = None) -> SampleFunction:
    """The project's sample function (``[tool.sqsl.samples] function``), imported from
    its code folder. Refused, naming the key and the file, when it is not set, does not
    import or is not a function."""
    project = project or current()
    where = f"{project.root / PYPROJECT}: [{TABLE}.samples] function"
    spec = project.samples.function
    if spec is None:
        raise SettingsError(
            f"{where} is not set: name the function that gives the body of the number-th "
            'sample message, e.g. function = "my_service.samples:sample_order" for '
            "def sample_order(number: int, run_id: str) -> dict | str"
        )
    module_name, _, name = spec.partition(":")
    try:
        module = code_import.import_module(project, module_name)
    except Exception as error:
        raise SettingsError(
            f"{where} = {spec!r}: {module_name} does not import from {project.code_dir}: "
            f"{type(error).__name__}: {error}"
        ) from error
    function = getattr(module, name, None)
    if not callable(function):
        raise SettingsError(f"{where} = {spec!r}: {module_name} has no function {name!r}")
    sample: SampleFunction = function
    return sample


def sample_body(
    function: SampleFunction, number: int, run_id: str, project: Project | None = None
) -> str:
    """The body of sample ``number``: a dict as JSON, a str as it is."""
    value = function(number, run_id)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        return value
    project = project or current()
    raise SettingsError(
        f"{project.root / PYPROJECT}: [{TABLE}.samples] function = "
        f"{project.samples.function!r} returned {type(value).__name__} for sample {number}, "
        "expected a dict (sent as JSON) or a str (the body)"
    )


def sample_orders(
    count: int,
    *,
    duplicates: int | None = None,
    poison: bool = False,
    run_id: str | None = None,
    project: Project | None = None,
) -> list[OutgoingMessage]:
    """``count`` messages: distinct samples, ``duplicates`` repeats of them, maybe a poison.

    The samples are the project's sample function's, numbers 1, 2, ... of ``run_id``
    (random by default, so a second run sends new messages instead of repeating the
    first's). ``duplicates`` defaults to one message in five. Each duplicate repeats an
    earlier sample (the same body) :data:`DUPLICATE_DELAY` messages later. With
    ``poison``, one message in the middle is the next sample's JSON cut short: the handler
    must treat it as a permanent error without holding back its neighbours. With the
    sample function ``lambda n, run: {"orderId": f"o-{run}-{n:03d}"}``,
    ``sample_orders(3, duplicates=1, run_id="r")`` sends o-r-001, o-r-002, o-r-001.
    """
    if duplicates is None:
        duplicates = count // 5
    distinct = count - duplicates - (1 if poison else 0)
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if duplicates < 0:
        raise ValueError(f"duplicates must be 0 or more, got {duplicates}")
    if distinct < 0 or (duplicates and not distinct):
        poisoned = " and a poison message" if poison else ""
        raise ValueError(
            f"{count} messages cannot hold {duplicates} duplicates{poisoned}: "
            "a duplicate repeats one of the other messages"
        )
    project = project or current()
    function = sample_function(project)
    run_id = run_id or uuid.uuid4().hex[:6]
    bodies = [sample_body(function, number, run_id, project) for number in range(1, distinct + 1)]
    # Duplicate k repeats sample k (cycling when there are more duplicates than samples),
    # sent after sample k + DUPLICATE_DELAY, or after the last sample when there is none.
    late: dict[int, list[str]] = {}
    for k in range(duplicates):
        late.setdefault(min(k + DUPLICATE_DELAY, distinct - 1), []).append(bodies[k % distinct])
    sequence: list[str] = []
    for index, body in enumerate(bodies):
        sequence.append(body)
        sequence.extend(late.get(index, ()))
    messages = [outgoing(body, project=project) for body in sequence]
    if poison:
        whole = sample_body(function, distinct + 1, run_id, project)
        # Its group is the whole sample's: cut short, the body names none.
        cut = outgoing(_cut_short(whole), group_id=group_of(whole, project), project=project)
        messages.insert(len(messages) // 2, cut)
    return messages


def _cut_short(body: str) -> str:
    """``body`` no longer JSON: a JSON object loses its closing brace, other text its end."""
    cut = body[:-1]
    try:
        json.loads(cut)
    except ValueError:
        return cut
    return "{" + cut  # "12" of "123" still parses
