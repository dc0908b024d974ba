"""Sample orders for the local loop, awkward ones included, and the shape of a message to send.

A consumer earns its keep on the messages that are not simple: the same order delivered
twice (a producer that retried, or SQS's at-least-once delivery) and a body that cannot
be parsed at all. :func:`sample_orders` mixes both into ordinary traffic, so ``make local``
and the tests exercise idempotency and the poison policy, not only the happy path.

On a FIFO queue every message needs a group and a deduplication id. The group is the
order's user, so one user's orders stay in order while different users' run in parallel.
The deduplication id is new for every message *sent*: a deliberate duplicate is a second
message, as a producer's retry would be, and must reach the handler twice; reusing the
id would let SQS drop it and the handler's idempotency would never be tested.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import IS_FIFO
from .sqs_events import order_body

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

#: FIFO group of a body that names no user (not JSON, or JSON without a ``userId``).
DEFAULT_GROUP_ID = "default"
#: The users who place the sample orders: on a FIFO queue, one message group each.
SAMPLE_USERS = ("u-1", "u-2", "u-3")
#: A duplicate is sent this many orders after its original: late, as a retry would be.
DUPLICATE_DELAY = 2


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


def group_of(body: str) -> str:
    """The FIFO group a body belongs to: its ``userId``, else :data:`DEFAULT_GROUP_ID`."""
    try:
        payload = json.loads(body)
    except ValueError:
        return DEFAULT_GROUP_ID
    user_id = payload.get("userId") if isinstance(payload, dict) else None
    return user_id if isinstance(user_id, str) and user_id else DEFAULT_GROUP_ID


def outgoing(
    body: str,
    *,
    group_id: str | None = None,
    deduplication_id: str | None = None,
    fifo: bool = IS_FIFO,
) -> OutgoingMessage:
    """A message for ``body``; on a FIFO queue the group defaults to the body's user.

    The deduplication id defaults to a fresh UUID, so two sends of the same body are two
    messages (content-based deduplication, if the queue has it, is overridden by an
    explicit id). A standard queue takes neither, so both are dropped there.

    >>> outgoing('{"orderId": "o-1", "userId": "u-7"}', fifo=True).group_id
    'u-7'
    """
    if not fifo:
        return OutgoingMessage(body)
    return OutgoingMessage(
        body,
        group_id=group_id or group_of(body),
        deduplication_id=deduplication_id or str(uuid.uuid4()),
    )


def sample_orders(
    count: int,
    *,
    duplicates: int | None = None,
    poison: bool = False,
    run_id: str | None = None,
    fifo: bool = IS_FIFO,
) -> list[OutgoingMessage]:
    """``count`` messages: distinct orders, ``duplicates`` repeats of them, maybe a poison.

    ``duplicates`` defaults to one message in five. Each duplicate repeats an earlier order
    (same ``orderId``, same body) :data:`DUPLICATE_DELAY` orders later. With ``poison``, one
    message in the middle is an order's JSON cut short: the handler must treat it as a
    permanent error without holding back its neighbours. Order ids carry ``run_id`` (random
    by default), so a second run records new orders instead of repeating the first's.

    >>> [json.loads(m.body)["orderId"] for m in sample_orders(3, duplicates=1, run_id="r")]
    ['o-r-001', 'o-r-002', 'o-r-001']
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
            "a duplicate repeats one of the other orders"
        )
    run_id = run_id or uuid.uuid4().hex[:6]
    orders = [
        (f"o-{run_id}-{number:03d}", SAMPLE_USERS[(number - 1) % len(SAMPLE_USERS)])
        for number in range(1, distinct + 1)
    ]
    # Duplicate k repeats order k (cycling when there are more duplicates than orders),
    # sent after order k + DUPLICATE_DELAY, or after the last order when there is none.
    late: dict[int, list[tuple[str, str]]] = {}
    for k in range(duplicates):
        late.setdefault(min(k + DUPLICATE_DELAY, distinct - 1), []).append(orders[k % distinct])
    sequence: list[tuple[str, str]] = []
    for index, order in enumerate(orders):
        sequence.append(order)
        sequence.extend(late.get(index, ()))
    messages = [
        outgoing(order_body(order_id, user_id), group_id=user_id, fifo=fifo)
        for order_id, user_id in sequence
    ]
    if poison:
        user_id = SAMPLE_USERS[0]
        truncated = order_body(f"o-{run_id}-poison", user_id)[:-1]  # the closing brace is gone
        messages.insert(len(messages) // 2, outgoing(truncated, group_id=user_id, fifo=fifo))
    return messages
