"""What every IaC flavour must declare for a set of answers, in one place.

The readers of tests/iac_settings.py map each flavour's resource references to these
logical names (SourceQueue, DeadLetterQueue, OrdersTable, IdempotencyTable,
ConsumerLogGroup), so the function's permissions cannot drift between flavours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

IDEMPOTENCY_ACTIONS = ("PutItem", "GetItem", "UpdateItem", "DeleteItem")

#: The answer sets every flavour's tests render (with their own ``iac``), and the contract
#: test compares across flavours; every other answer takes its default.
ANSWER_SETS: dict[str, dict[str, Any]] = {
    "standard-defaults": {},
    "fifo-retry-noidem-reserved": {
        "queue_type": "fifo",
        "fifo_high_throughput": True,
        "poison_policy": "retry",
        "idempotency": "none",
        "reserved_concurrency": 20,
        "dlq_alarm": False,
        "architecture": "x86_64",
        "lambda_runtime": "python3.12",
        # A typed visibility timeout, used as typed (the derived one would be 180 s).
        "visibility_timeout_seconds": 600,
    },
    "standard-bigbatch": {
        "batch_size": 100,
        "max_batching_window_seconds": 5,
        "function_timeout_seconds": 60,
        "memory_mb": 512,
        "max_receive_count": 8,
        "max_concurrency": 4,
        # Retention as durations: every flavour declares the seconds.
        "source_retention_seconds": "2d",
        "dlq_retention_seconds": "240h",
    },
}


def renders_of(iac: str) -> dict[str, dict[str, Any]]:
    """The answer sets with ``iac`` set: what one flavour's tests render."""
    return {name: {**answers, "iac": iac} for name, answers in ANSWER_SETS.items()}


def expected_grants(answers: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The (action, resource) pairs the function's role must hold, and no other."""
    grants = {
        ("sqs:ReceiveMessage", "SourceQueue"),
        ("sqs:DeleteMessage", "SourceQueue"),
        ("sqs:GetQueueAttributes", "SourceQueue"),
        # The example logic only writes orders; the handler never reads them back.
        ("dynamodb:PutItem", "OrdersTable"),
        ("logs:CreateLogStream", "ConsumerLogGroup"),
        ("logs:PutLogEvents", "ConsumerLogGroup"),
    }
    if answers["poison_policy"] == "dlq_now":
        grants |= {
            ("sqs:SendMessage", "DeadLetterQueue"),
            ("sqs:GetQueueAttributes", "DeadLetterQueue"),
        }
    if answers["idempotency"] == "dynamodb":
        grants |= {(f"dynamodb:{action}", "IdempotencyTable") for action in IDEMPOTENCY_ACTIONS}
    return grants


def expected_findings(values: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The preflight findings (rule, severity) on a render's own IaC: what its answers
    (and computed values, the probe's) chose to accept, and nothing else."""
    expected: set[tuple[str, str]] = set()
    visibility = values["queue_visibility_timeout_seconds"]
    receives = values["max_receive_count"]
    if visibility < 6 * values["function_timeout_seconds"]:
        expected.add(("SQSL001", "warning"))  # a typed visibility timeout below the advice
    if values["reserved_concurrency"] > 0 and receives < 5:
        expected.add(("SQSL005", "error"))
    elif receives < 2:
        expected.add(("SQSL005", "warning"))
    elif receives * visibility >= values["source_retention_period_seconds"]:
        expected.add(("SQSL005", "warning"))  # the retries outlast the retention
    if not values["dlq_alarm"]:
        expected.add(("SQSL012", "warning"))
    return expected
