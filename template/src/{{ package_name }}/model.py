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


class Order(TypedDict):
    """An order message, e.g. ``{"orderId": "o-1001", "userId": "u-42"}``."""

    orderId: str
    userId: str


def parse_order(body: str, *, max_bytes: int) -> Order:
    """Parse and validate an SQS message body into an :class:`Order`.

    Raises a :class:`~.errors.PermanentMessageError` subclass when the body is too large,
    is not JSON, or does not match the schema. Extra fields are allowed and ignored.
    """
    if len(body) * _MAX_BYTES_PER_CHAR > max_bytes:
        size = len(body.encode("utf-8"))
        if size > max_bytes:
            raise OversizeMessageError(f"body is {size} bytes; the limit is {max_bytes}")
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise MalformedMessageError(f"body is not valid JSON: {error}") from None
    if type(payload) is not dict:
        raise InvalidOrderError(f"body must be a JSON object, got {type(payload).__name__}")
    for field in ("orderId", "userId"):
        value = payload.get(field)
        if type(value) is not str or not value:
            raise InvalidOrderError(f"'{field}' must be a non-empty string, got {value!r}")
    return Order(orderId=payload["orderId"], userId=payload["userId"])
