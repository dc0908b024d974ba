"""The service's stack: the queue, its dead-letter queue, the consumer function, its event
source mapping, the tables, an explicit least-privilege role and the DLQ alarm.

It declares what the SAM flavour of this template declares, with the same settings from
the same answers (``config.py``). Three habits keep the synthesized template exact:

* no grant helper (``grant_consume_messages``, ``SqsEventSource``, ``grant_write_data``...):
  each adds actions the code never calls (``sqs:ChangeMessageVisibility``,
  ``sqs:GetQueueUrl``, ``dynamodb:BatchWriteItem``...); the role's statements are written
  out, one per use, and the mapping is a plain :class:`aws_lambda.EventSourceMapping`;
* the logical ids are the SAM template's (``SourceQueue``, ``ConsumerFunction``...), not
  CDK's hashed ones, so a refactor of the constructs never replaces a queue or a table and
  every tool (preflight, the contract tests) finds the same names in every flavour;
* the checkov skips are annotated on the resources they concern, with the reason.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .config import StackConfig

LOG_RETENTION = logs.RetentionDays.ONE_YEAR

SSE_SQS_SKIP = (
    "CKV_AWS_27",
    "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled: true), which this check does not"
    " recognise; it only accepts SSE-KMS (KmsMasterKeyId).",
)
AWS_MANAGED_TABLE_KEY_SKIP = (
    "CKV_AWS_119",
    "Encrypted at rest with the AWS managed key (SSESpecification.SSEEnabled, aws/dynamodb);"
    " no cross-account access or key revocation requirement calls for a customer managed key."
    " Set KMSMasterKeyId if data classification demands one.",
)
LOG_GROUP_KEY_SKIP = (
    "CKV_AWS_158",
    "CloudWatch Logs encrypts every log group at rest with service managed keys; these logs"
    " carry order ids and outcomes, never secrets or payment data, so a customer managed key"
    " adds cost without a control requirement.",
)
FUNCTION_DLQ_SKIP = (
    "CKV_AWS_116",
    "The source queue's RedrivePolicy is the DLQ of this SQS event source mapping; a function"
    " DeadLetterConfig applies to asynchronous invocations only and would never receive a"
    " message.",
)
FUNCTION_VPC_SKIP = (
    "CKV_AWS_117",
    "The function reaches only SQS, DynamoDB and CloudWatch Logs through their public AWS"
    " endpoints with IAM auth; it accesses no VPC resource, and a VPC would add NAT or"
    " endpoint cost and cold-start latency for no isolation gain.",
)
FUNCTION_ENV_KEY_SKIP = (
    "CKV_AWS_173",
    "The environment holds only resource names, a queue URL and a log level, no secrets;"
    " Lambda encrypts it at rest with its AWS managed key.",
)


def reserved_concurrency_skip(max_concurrency: int) -> tuple[str, str]:
    """CKV_AWS_115 (no reserved concurrency), skipped only when none is reserved."""
    return (
        "CKV_AWS_115",
        "Concurrency is capped per event source mapping by ScalingConfig.MaximumConcurrency"
        f" ({max_concurrency}); reserved concurrency alone makes the mapping throttle and drift"
        " healthy messages to the DLQ (reserved_concurrency answer is 0).",
    )


def _cfn(construct: Construct) -> cdk.CfnResource:
    """The CloudFormation resource an L2 construct wraps."""
    child = construct.node.default_child
    if not isinstance(child, cdk.CfnResource):
        raise TypeError(f"{construct.node.path} wraps no CloudFormation resource")
    return child


def _declare(construct: Construct, logical_id: str, *skips: tuple[str, str]) -> None:
    """Give the resource its stable logical id and annotate its checkov skips."""
    resource = construct if isinstance(construct, cdk.CfnResource) else _cfn(construct)
    resource.override_logical_id(logical_id)
    if skips:
        resource.add_metadata(
            "checkov",
            {"skip": [{"id": check, "comment": comment} for check, comment in skips]},
        )


class ConsumerStack(cdk.Stack):
    """An SQS queue consumed by a Lambda function, from the answers in ``config``.

    ``code`` is the function's artifact: ``make package`` builds ``build/lambda/`` for the
    app; tests pass a small asset of their own.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        code: lambda_.Code,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, description=config.description, **kwargs)
        self.config = config
        self.dead_letter_queue = self._dead_letter_queue()
        self.source_queue = self._source_queue()
        self.orders_table = self._orders_table()
        self.idempotency_table = self._idempotency_table()
        self.log_group = self._log_group()
        self.role = self._role()
        self.function = self._function(code)
        self.mapping = self._event_source_mapping()
        self.alarm_topic = self._dlq_alarm() if config.dlq_alarm else None
        self._outputs()

    # ------------------------------------------------------------------ queues
    def _fifo_props(self) -> dict[str, Any]:
        """The FIFO attributes, the same on both queues; nothing for a standard queue."""
        if not self.config.fifo:
            return {}
        high = self.config.fifo_high_throughput
        return {
            "fifo": True,
            "content_based_deduplication": self.config.fifo_content_based_deduplication,
            "deduplication_scope": (
                sqs.DeduplicationScope.MESSAGE_GROUP if high else sqs.DeduplicationScope.QUEUE
            ),
            "fifo_throughput_limit": (
                sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID
                if high
                else sqs.FifoThroughputLimit.PER_QUEUE
            ),
        }

    def _dead_letter_queue(self) -> sqs.Queue:
        # The same type as the source queue. A standard queue's message keeps its original
        # enqueue time in the DLQ, so the DLQ's retention must outlive the source's.
        queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=self.config.dlq_name,
            retention_period=cdk.Duration.seconds(self.config.dlq_retention_seconds),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            **self._fifo_props(),
        )
        _declare(queue, "DeadLetterQueue", SSE_SQS_SKIP)
        return queue

    def _source_queue(self) -> sqs.Queue:
        # Visibility timeout: at least 6 x the function timeout plus the batching window,
        # as AWS advises for an event source mapping. The redrive policy is the consumer's
        # dead-letter queue: after max_receive_count receives a message moves there.
        queue = sqs.Queue(
            self,
            "SourceQueue",
            queue_name=self.config.source_queue_name,
            visibility_timeout=cdk.Duration.seconds(self.config.visibility_timeout_seconds),
            retention_period=cdk.Duration.seconds(self.config.source_retention_seconds),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=self.config.max_receive_count
            ),
            **self._fifo_props(),
        )
        _declare(queue, "SourceQueue", SSE_SQS_SKIP)
        return queue

    # ------------------------------------------------------------------ tables
    def _table(
        self, logical_id: str, name: str, key: str, removal: cdk.RemovalPolicy, **extra: Any
    ) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            logical_id,
            table_name=name,
            partition_key=dynamodb.Attribute(name=key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=removal,
            **extra,
        )
        _declare(table, logical_id, AWS_MANAGED_TABLE_KEY_SKIP)
        return table

    def _orders_table(self) -> dynamodb.Table:
        # The service's data: kept when the stack is deleted.
        return self._table(
            "OrdersTable", self.config.orders_table_name, "orderId", cdk.RemovalPolicy.RETAIN
        )

    def _idempotency_table(self) -> dynamodb.Table | None:
        # Idempotency records (partition key `id`); DynamoDB's TTL deletes them after
        # `expiration`. Disposable: deleted with the stack.
        if self.config.idempotency_table_name is None:
            return None
        return self._table(
            "IdempotencyTable",
            self.config.idempotency_table_name,
            "id",
            cdk.RemovalPolicy.DESTROY,
            time_to_live_attribute="expiration",
        )

    # ------------------------------------------------------------------ function
    def _log_group(self) -> logs.LogGroup:
        group = logs.LogGroup(
            self,
            "ConsumerLogGroup",
            log_group_name=f"/aws/lambda/{self.config.function_name}",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        _declare(group, "ConsumerLogGroup", LOG_GROUP_KEY_SKIP)
        return group

    def _role(self) -> iam.Role:
        # Only the actions the code uses, on its own resources; no managed policy (the
        # AWS managed ones for Lambda and SQS apply to every queue and log group).
        statements = [
            # The event source mapping polls with the function's role.
            iam.PolicyStatement(
                sid="ConsumeSourceQueue",
                actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                resources=[self.source_queue.queue_arn],
            ),
        ]
        if self.config.sends_poison_to_dlq:
            # poison_policy=dlq_now: a permanently failing record is sent to the DLQ at once,
            # fitted to the DLQ's MaximumMessageSize (dead_letter.py reads it).
            statements.append(
                iam.PolicyStatement(
                    sid="SendPoisonToDeadLetterQueue",
                    actions=["sqs:SendMessage", "sqs:GetQueueAttributes"],
                    resources=[self.dead_letter_queue.queue_arn],
                )
            )
        # orders.py: a conditional PutItem per order.
        statements.append(
            iam.PolicyStatement(
                sid="RecordOrders",
                actions=["dynamodb:PutItem"],
                resources=[self.orders_table.table_arn],
            )
        )
        if self.idempotency_table is not None:
            # idempotency.py: claim (PutItem), read (GetItem), complete (UpdateItem),
            # release on failure (DeleteItem).
            statements.append(
                iam.PolicyStatement(
                    sid="IdempotencyRecords",
                    actions=[
                        "dynamodb:PutItem",
                        "dynamodb:GetItem",
                        "dynamodb:UpdateItem",
                        "dynamodb:DeleteItem",
                    ],
                    resources=[self.idempotency_table.table_arn],
                )
            )
        # The log group exists (ConsumerLogGroup): no logs:CreateLogGroup.
        statements.append(
            iam.PolicyStatement(
                sid="WriteLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        role = iam.Role(
            self,
            "ConsumerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            inline_policies={"consumer": iam.PolicyDocument(statements=statements)},
        )
        _declare(role, "ConsumerRole")
        return role

    def _function(self, code: lambda_.Code) -> lambda_.Function:
        config = self.config
        environment = {"ORDERS_TABLE_NAME": self.orders_table.table_name}
        if self.idempotency_table is not None:
            environment["IDEMPOTENCY_TABLE_NAME"] = self.idempotency_table.table_name
        if config.sends_poison_to_dlq:
            environment["DEAD_LETTER_QUEUE_URL"] = self.dead_letter_queue.queue_url
        environment["POWERTOOLS_SERVICE_NAME"] = config.service_name
        environment["LOG_LEVEL"] = "INFO"
        function = lambda_.Function(
            self,
            "ConsumerFunction",
            function_name=config.function_name,
            description=config.description,
            code=code,
            handler=f"{config.package_name}.handler.lambda_handler",
            runtime=lambda_.Runtime(config.runtime, lambda_.RuntimeFamily.PYTHON),
            architecture=(
                lambda_.Architecture.ARM_64
                if config.architecture == "arm64"
                else lambda_.Architecture.X86_64
            ),
            memory_size=config.memory_mb,
            timeout=cdk.Duration.seconds(config.timeout_seconds),
            reserved_concurrent_executions=config.reserved_concurrency or None,
            role=self.role,
            logging_format=lambda_.LoggingFormat.JSON,
            log_group=self.log_group,
            environment=environment,
            # No dead_letter_queue: see the checkov skip CKV_AWS_116.
        )
        # CDK makes the function depend on its role so that a role's separate policy exists
        # first; this role's policies are inline and Role: GetAtt already orders them
        # (cfn-lint W3005 flags the duplicate).
        _cfn(function).add_deletion_override("DependsOn")
        skips = [FUNCTION_DLQ_SKIP, FUNCTION_VPC_SKIP, FUNCTION_ENV_KEY_SKIP]
        if config.reserved_concurrency == 0:
            skips.append(reserved_concurrency_skip(config.max_concurrency))
        _declare(function, "ConsumerFunction", *skips)
        return function

    def _event_source_mapping(self) -> lambda_.EventSourceMapping:
        config = self.config
        mapping = lambda_.EventSourceMapping(
            self,
            "ConsumerEventSourceMapping",
            target=self.function,
            event_source_arn=self.source_queue.queue_arn,
            batch_size=config.batch_size,
            # FIFO event source mappings have no batching window.
            max_batching_window=(
                None if config.fifo else cdk.Duration.seconds(config.batching_window_seconds)
            ),
            # Without it Lambda ignores the handler's batchItemFailures and deletes the batch.
            report_batch_item_failures=True,
            max_concurrency=config.max_concurrency,
        )
        _declare(mapping, "ConsumerEventSourceMapping")
        return mapping

    # ------------------------------------------------------------------ DLQ alarm
    def _dlq_alarm(self) -> sns.Topic:
        config = self.config
        # CloudWatch publishes to an encrypted topic only with a customer managed key whose
        # policy lets cloudwatch.amazonaws.com use it (the AWS managed aws/sns key does not).
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"Encrypts the DLQ alarm topic of {config.service_name}",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="AccountAdministers",
                        principals=[iam.AccountRootPrincipal()],
                        actions=[
                            "kms:Create*",
                            "kms:Describe*",
                            "kms:Enable*",
                            "kms:List*",
                            "kms:Put*",
                            "kms:Update*",
                            "kms:Revoke*",
                            "kms:Disable*",
                            "kms:Get*",
                            "kms:Delete*",
                            "kms:TagResource",
                            "kms:UntagResource",
                            "kms:ScheduleKeyDeletion",
                            "kms:CancelKeyDeletion",
                            "kms:Encrypt",
                            "kms:Decrypt",
                            "kms:GenerateDataKey*",
                        ],
                        resources=["*"],
                    ),
                    iam.PolicyStatement(
                        sid="CloudWatchPublishes",
                        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                        actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                        resources=["*"],
                    ),
                ]
            ),
        )
        _declare(key, "AlarmTopicKey")
        topic = sns.Topic(self, "AlarmTopic", topic_name=config.alarm_topic_name, master_key=key)
        _declare(topic, "AlarmTopic")
        policy = sns.TopicPolicy(
            self,
            "AlarmTopicPolicy",
            topics=[topic],
            policy_document=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="CloudWatchAlarmsPublish",
                        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                        actions=["sns:Publish"],
                        resources=[topic.topic_arn],
                        conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
                    )
                ]
            ),
        )
        _declare(policy, "AlarmTopicPolicy")
        # Any message in the DLQ needs a look: a poison message or a retry budget exhausted.
        alarm = cloudwatch.Alarm(
            self,
            "DeadLetterQueueAlarm",
            alarm_name=f"{config.dlq_name}-not-empty",
            alarm_description=f"Messages in the dead-letter queue of {config.source_queue_name}",
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(1), statistic="Maximum"
            ),
            evaluation_periods=1,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
        _declare(alarm, "DeadLetterQueueAlarm")
        return topic

    def _outputs(self) -> None:
        outputs = {
            "SourceQueueUrl": self.source_queue.queue_url,
            "SourceQueueArn": self.source_queue.queue_arn,
            "DeadLetterQueueUrl": self.dead_letter_queue.queue_url,
            "FunctionName": self.function.function_name,
            "OrdersTableName": self.orders_table.table_name,
        }
        if self.alarm_topic is not None:
            outputs["AlarmTopicArn"] = self.alarm_topic.topic_arn
        for name, value in outputs.items():
            cdk.CfnOutput(self, name, value=value)
