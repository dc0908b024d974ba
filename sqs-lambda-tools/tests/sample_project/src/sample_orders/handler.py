"""The function: each record's order is put into the orders table, once.

A body that is not a JSON object with an ``orderId`` is poison: with a DLQ URL it is sent
there with its reason (``failure_reason``) and acknowledged, else reported as failed. For
the tools' tests a body may also ask for ``"sleep": seconds``, ``"fail": true`` (a transient
failure), ``"crash": true`` (the invocation raises) or ``"count": true`` (the order's item
records which invocation of its execution environment recorded it, and the environment's
log stream).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

import boto3

INVOCATIONS = 0  # module state: per execution environment, as in Lambda


class PoisonError(ValueError):
    """The message can never be processed."""


def _order(body: str) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise PoisonError(f"not JSON: {error}") from error
    if not isinstance(payload, dict) or not isinstance(payload.get("orderId"), str):
        raise PoisonError("no orderId")
    return payload


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    global INVOCATIONS
    INVOCATIONS += 1
    dynamodb = boto3.client("dynamodb")
    sqs = boto3.client("sqs")
    table = os.environ["ORDERS_TABLE_NAME"]
    dead_letter_queue_url = os.environ.get("DEAD_LETTER_QUEUE_URL", "")
    failures: list[dict[str, str]] = []
    failed_groups: set[str] = set()
    for record in event["Records"]:
        group = record.get("attributes", {}).get("MessageGroupId")
        if group is not None and group in failed_groups:
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        try:
            order = _order(record["body"])
        except PoisonError as error:
            if dead_letter_queue_url:
                entry: dict[str, Any] = {
                    "QueueUrl": dead_letter_queue_url,
                    "MessageBody": record["body"],
                    "MessageAttributes": {
                        "failure_reason": {"DataType": "String", "StringValue": str(error)},
                        "source_message_id": {
                            "DataType": "String",
                            "StringValue": record["messageId"],
                        },
                    },
                }
                if group is not None:
                    entry["MessageGroupId"] = group
                    entry["MessageDeduplicationId"] = record["messageId"]
                sqs.send_message(**entry)
                continue
            failures.append({"itemIdentifier": record["messageId"]})
            if group is not None:
                failed_groups.add(group)
            continue
        if order.get("crash"):
            raise RuntimeError(f"asked to crash by {order['orderId']}")
        if order.get("sleep"):
            time.sleep(float(order["sleep"]))
        if order.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
            if group is not None:
                failed_groups.add(group)
            continue
        item = {"orderId": {"S": order["orderId"]}, "body": {"S": record["body"]}}
        if order.get("count"):
            item["invocation"] = {"N": str(INVOCATIONS)}
            item["logStream"] = {"S": str(getattr(context, "log_stream_name", ""))}
        # A duplicate delivery finds its order recorded already: nothing more to do.
        with contextlib.suppress(dynamodb.exceptions.ConditionalCheckFailedException):
            dynamodb.put_item(
                TableName=table, Item=item, ConditionExpression="attribute_not_exists(orderId)"
            )
    return {"batchItemFailures": failures}
