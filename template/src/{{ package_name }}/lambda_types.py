"""The Lambda contract for SQS events, typed.

Shapes follow "Using Lambda with Amazon SQS" (the event) and "Handling errors for an SQS
event source in Lambda" (the partial batch response).
"""

from __future__ import annotations

from typing import NotRequired, Protocol, TypedDict


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


class BatchItemFailure(TypedDict):
    itemIdentifier: str


class PartialBatchResponse(TypedDict):
    """Only honoured when the mapping sets ``FunctionResponseTypes: [ReportBatchItemFailures]``."""

    batchItemFailures: list[BatchItemFailure]


class LambdaContext(Protocol):
    """The parts of the Lambda context object this service uses."""

    @property
    def function_name(self) -> str: ...

    @property
    def aws_request_id(self) -> str: ...

    def get_remaining_time_in_millis(self) -> int: ...
