"""The payload schema: what a valid order message looks like.

Validation is hand-written rather than done by a schema library: it keeps the Lambda
package free of extra dependencies and costs well under a microsecond per record.
"""

from __future__ import annotations

import json
from typing import TypedDict

from .errors import InvalidOrderError, MalformedMessageError, OversizeMessageError

# UTF-8 needs at most 4 bytes per character: a body this short cannot be over the limit,
# so most bodies skip the cost of encoding them to count bytes.
_MAX_BYTES_PER_CHAR = 4
# SQS accepts bodies up to 1 MiB; an order is tiny, so a body near that is a bug upstream.
# It also keeps every order under DynamoDB's item limit (400 KB, names and values).
MAX_ORDER_BYTES = 256 * 1024
# DynamoDB refuses a partition key over 2048 bytes of UTF-8 ("Service, account, and table
# quotas in Amazon DynamoDB"): the same order would fail its put on every retry.
MAX_KEY_BYTES = 2048
_json_loads = json.loads


class Order(TypedDict):
    """An order message, e.g. ``{"orderId": "o-1001", "userId": "u-42"}``."""

    orderId: str
    userId: str


def parse_order(body: str, max_bytes: int = MAX_ORDER_BYTES) -> Order:
    """Parse and validate an SQS message body into an :class:`Order`.

    Raises a :class:`~.errors.PermanentMessageError` subclass when the body is too large,
    is not JSON, or does not match the schema. Extra fields are allowed: they stay in the
    returned mapping, outside the typed schema. This runs once per record, so it checks
    fields directly and returns the parsed object itself rather than a copy.
    """
    if len(body) * _MAX_BYTES_PER_CHAR > max_bytes:
        size = len(body.encode("utf-8"))
        if size > max_bytes:
            raise OversizeMessageError(f"body is {size} bytes; the limit is {max_bytes}")
    try:
        payload = _json_loads(body)
    except ValueError as error:  # UnicodeDecodeError included
        raise MalformedMessageError(f"body is not valid JSON: {error}") from None
    except RecursionError:
        # Thousands of nested brackets: the same body fails the same way every time.
        raise MalformedMessageError("body is not valid JSON: nested too deeply") from None
    kind = type(payload)  # not narrowed by mypy: payload stays Any and becomes the Order
    if kind is not dict:
        raise InvalidOrderError(f"body must be a JSON object, got {kind.__name__}")
    try:
        order_id = payload["orderId"]
        user_id = payload["userId"]
    except KeyError as missing:
        raise InvalidOrderError(f"{missing} is required") from None
    if type(order_id) is not str or not order_id:
        raise InvalidOrderError(f"'orderId' must be a non-empty string, got {order_id!r}")
    if type(user_id) is not str or not user_id:
        raise InvalidOrderError(f"'userId' must be a non-empty string, got {user_id!r}")
    # What DynamoDB will store: valid Unicode (JSON's "\ud800" escape decodes to a lone
    # surrogate, which has no UTF-8), and a key within its limit.
    if len(order_id) * _MAX_BYTES_PER_CHAR > MAX_KEY_BYTES:
        size = len(_utf8(order_id, "orderId"))
        if size > MAX_KEY_BYTES:
            raise InvalidOrderError(f"'orderId' is {size} bytes; the limit is {MAX_KEY_BYTES}")
    _utf8(order_id, "orderId")
    _utf8(user_id, "userId")
    order: Order = payload
    return order


def _utf8(text: str, field: str) -> bytes:
    """``text`` as UTF-8; a lone surrogate is a schema violation, not a crash at the put."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidOrderError(f"'{field}' is not valid Unicode (a lone surrogate)") from None
