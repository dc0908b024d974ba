"""The project's queues and tables on an emulator, from its settings, idempotently.

The embedded emulator runs no init hooks, so ``sqsl up`` and the pytest plugin create the
resources here, from the project's settings (:class:`.project.Project`): the DLQ, the
source queue redriving to it, and every table. A second run changes nothing and fails
nothing: an existing queue keeps its URL and gets only the attributes that differ; an
existing table is left as it is (its TTL is enabled if it was not).

Real AWS is not provisioned here: the IaC owns those resources.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict

from botocore.exceptions import ClientError

from .project import Project, Resources, current

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

    from .endpoint import Endpoint

    Attributes = dict[QueueAttributeNameType, str]

Log = Callable[[str], None]


class ProvisioningError(RuntimeError):
    """The resources cannot be provisioned here: real AWS, or names the project lacks."""


class Provisioned(TypedDict):
    """The queues' URLs and ARNs (tables go by name)."""

    source_queue_url: str
    source_queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str


def provision_resources(
    endpoint: Endpoint, resources: Resources, log: Log = print, *, project: Project | None = None
) -> Provisioned:
    """Create or converge ``resources`` (the project's names, or suffixed copies of them)
    on the emulator at ``endpoint``, with the settings of ``project`` (default: current).

    Each line of ``log`` names a resource and what happened to it: "created queue ...",
    "queue ...: updated VisibilityTimeout", "table ...: unchanged".
    """
    if not endpoint.is_emulator:
        raise ProvisioningError(
            "resources in real AWS come from the IaC, not from the local tools: "
            "deploy the stack, or point AWS_ENDPOINT_URL at an emulator"
        )
    project = project or current()
    unknown = sorted(set(resources.tables) - set(project.tables))
    if unknown:
        raise ProvisioningError(
            f"{project.source} declares no table {', '.join(map(repr, unknown))}: "
            f"its tables are {', '.join(map(repr, project.tables)) or 'none'}"
        )
    return provision(endpoint.sqs(), endpoint.dynamodb(), project, resources, log=log)


def provision(
    sqs: SQSClient,
    dynamodb: DynamoDBClient,
    project: Project,
    resources: Resources | None = None,
    *,
    log: Log = print,
) -> Provisioned:
    """Create or converge the DLQ, the source queue (redriving to it) and the tables."""
    resources = resources or project.resources()
    shared = queue_type_attributes(project, fifo=resources.fifo)
    dlq_url = ensure_queue(
        sqs,
        resources.dead_letter_queue,
        {**shared, "MessageRetentionPeriod": str(project.dlq.retention_seconds)},
        log,
    )
    dlq_arn = queue_arn(sqs, dlq_url)
    redrive_policy = {
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": project.dlq.max_receive_count,
    }
    source_url = ensure_queue(
        sqs,
        resources.source_queue,
        {
            **shared,
            "VisibilityTimeout": str(project.queue.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(project.queue.retention_seconds),
            "RedrivePolicy": json.dumps(redrive_policy),
        },
        log,
    )
    source_arn = queue_arn(sqs, source_url)
    for key, name in resources.tables.items():
        table = project.tables[key]
        ensure_table(dynamodb, name, table.key, log, ttl_attribute=table.ttl_attribute)
    return {
        "source_queue_url": source_url,
        "source_queue_arn": source_arn,
        "dead_letter_queue_url": dlq_url,
        "dead_letter_queue_arn": dlq_arn,
    }


def queue_type_attributes(project: Project, *, fifo: bool) -> Attributes:
    """Attributes shared by the source queue and its DLQ (same type, as SQS requires)."""
    attributes: Attributes = {"SqsManagedSseEnabled": "true"}
    if not fifo:
        return attributes
    attributes["FifoQueue"] = "true"
    attributes["ContentBasedDeduplication"] = (
        "true" if project.queue.content_based_deduplication else "false"
    )
    if project.queue.high_throughput:
        # High throughput for FIFO queues: both settings, as the SQS guide requires.
        attributes["DeduplicationScope"] = "messageGroup"
        attributes["FifoThroughputLimit"] = "perMessageGroupId"
    return attributes


def ensure_queue(sqs: SQSClient, name: str, attributes: Attributes, log: Log) -> str:
    """The URL of queue ``name``, created or brought to ``attributes``."""
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as error:
        if "NonExistentQueue" not in error.response.get("Error", {}).get("Code", ""):
            raise
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        log(f"created queue {name}")
        return url
    present = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get("Attributes", {})
    # FifoQueue cannot change after creation; the rest converges to the settings.
    changed: Attributes = {
        key: value
        for key, value in attributes.items()
        if key != "FifoQueue" and not _same_attribute(key, present.get(key), value)
    }
    if changed:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=changed)
        log(f"queue {name}: updated {', '.join(sorted(changed))}")
    else:
        log(f"queue {name}: unchanged")
    return url


def queue_arn(sqs: SQSClient, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def _same_attribute(key: str, present: str | None, wanted: str) -> bool:
    if present is None:
        return False
    if key == "RedrivePolicy":
        return bool(json.loads(present) == json.loads(wanted))
    return present.lower() == wanted.lower()


def ensure_table(
    dynamodb: DynamoDBClient, name: str, key: str, log: Log, *, ttl_attribute: str | None = None
) -> None:
    """Table ``name`` with string partition key ``key``, on demand, created if missing."""
    try:
        dynamodb.describe_table(TableName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        log(f"created table {name}")
    else:
        log(f"table {name}: unchanged")
    if ttl_attribute:
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
            )
            log(f"table {name}: TTL enabled on {ttl_attribute}")
