"""What happens to a failed message: one place decides, :func:`is_permanent`.

A *permanent* error means retrying cannot help: the same message fails the same way every
time. It follows the poison policy (straight to the DLQ, or retried until the redrive
policy moves it). Every other exception is *transient* and is reported in
``batchItemFailures`` so that only that message is retried after the visibility timeout.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

# A downstream's refusal of the item itself: the same order is refused on every retry.
# (DynamoDB: a key or item over its limits, a value it cannot store.) Throttling, 5xx,
# timeouts and missing resources are not here: they pass, so they stay transient.
DETERMINISTIC_REFUSALS = frozenset({"ValidationException"})


class PermanentMessageError(Exception):
    """The message can never be processed, however often it is retried."""


class MalformedMessageError(PermanentMessageError):
    """The body is not valid JSON."""


class InvalidOrderError(PermanentMessageError):
    """The body is JSON but does not match the order schema."""


class OversizeMessageError(PermanentMessageError):
    """The body is larger than the schema accepts (``model.MAX_ORDER_BYTES``)."""


class OrderInProgressError(Exception):
    """Another invocation is processing the same order right now: retry later (transient)."""


def is_permanent(error: BaseException) -> bool:
    """Whether ``error`` would recur on every retry of the same message.

    - a :class:`PermanentMessageError` (the body is not JSON, breaks the schema, is too
      large), and a decoding failure however it surfaced (``RecursionError`` of a deeply
      nested body, ``UnicodeError``);
    - a downstream's refusal of the item itself (:data:`DETERMINISTIC_REFUSALS`).

    Everything else (throttling, timeouts, 5xx, a missing table or queue) is transient.
    """
    if isinstance(error, PermanentMessageError | RecursionError | UnicodeError):
        return True
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code") in DETERMINISTIC_REFUSALS
    return False


class DownstreamRefusalError(PermanentMessageError):
    """A downstream refused this message's item for what it holds: permanent."""
