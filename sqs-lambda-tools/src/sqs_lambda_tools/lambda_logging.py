"""Log records as the Lambda runtime writes them with ``LogFormat: JSON``, for local runs.

Lambda's Python runtime formats the standard library's records as one JSON object a line,
with ``timestamp``, ``level``, ``message``, ``logger`` and the ``extra`` fields a call
passed (the AWS page "Configuring advanced logging controls for Lambda functions").
Without a handler, Python prints only the message of a warning, and a line such as
"permanent error: message sent to the DLQ" would lose its messageId and reason locally.
Powertools' Logger has its own handler and is left alone.
"""

from __future__ import annotations

import json
import logging
import time

# The attributes every LogRecord has: what is left on a record is what ``extra`` added.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))
) | {"message", "asctime"}


class LambdaJsonFormatter(logging.Formatter):
    """One JSON object a record: Lambda's fields, then the record's ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["stackTrace"] = self.formatException(record.exc_info).splitlines()
        return json.dumps(entry, default=str)


def install() -> None:
    """Give the root logger Lambda's JSON format, unless something configured it already."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(LambdaJsonFormatter())
    root.addHandler(handler)
