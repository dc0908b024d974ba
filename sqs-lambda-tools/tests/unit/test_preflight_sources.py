"""preflight reads a deployment from CloudFormation/SAM, CDK synth output and Terraform.

The sample project's template passes clean; broken templates, written out below, raise
the rules they break. Besides what the rules need, the readers keep what a project's
settings table also declares (names, handler, runtime, memory, environment, tables), as
literals or references; a value only a deploy knows is None, never an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sqs_lambda_tools.preflight import cloudformation, terraform
from sqs_lambda_tools.preflight.model import (
    REGION,
    Deployment,
    Redrive,
    Reference,
    SourceError,
    Table,
)
from sqs_lambda_tools.preflight.rules import evaluate

pytestmark = pytest.mark.unit

SAMPLE_TEMPLATE = Path(__file__).parents[1] / "sample_project" / "template.yaml"


def findings(deployment: Deployment) -> set[tuple[str, str]]:
    return {(finding.rule, finding.severity) for finding in evaluate(deployment)}


def test_the_sample_projects_sam_template_passes() -> None:
    deployment = cloudformation.load_template(SAMPLE_TEMPLATE)

    assert len(deployment.mappings) == 1
    assert findings(deployment) == set()


def test_a_sam_template_gives_what_the_settings_table_declares() -> None:
    deployment = cloudformation.load_template(SAMPLE_TEMPLATE)

    function = deployment.functions["ConsumerFunction"]
    assert (function.name, function.handler, function.runtime) == (
        "sample-orders",
        "sample_orders.handler.lambda_handler",
        "python3.13",
    )
    assert (function.architecture, function.memory, function.timeout) == ("arm64", 256, 30)
    assert function.code == "build/lambda/"
    assert function.environment == {
        "ORDERS_TABLE_NAME": Reference("OrdersTable", "name"),
        "DEAD_LETTER_QUEUE_URL": Reference("DeadLetterQueue", "url"),
    }
    assert deployment.queues["SourceQueue"].name == "sample-orders"
    assert deployment.tables == {
        "OrdersTable": Table(
            key="OrdersTable",
            label="OrdersTable (sample-orders-orders)",
            name="sample-orders-orders",
            partition_key="orderId",
        )
    }


SETTINGS_SAM = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
Globals:
  Function:
    Runtime: python3.12
    Environment:
      Variables:
        LOG_LEVEL: INFO
        REGION: !Ref AWS::Region
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      ContentBasedDeduplication: true
  Sessions:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "sessions-${Stage}"
      KeySchema:
        - AttributeName: sessionId
          KeyType: HASH
      TimeToLiveSpecification:
        AttributeName: expires
        Enabled: true
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub "consumer-${Stage}"
      Handler: app.handler
      CodeUri: s3://bucket/code.zip
      MemorySize: !If [Big, 1024, 128]
      Environment:
        Variables:
          QUEUE_ARN: !GetAtt Queue.Arn
          QUEUE_NAME: !GetAtt Queue.QueueName
          SESSIONS: !Ref Sessions
          STAGE: !Ref Stage
          RETRIES: 3
          GREETING: !Sub "hello ${Stage}"
      Events:
        Orders:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
"""


