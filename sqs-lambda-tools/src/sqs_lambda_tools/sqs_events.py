"""SQS messages as Lambda sees them: the event shape the event source mapping builds.

The SQS API and the Lambda event disagree on names and casing (``MessageId`` vs
``messageId``, ``StringValue`` vs ``stringValue``, binary values as bytes vs base64
text); this module is the one place that translates, following "Using Lambda with
Amazon SQS" (the sample event) and AWS's own recordings of real events.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from .config import ACCOUNT_ID
from .project import Project, current

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef


# The event's shapes, as "Using Lambda with Amazon SQS" documents them. A service that
# types its handler with TypedDicts of the same shape accepts these events as they are.


class SQSMessageAttribute(TypedDict, total=False):
    # Lambda's lower camel case, unlike the SQS API's StringValue / DataType.
    stringValue: str
    binaryValue: str
    stringListValues: list[str]
    binaryListValues: list[str]
    dataType: str


class SQSRecordAttributes(TypedDict, total=False):
    ApproximateReceiveCount: str
    SentTimestamp: str
    SenderId: str
    ApproximateFirstReceiveTimestamp: str
    SequenceNumber: str
    MessageGroupId: str
    MessageDeduplicationId: str


class SQSRecord(TypedDict):
    messageId: str
    receiptHandle: str
    body: str
    attributes: SQSRecordAttributes
    messageAttributes: dict[str, SQSMessageAttribute]
    md5OfBody: str
    eventSource: str
    eventSourceARN: str
    awsRegion: str
    md5OfMessageAttributes: NotRequired[str | None]


class SQSEvent(TypedDict):
    Records: list[SQSRecord]


# The system attributes a Lambda SQS record carries, FIFO ones included.
RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


def lambda_record(message: MessageTypeDef, *, queue_arn: str, region: str) -> dict[str, Any]:
    """One ReceiveMessage result as a record of Lambda's SQS event."""
    attributes = message.get("Attributes", {})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {key: attributes[key] for key in RECORD_ATTRIBUTES if key in attributes},
        "messageAttributes": {
            name: _lambda_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def lambda_event(
    messages: Sequence[MessageTypeDef], *, queue_arn: str, region: str
) -> dict[str, Any]:
    return {"Records": [lambda_record(m, queue_arn=queue_arn, region=region) for m in messages]}


# Synthetic events, for tests and benchmarks that call the handler without a queue.

_sequence_numbers = itertools.count(18_849_496_460_467_696_128)


def source_queue_arn(project: Project | None = None) -> str:
    """The ARN of the project's source queue, as the emulators report it."""
    project = project or current()
    return f"arn:aws:sqs:{project.region}:{ACCOUNT_ID}:{project.queue.name}"


def make_sqs_record(
    body: str,
    *,
    message_id: str | None = None,
    group_id: str | None = None,
    receive_count: int = 1,
    queue_arn: str | None = None,
    region: str | None = None,
    project: Project | None = None,
) -> SQSRecord:
    """One record; FIFO attributes are added when ``group_id`` is given.

    ``queue_arn`` defaults to the project's source queue (the current project unless
    ``project`` is given), ``region`` to the ARN's.
    """
    arn = queue_arn or _default_arn(region, project)
    now_ms = str(int(time.time() * 1000))
    message_id = message_id or str(uuid.uuid4())
    record: SQSRecord = {
        "messageId": message_id,
        "receiptHandle": f"AQEB{uuid.uuid4().hex}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now_ms,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region or _arn_region(arn),
    }
    if group_id is not None:
        record["attributes"]["SequenceNumber"] = str(next(_sequence_numbers))
        record["attributes"]["MessageGroupId"] = group_id
        record["attributes"]["MessageDeduplicationId"] = message_id
    return record


def make_sqs_event(
    bodies: Sequence[str],
    *,
    fifo: bool | None = None,
    group_ids: Sequence[str] | None = None,
    queue_arn: str | None = None,
    region: str | None = None,
    project: Project | None = None,
) -> SQSEvent:
    """An event with one record per body, e.g. ``make_sqs_event(['{"orderId": "o-1"}'])``.

    ``fifo`` defaults to the project's queue type. FIFO records get the groups of
    ``group_ids`` (one per body), else each body's ``[tool.sqsl.samples] group_key``
    field, else ``"default"``, as ``sqsl send`` groups them.
    """
    if group_ids is not None and len(group_ids) != len(bodies):
        raise ValueError("group_ids needs one entry per body")
    if fifo is None:
        fifo = (project or current()).queue.fifo
    if fifo and group_ids is None:
        key = (project or current()).samples.group_key
        group_ids = [group_of(body, key) for body in bodies]
    arn = queue_arn or _default_arn(region, project)
    records = [
        make_sqs_record(
            body,
            group_id=group_ids[index] if fifo and group_ids is not None else None,
            queue_arn=arn,
            region=region,
        )
        for index, body in enumerate(bodies)
    ]
    return {"Records": records}


#: The FIFO group of a body without the group key (not JSON, or JSON without the field).
DEFAULT_GROUP_ID = "default"


def group_of(body: str, key: str | None) -> str:
    """The FIFO group of ``body``: its field ``key``, else :data:`DEFAULT_GROUP_ID`.

    >>> group_of('{"orderId": "o-1", "userId": "u-7"}', "userId")
    'u-7'
    """
    if not key:
        return DEFAULT_GROUP_ID
    try:
        payload = json.loads(body)
    except ValueError:
        return DEFAULT_GROUP_ID
    value = payload.get(key) if isinstance(payload, dict) else None
    if value is None or value == "" or isinstance(value, (dict, list)):
        return DEFAULT_GROUP_ID
    return str(value)


def _default_arn(region: str | None, project: Project | None) -> str:
    project = project or current()
    arn = source_queue_arn(project)
    if region is not None:
        arn = arn.replace(f":{project.region}:", f":{region}:", 1)
    return arn


def _arn_region(arn: str) -> str:
    """``arn:aws:sqs:<region>:<account>:<name>`` -> ``<region>``."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else current().region


def _lambda_attribute(value: Any) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [_base64(item) for item in value.get("BinaryListValues", [])],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = _base64(value["BinaryValue"])
    return converted


def _base64(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")
