"""boto3 clients, one of each per execution environment, created on first use.

Creating a client costs tens of milliseconds, so it is done once and every invocation of
the execution environment reuses it. boto3 reads ``AWS_ENDPOINT_URL`` itself, which is
how the same code talks to an emulator locally.
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