def test_values_only_a_deploy_knows_are_unknown_not_errors(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(SETTINGS_SAM, encoding="utf-8")

    deployment = cloudformation.load_template(path)

    function = deployment.functions["Consumer"]
    assert function.name is None  # !Sub
    assert function.memory is None  # !If
    assert function.code == "s3://bucket/code.zip"
    assert function.architecture == "x86_64"  # AWS's default when not declared
    assert function.runtime == "python3.12"  # from Globals
    # SAM merges the Globals' variables with the function's.
    assert function.environment == {
        "LOG_LEVEL": "INFO",
        "REGION": Reference(REGION, "value"),
        "QUEUE_ARN": Reference("Queue", "arn"),
        "QUEUE_NAME": Reference("Queue", "name"),
        "SESSIONS": Reference("Sessions", "name"),
        "STAGE": None,  # a parameter without a Default
        "RETRIES": "3",
        "GREETING": None,
    }
    queue = deployment.queues["Queue"]
    assert (queue.name, queue.fifo, queue.content_based_deduplication) == (None, True, True)
    table = deployment.tables["Sessions"]
    assert (table.name, table.partition_key, table.ttl_attribute) == (None, "sessionId", "expires")


def test_computed_environment_variables_as_a_whole_are_unknown(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Lambda::Function\n"
        "    Properties:\n"
        "      Environment:\n"
        "        Variables: !If [Prod, {A: x}, {A: y}]\n",
        encoding="utf-8",
    )

    assert cloudformation.load_template(path).functions["Fn"].environment is None


def cdk_like_template(
    *, window: int = 0, response_types: list[str] | None = None
) -> dict[str, Any]:
    """What `cdk synth` writes for this pattern: plain CloudFormation JSON, long-form
    intrinsics, hashed logical ids, literal names left to CloudFormation."""
    return {
        "Resources": {
            "DeadLetterQueue9F481546": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True},
            },
            "SourceQueue6E809DF0": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "VisibilityTimeout": 180,
                    "MessageRetentionPeriod": 345600,
                    "SqsManagedSseEnabled": True,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue9F481546", "Arn"]},
                        "maxReceiveCount": 5,
                    },
                },
            },
            "ConsumerFunction3A4E9A18": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Timeout": 30, "Runtime": "python3.13"},
            },
            "ConsumerFunctionSqsEventSourceA1B2C3D4": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "EventSourceArn": {"Fn::GetAtt": ["SourceQueue6E809DF0", "Arn"]},
                    "FunctionName": {"Ref": "ConsumerFunction3A4E9A18"},
                    "BatchSize": 100,
                    "MaximumBatchingWindowInSeconds": window,
                    "FunctionResponseTypes": (
                        ["ReportBatchItemFailures"] if response_types is None else response_types
                    ),
                    "ScalingConfig": {"MaximumConcurrency": 10},
                },
            },
            "DeadLetterQueueAlarm5D2E8E3B": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateNumberOfMessagesVisible",
                    "Dimensions": [
                        {
                            "Name": "QueueName",
                            "Value": {"Fn::GetAtt": ["DeadLetterQueue9F481546", "QueueName"]},
                        }
                    ],
                    "Threshold": 0,
                },
            },
        }
    }


def test_a_cdk_synth_output_folder_is_read_stack_by_stack(tmp_path: Path) -> None:
    (tmp_path / "Consumer.template.json").write_text(
        json.dumps(cdk_like_template(window=1)), encoding="utf-8"
    )
    (tmp_path / "manifest.json").write_text("{}", encoding="utf-8")

    [deployment] = cloudformation.load_cdk_out(tmp_path)

    assert [mapping.batch_size for mapping in deployment.mappings] == [100]
    assert findings(deployment) == set()


def test_a_cdk_like_template_with_faults_raises_their_rules(tmp_path: Path) -> None:
    path = tmp_path / "Consumer.template.json"
    path.write_text(json.dumps(cdk_like_template(window=0, response_types=[])), encoding="utf-8")

    assert findings(cloudformation.load_template(path)) == {
        ("SQSL006", "error"),
        ("SQSL008", "error"),
    }


BROKEN_SAM = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  BatchSize:
    Type: Number
    Default: 100
Globals:
  Function:
    Timeout: 60
Resources:
  Dlq:
    Type: AWS::SQS::Queue
    Properties:
      SqsManagedSseEnabled: true
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: broken
      VisibilityTimeout: 30
      SqsManagedSseEnabled: false
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Dlq.Arn
        maxReceiveCount: 1
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Runtime: python3.13
      CodeUri: src/
      DeadLetterQueue:
        Type: SQS
        TargetArn: !GetAtt Dlq.Arn
      Events:
        Orders:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
            BatchSize: !Ref BatchSize
"""


def test_a_broken_sam_template_raises_the_rules_it_breaks(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(BROKEN_SAM, encoding="utf-8")

    assert findings(cloudformation.load_template(path)) == {
        ("SQSL001", "error"),  # visibility 30 s < timeout 60 s (from Globals)
        ("SQSL004", "error"),  # DLQ retention = source retention (both the default)
        ("SQSL005", "warning"),  # maxReceiveCount 1
        ("SQSL006", "error"),  # no ReportBatchItemFailures
        ("SQSL007", "warning"),  # no MaximumConcurrency, no reserved concurrency
        ("SQSL008", "error"),  # batch size 100 (the parameter's default), no window
        ("SQSL010", "warning"),  # SAM's function-level DeadLetterQueue
        ("SQSL011", "warning"),  # the source queue turns SSE-SQS off
        ("SQSL012", "warning"),  # no alarm on the DLQ
    }


BROKEN_TERRAFORM = """
variable "receives" {
  type    = number
  default = 3
}

resource "aws_sqs_queue" "dlq" {
  name                    = "broken-dlq"
  sqs_managed_sse_enabled = true
}

resource "aws_sqs_queue" "orders" {
  name                    = "broken.fifo"
  fifo_queue              = true
  sqs_managed_sse_enabled = false
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.receives
  })
}

