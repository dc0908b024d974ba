"""A deployment model from the live APIs of AWS or any ``AWS_ENDPOINT_URL``.

From a function name: its configuration (timeout, DeadLetterConfig) and reserved
concurrency, its SQS event source mappings, each mapped queue's attributes and its DLQ's,
and the CloudWatch alarms on those queues. Read-only: Get*, List* and Describe* calls.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ..endpoint import CLIENT_CONFIG, Endpoint
from .model import (
    DEFAULT_RETENTION_SECONDS,
    DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
    LIVE_SOURCE,
    Deployment,
    Function,
    Mapping,
    Queue,
    Redrive,
    SourceError,
)

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType


class FunctionNotFoundError(SourceError):
    """No function of that name at the endpoint: nothing deployed there yet, or a typo."""

    def __init__(self, function_name: str, where: str) -> None:
        super().__init__(f"{where}: no function named {function_name!r}")
        self.function_name = function_name
        self.where = where


@dataclass(frozen=True)
class Clients:
    sqs: SQSClient
    lambda_: LambdaClient
    cloudwatch: CloudWatchClient

    @classmethod
    def for_endpoint(cls, endpoint: Endpoint, region: str) -> Clients:
        """Clients for the endpoint: an emulator's URL and its test credentials, or (URL
        None) real AWS with boto3's own credential chain."""
        environment = endpoint.environment()
        options: dict[str, Any] = {
            "region_name": os.environ.get("AWS_DEFAULT_REGION", region),
            "endpoint_url": endpoint.url,
            "aws_access_key_id": environment.get("AWS_ACCESS_KEY_ID"),
            "aws_secret_access_key": environment.get("AWS_SECRET_ACCESS_KEY"),
            "config": CLIENT_CONFIG,
        }
        return cls(
            sqs=boto3.client("sqs", **options),
            lambda_=boto3.client("lambda", **options),
            cloudwatch=boto3.client("cloudwatch", **options),
        )


def load(function_name: str, clients: Clients, where: str) -> Deployment:
    """The deployment around ``function_name``; ``where`` names the endpoint in messages."""
    try:
        return _load(function_name, clients, where)
    except ClientError as error:
        details = error.response.get("Error", {})
        raise SourceError(
            f"{where}: {error.operation_name} failed: {details.get('Code', 'error')}: "
            f"{details.get('Message', str(error))}"
        ) from error
    except BotoCoreError as error:
        raise SourceError(f"{where}: {error}") from error


