"""Local runs log as Lambda's JSON log format does: the extra fields stay on the line."""

from __future__ import annotations

import json
import logging

import pytest

from sqs_lambda_tools.lambda_logging import LambdaJsonFormatter

pytestmark = pytest.mark.unit


def test_a_warning_keeps_its_message_id_and_reason() -> None:
    record = logging.LogRecord(
        "orders.records", logging.WARNING, __file__, 1, "permanent error: %s", ("sent",), None
    )
    record.messageId = "m-1"
    record.reason = "body is not valid JSON"

    line = json.loads(LambdaJsonFormatter().format(record))

    assert line["level"] == "WARNING"
    assert line["message"] == "permanent error: sent"
    assert line["logger"] == "orders.records"
    assert line["messageId"] == "m-1"
    assert line["reason"] == "body is not valid JSON"
    assert line["timestamp"].endswith("Z")
    assert "args" not in line
    assert "msg" not in line