resource "aws_sqs_queue" "audit" {
  name                    = "audit"
  sqs_managed_sse_enabled = true
}

resource "aws_lambda_function" "consumer" {
  function_name                  = "broken"
  timeout                        = 30
  reserved_concurrent_executions = 5

  dead_letter_config {
    target_arn = aws_sqs_queue.dlq.arn
  }
}

resource "aws_lambda_event_source_mapping" "orders" {
  event_source_arn        = aws_sqs_queue.orders.arn
  function_name           = aws_lambda_function.consumer.arn
  batch_size              = 20
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = 10
  }
}

resource "aws_lambda_event_source_mapping" "audit" {
  event_source_arn        = aws_sqs_queue.audit.arn
  function_name           = "broken"
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = 5
  }
}
"""


def test_a_broken_terraform_configuration_raises_the_rules_it_breaks(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(BROKEN_TERRAFORM, encoding="utf-8")

    assert findings(terraform.load_directory(tmp_path)) == {
        ("SQSL001", "warning"),  # visibility 30 s (the default) < 6 x 30 s
        ("SQSL002", "error"),  # the audit queue has no redrive policy
        ("SQSL003", "error"),  # a FIFO queue with a standard DLQ
        ("SQSL005", "error"),  # maxReceiveCount 3 (var.receives) with reserved concurrency
        ("SQSL007", "error"),  # MaximumConcurrency 10 > reserved concurrency 5
        ("SQSL009", "error"),  # batch size 20 on a FIFO queue
        ("SQSL010", "warning"),  # dead_letter_config on the function
        ("SQSL011", "warning"),  # sqs_managed_sse_enabled = false
        ("SQSL012", "warning"),  # no alarm on the DLQ
    }


def test_a_value_only_a_deployment_knows_is_unusable_input(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        BROKEN_SAM.replace("VisibilityTimeout: 30", "VisibilityTimeout: !If [Long, 900, 30]"),
        encoding="utf-8",
    )

    with pytest.raises(
        SourceError, match=r"Resources\.Queue\.VisibilityTimeout: expected a number"
    ):
        cloudformation.load_template(path)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("template.yaml", "Resources: [", "not valid YAML or JSON"),
        ("template.yaml", "AWSTemplateFormatVersion: '2010-09-09'\n", "no Resources mapping"),
        ("main.tf", 'resource "aws_sqs_queue" {', "not valid HCL"),
    ],
)
def test_unreadable_input_names_the_file(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    read: Callable[[], object] = (
        (lambda: terraform.load_directory(tmp_path))
        if name.endswith(".tf")
        else (lambda: cloudformation.load_template(path))
    )

    with pytest.raises(SourceError, match=message) as raised:
        read()

    assert str(path) in str(raised.value)


def test_a_folder_without_stack_templates_is_not_a_cdk_assembly(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a CDK cloud assembly"):
        cloudformation.load_cdk_out(tmp_path)


def test_a_dlq_outside_the_template_is_noted_not_checked(tmp_path: Path) -> None:
    template = cdk_like_template(window=1)
    del template["Resources"]["DeadLetterQueue9F481546"]
    source = template["Resources"]["SourceQueue6E809DF0"]["Properties"]
    source["RedrivePolicy"]["deadLetterTargetArn"] = {"Fn::ImportValue": "shared-dlq-arn"}
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(template), encoding="utf-8")

    deployment = cloudformation.load_template(path)

    assert findings(deployment) == set()
    assert [note for note in deployment.notes if "DLQ" in note and "not checked" in note]


TERRAFORM_WITH_VARIABLES = """
variable "timeout" {
  default = 60
}

locals {
  visibility = 360
}

resource "aws_sqs_queue" "dlq" {
  name                      = "orders-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "orders" {
  name                       = "orders"
  visibility_timeout_seconds = local.visibility
  sqs_managed_sse_enabled    = true
}

resource "aws_sqs_queue_redrive_policy" "orders" {
  queue_url = aws_sqs_queue.orders.id
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = 5
  })
}

resource "aws_lambda_function" "consumer" {
  function_name = "consumer"
  timeout       = var.timeout
}

resource "aws_lambda_event_source_mapping" "orders" {
  event_source_arn        = aws_sqs_queue.orders.arn
  function_name           = aws_lambda_function.consumer.function_name
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = 5
  }
}