def _load(function_name: str, clients: Clients, where: str) -> Deployment:
    try:
        configuration = clients.lambda_.get_function_configuration(FunctionName=function_name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise FunctionNotFoundError(function_name, where) from error
        raise
    reserved = clients.lambda_.get_function_concurrency(FunctionName=function_name).get(
        "ReservedConcurrentExecutions"
    )
    architectures = configuration.get("Architectures", ["x86_64"])
    variables = configuration.get("Environment", {}).get("Variables", {})
    function = Function(
        key=configuration["FunctionArn"],
        label=configuration["FunctionName"],
        timeout=configuration["Timeout"],
        reserved_concurrency=reserved,
        dead_letter_target=configuration.get("DeadLetterConfig", {}).get("TargetArn"),
        name=configuration["FunctionName"],
        handler=configuration.get("Handler"),
        runtime=configuration.get("Runtime"),
        architecture=architectures[0] if len(architectures) == 1 else None,
        memory=configuration.get("MemorySize"),
        environment=dict(variables),
    )
    mappings: list[Mapping] = []
    queues: dict[str, Queue] = {}
    notes: list[str] = []
    pages = clients.lambda_.get_paginator("list_event_source_mappings").paginate(
        FunctionName=function_name
    )
    for page in pages:
        for entry in page["EventSourceMappings"]:
            arn = entry.get("EventSourceArn", "")
            if ":sqs:" not in arn:
                continue  # Kinesis, DynamoDB streams, Kafka, ...
            mappings.append(
                Mapping(
                    label=f"mapping {entry.get('UUID', '?')}",
                    queue=arn,
                    function=function.key,
                    batch_size=entry.get("BatchSize", 10),
                    batching_window=entry.get("MaximumBatchingWindowInSeconds", 0),
                    response_types=tuple(entry.get("FunctionResponseTypes", [])),
                    maximum_concurrency=entry.get("ScalingConfig", {}).get("MaximumConcurrency"),
                )
            )
            _add_queue(clients.sqs, arn, queues, notes)
    if not mappings:
        raise SourceError(f"{where}: function {function_name!r} has no SQS event source mapping")
    for queue in list(queues.values()):
        if queue.redrive is not None:
            _add_queue(clients.sqs, queue.redrive.target, queues, notes)
    return Deployment(
        source=f"{LIVE_SOURCE}{function_name} at {where}",
        queues=queues,
        functions={function.key: function},
        mappings=tuple(mappings),
        alarmed_queues=_alarmed(clients.cloudwatch, queues),
        notes=tuple(notes),
    )


def _add_queue(sqs: SQSClient, arn: str, queues: dict[str, Queue], notes: list[str]) -> None:
    if arn in queues:
        return
    # arn:aws:sqs:<region>:<account>:<name>; the owner finds a queue of another account.
    parts = arn.split(":")
    name = parts[-1]
    owner = {"QueueOwnerAWSAccountId": parts[4]} if len(parts) == 6 and parts[4] else {}
    try:
        url = sqs.get_queue_url(QueueName=name, **owner)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        notes.append(f"queue {arn} could not be read ({code}): its rules were not checked")
        return
    redrive = None
    if "RedrivePolicy" in attributes:
        try:
            policy = json.loads(attributes["RedrivePolicy"])
            redrive = Redrive(
                target=str(policy["deadLetterTargetArn"]),
                max_receive_count=int(policy["maxReceiveCount"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise SourceError(
                f"queue {name}: RedrivePolicy is not JSON with deadLetterTargetArn and "
                f"maxReceiveCount: {attributes['RedrivePolicy']!r}"
            ) from error
    queues[arn] = Queue(
        key=arn,
        label=name,
        name=name,
        fifo=attributes.get("FifoQueue") == "true",
        content_based_deduplication=attributes.get("ContentBasedDeduplication") == "true",
        visibility_timeout=int(
            attributes.get("VisibilityTimeout", DEFAULT_VISIBILITY_TIMEOUT_SECONDS)
        ),
        retention=int(attributes.get("MessageRetentionPeriod", DEFAULT_RETENTION_SECONDS)),
        sse=_encrypted(attributes),
        redrive=redrive,
    )


def _alarmed(cloudwatch: CloudWatchClient, queues: dict[str, Queue]) -> frozenset[str]:
    """The queues a metric alarm watches: an AWS/SQS metric with their QueueName."""
    by_name = {queue.label: key for key, queue in queues.items()}
    alarmed: set[str] = set()
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
        for alarm in page.get("MetricAlarms", []):
            metrics: list[Any] = [alarm]
            metrics.extend(
                query["MetricStat"]["Metric"]
                for query in alarm.get("Metrics", [])
                if "MetricStat" in query
            )
            for metric in metrics:
                if metric.get("Namespace") != "AWS/SQS":
                    continue
                for dimension in metric.get("Dimensions", []):
                    key = by_name.get(dimension.get("Value", ""))
                    if dimension.get("Name") == "QueueName" and key is not None:
                        alarmed.add(key)
    return frozenset(alarmed)


def _encrypted(attributes: dict[QueueAttributeNameType, str]) -> bool | None:
    """Whether the queue encrypts at rest: True with SSE-SQS or a KMS key, False when SQS
    says SSE-SQS is off and no key is set, None when the endpoint does not say (AWS always
    reports SqsManagedSseEnabled; an emulator may leave it out)."""
    if "KmsMasterKeyId" in attributes or attributes.get("SqsManagedSseEnabled") == "true":
        return True
    if attributes.get("SqsManagedSseEnabled") == "false":
        return False
    return None
