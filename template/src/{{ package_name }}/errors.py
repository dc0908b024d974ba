"""Error classes that decide what happens to a failed message.

A *permanent* error means retrying cannot help: the message itself is wrong. It follows
the poison policy (straight to the DLQ, or retried until the redrive policy moves it).
Every other exception is *transient* and is reported in ``batchItemFailures`` so that
only that message is retried after the visibility timeout.
"""

from __future__ import annotations


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