resource "aws_cloudwatch_metric_alarm" "dlq" {
  namespace   = "AWS/SQS"
  metric_name = "ApproximateNumberOfMessagesVisible"
  dimensions  = { QueueName = "orders-dlq" }
}
"""


def test_terraform_variables_locals_and_a_separate_redrive_policy_are_followed(
    tmp_path: Path,
) -> None:
    (tmp_path / "main.tf").write_text(TERRAFORM_WITH_VARIABLES, encoding="utf-8")

    deployment = terraform.load_directory(tmp_path)

    source = deployment.queues["aws_sqs_queue.orders"]
    assert (source.visibility_timeout, source.redrive) == (
        360,
        Redrive("aws_sqs_queue.dlq", 5),
    )
    assert deployment.functions["aws_lambda_function.consumer"].timeout == 60
    assert findings(deployment) == set()


SETTINGS_TERRAFORM = """
provider "aws" {
  region = var.region
}

variable "region" {
  default = "eu-west-1"
}

data "aws_region" "current" {}

data "archive_file" "package" {
  type        = "zip"
  source_dir  = "${path.module}/../../build/lambda"
  output_path = "${path.module}/.build/package.zip"
}

resource "aws_sqs_queue" "dead_letter" {
  name = "orders-dlq"
}

resource "aws_sqs_queue" "source" {
  name = "orders"
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = 5
  })
}

resource "aws_dynamodb_table" "orders" {
  name     = "orders-table"
  hash_key = "orderId"

  ttl {
    attribute_name = "expires"
    enabled        = true
  }
}

resource "aws_lambda_function" "consumer" {
  function_name = "orders-consumer"
  filename      = data.archive_file.package.output_path
  handler       = "orders.handler.lambda_handler"
  runtime       = "python3.13"
  architectures = ["arm64"]
  memory_size   = 512

  environment {
    variables = {
      ORDERS_TABLE_NAME     = aws_dynamodb_table.orders.name
      DEAD_LETTER_QUEUE_URL = aws_sqs_queue.dead_letter.url
      REGION                = data.aws_region.current.name
      LOG_LEVEL             = "INFO"
      COMPUTED              = upper("x")
    }
  }
}

resource "aws_lambda_event_source_mapping" "orders" {
  event_source_arn        = aws_sqs_queue.source.arn
  function_name           = aws_lambda_function.consumer.arn
  function_response_types = ["ReportBatchItemFailures"]
}
"""


def test_terraform_gives_what_the_settings_table_declares(tmp_path: Path) -> None:
    folder = tmp_path / "infra" / "terraform"
    folder.mkdir(parents=True)
    (folder / "main.tf").write_text(SETTINGS_TERRAFORM, encoding="utf-8")

    deployment = terraform.load_directory(folder)

    function = deployment.functions["aws_lambda_function.consumer"]
    assert (function.name, function.handler, function.runtime) == (
        "orders-consumer",
        "orders.handler.lambda_handler",
        "python3.13",
    )
    assert (function.architecture, function.memory) == ("arm64", 512)
    assert function.code == f"{folder}/../../build/lambda"  # what the archive_file zips
    assert function.environment == {
        "ORDERS_TABLE_NAME": Reference("aws_dynamodb_table.orders", "name"),
        "DEAD_LETTER_QUEUE_URL": Reference("aws_sqs_queue.dead_letter", "url"),
        "REGION": Reference(REGION, "value"),
        "LOG_LEVEL": "INFO",
        "COMPUTED": None,  # only a plan knows
    }
    assert deployment.queues["aws_sqs_queue.source"].name == "orders"
    table = deployment.tables["aws_dynamodb_table.orders"]
    assert (table.name, table.partition_key, table.ttl_attribute) == (
        "orders-table",
        "orderId",
        "expires",
    )
    assert deployment.region == "eu-west-1"  # the provider's, through var.region


def test_a_cdk_template_references_its_resources_by_logical_id(tmp_path: Path) -> None:
    template = cdk_like_template(window=1)
    function = template["Resources"]["ConsumerFunction3A4E9A18"]["Properties"]
    function["Code"] = {"S3Bucket": {"Fn::Sub": "cdk-${AWS::AccountId}"}, "S3Key": "a.zip"}
    function["Environment"] = {
        "Variables": {"DEAD_LETTER_QUEUE_URL": {"Ref": "DeadLetterQueue9F481546"}}
    }
    path = tmp_path / "Stack.template.json"
    path.write_text(json.dumps(template), encoding="utf-8")

    read = cloudformation.load_template(path).functions["ConsumerFunction3A4E9A18"]

    assert read.code is None  # an S3 location of the CDK's assets
    assert read.environment == {
        "DEAD_LETTER_QUEUE_URL": Reference("DeadLetterQueue9F481546", "url")
    }
