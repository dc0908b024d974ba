"""boto3 clients, created on first use and reused across invocations.

Creating a client costs tens of milliseconds, so it is not done at import time (that
would slow every cold start, including tests and tools that never call AWS) but once
per execution environment. boto3 reads ``AWS_ENDPOINT_URL`` itself, which is how the
same code talks to an emulator locally.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import boto3

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient


@functools.cache
def dynamodb_client() -> DynamoDBClient:
    return boto3.client("dynamodb")


@functools.cache
def sqs_client() -> SQSClient:
    return boto3.client("sqs")


def reset_clients() -> None:
    """Forget the cached clients (tests do this when the endpoint or credentials change)."""
    dynamodb_client.cache_clear()
    sqs_client.cache_clear()
