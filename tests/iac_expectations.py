"""What every IaC flavour must declare for a set of answers, in one place.

Each flavour's test maps its own resource references to these logical names
(SourceQueue, DeadLetterQueue, OrdersTable, IdempotencyTable, ConsumerLogGroup), so the
function's permissions cannot drift between SAM and Terraform.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

IDEMPOTENCY_ACTIONS = ("PutItem", "GetItem", "UpdateItem", "DeleteItem")


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
        grants.add(("sqs:SendMessage", "DeadLetterQueue"))
    if answers["idempotency"] == "dynamodb":
        grants |= {(f"dynamodb:{action}", "IdempotencyTable") for action in IDEMPOTENCY_ACTIONS}
    return grants
