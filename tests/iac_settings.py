"""The effective settings of a rendered stack, read the same way from every IaC flavour.

Each reader turns one flavour's output into the same flat mapping
(``"source_queue.visibility_timeout" -> 180``, ...), so the contract test can compare flavours key
by key and against the answers, and a number that drifts in one flavour is one differing key:

- :func:`from_cloudformation` reads a CloudFormation template: the SAM template after the real SAM
  transform (:func:`sam_to_cloudformation`), or the CDK app's synthesized template.
- :func:`from_terraform` reads the parsed HCL of ``infra/terraform``.
- :func:`expected` builds the mapping from the answers and computed values (the probe's output).
- :func:`from_sqsl_table` reads the part of it a render's ``[tool.sqsl]`` (the local tools'
  settings) declares.

The readers find each resource by its role in the pattern (the mapping's event source is the
source queue, its redrive target the DLQ, the function's environment names the tables, ...), not
by logical id: CDK's ids are generated. Resources are named by role in the result
(``SourceQueue``, ``DeadLetterQueue``, ``OrdersTable``, ``IdempotencyTable``, ``ConsumerLogGroup``),
the names ``tests.iac_expectations.expected_grants`` uses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqs_lambda_tools.project import Project

from tests.iac_expectations import expected_grants

Settings = dict[str, Any]

#: Logical role names, the vocabulary of expected_grants().
SOURCE, DLQ, ORDERS, IDEMPOTENCY, LOGS = (
    "SourceQueue",
    "DeadLetterQueue",
    "OrdersTable",
    "IdempotencyTable",
    "ConsumerLogGroup",
)


def expected(values: Mapping[str, Any]) -> Settings:
    """What every flavour must declare for these answers and computed values."""
    fifo = bool(values["is_fifo"])
    high_throughput = fifo and bool(values["fifo_high_throughput"])
    queue_type = {
        "fifo": fifo,
        "content_based_deduplication": fifo and bool(values["fifo_content_based_deduplication"]),
        "deduplication_scope": ("messageGroup" if high_throughput else "queue") if fifo else None,
        "fifo_throughput_limit": ("perMessageGroupId" if high_throughput else "perQueue")
        if fifo
        else None,
    }
    environment = {
        "ORDERS_TABLE_NAME": f"{ORDERS}.name",
        "POWERTOOLS_SERVICE_NAME": values["project_slug"],
        "LOG_LEVEL": "INFO",
    }
    if values["idempotency"] == "dynamodb":
        environment["IDEMPOTENCY_TABLE_NAME"] = f"{IDEMPOTENCY}.name"
    if values["poison_policy"] == "dlq_now":
        environment["DEAD_LETTER_QUEUE_URL"] = f"{DLQ}.url"
    settings: Settings = {
        **_prefixed("source_queue", queue_type),
        "source_queue.name": values["source_queue_name"],
        "source_queue.visibility_timeout": values["queue_visibility_timeout_seconds"],
        "source_queue.retention": values["source_retention_period_seconds"],
        "source_queue.sse": True,
        "source_queue.redrive_target": DLQ,
        "source_queue.max_receive_count": values["max_receive_count"],
        **_prefixed("dead_letter_queue", queue_type),
        "dead_letter_queue.name": values["dlq_name"],
        "dead_letter_queue.retention": values["dlq_retention_period_seconds"],
        "dead_letter_queue.sse": True,
        "dead_letter_queue.redrive_target": None,
        "function.name": values["function_name"],
        "function.handler": f"{values['package_name']}.handler.lambda_handler",
        "function.runtime": values["lambda_runtime"],
        "function.architecture": values["architecture"],
        "function.memory": values["memory_mb"],
        "function.timeout": values["function_timeout_seconds"],
        "function.reserved_concurrency": values["reserved_concurrency"] or None,
        "function.dead_letter_config": False,
        "function.log_format": "JSON",
        "function.log_group": LOGS,
        "function.environment": environment,
        "log_group.name": f"/aws/lambda/{values['function_name']}",
        "log_group.retention_days": 365,
        "mapping.event_source": SOURCE,
        "mapping.batch_size": values["batch_size"],
        "mapping.batching_window": None if fifo else values["batching_window_seconds"],
        "mapping.response_types": ["ReportBatchItemFailures"],
        "mapping.max_concurrency": values["max_concurrency"],
        "mapping.enabled": True,
        **_prefixed("orders_table", _table(values["orders_table_name"], "orderId", None)),
        "alarm": _expected_alarm(values) if values["dlq_alarm"] else None,
        "grants": sorted(expected_grants(values)),
    }
    if values["idempotency"] == "dynamodb":
        table = _table(values["idempotency_table_name"], "id", "expiration")
        settings.update(_prefixed("idempotency_table", table))
    return settings


#: The table's placeholders, as the readers name what an environment value refers to.
_PLACEHOLDERS = {
    "{tables.orders}": f"{ORDERS}.name",
    "{tables.idempotency}": f"{IDEMPOTENCY}.name",
    "{dlq.url}": f"{DLQ}.url",
}
#: Deployed only: the local tools take the log level from `sqsl run --log-level`.
DEPLOY_ONLY_ENVIRONMENT = frozenset({"LOG_LEVEL"})


def from_sqsl_table(project: Project) -> Settings:
    """The settings ``[tool.sqsl]`` declares, with the keys and values of :func:`expected`."""
    queue, dlq, function = project.queue, project.dlq, project.function
    settings: Settings = {
        "source_queue.name": queue.name,
        "source_queue.fifo": queue.fifo,
        "source_queue.content_based_deduplication": queue.content_based_deduplication,
        "source_queue.visibility_timeout": queue.visibility_timeout_seconds,
        "source_queue.retention": queue.retention_seconds,
        "source_queue.max_receive_count": dlq.max_receive_count,
        "dead_letter_queue.name": dlq.name,
        "dead_letter_queue.fifo": dlq.name.endswith(".fifo"),
        "dead_letter_queue.retention": dlq.retention_seconds,
        "function.name": function.name,
        "function.handler": function.handler,
        "function.runtime": function.runtime,
        "function.architecture": function.architecture,
        "function.memory": function.memory_mb,
        "function.timeout": function.timeout_seconds,
        "function.environment": {
            name: _PLACEHOLDERS.get(value, value) for name, value in function.environment.items()
        },
        "mapping.batch_size": project.mapping.batch_size,
        # A FIFO mapping has no batching window (the IaC declares none).
        "mapping.batching_window": None if queue.fifo else project.mapping.batching_window_seconds,
        "mapping.max_concurrency": project.mapping.maximum_concurrency,
    }
    for key, role in (("orders", "orders_table"), ("idempotency", "idempotency_table")):
        if key in project.tables:
            table = project.tables[key]
            settings[f"{role}.name"] = table.name
            settings[f"{role}.key"] = table.key
            settings[f"{role}.ttl"] = table.ttl_attribute
    return settings


def _expected_alarm(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": f"{values['dlq_name']}-not-empty",
        "queue": DLQ,
        "namespace": "AWS/SQS",
        "metric": "ApproximateNumberOfMessagesVisible",
        "statistic": "Maximum",
        "period": 60,
        "evaluation_periods": 1,
        "threshold": 0,
        "comparison": "GreaterThanThreshold",
        "missing_data": "notBreaching",
        "actions": 1,
    }


def _table(name: str, key: str, ttl: str | None) -> dict[str, Any]:
    return {
        "name": name,
        "billing": "PAY_PER_REQUEST",
        "key": key,
        "ttl": ttl,
        "sse": True,
        "pitr": True,
    }


def _prefixed(prefix: str, values: Mapping[str, Any]) -> Settings:
    return {f"{prefix}.{key}": value for key, value in values.items()}


# ---------------------------------------------------------------------- CloudFormation


def sam_to_cloudformation(template: Mapping[str, Any], region: str) -> dict[str, Any]:
    """The CloudFormation template SAM deploys: the real SAM transform, run offline.

    ``CodeUri`` is replaced by an S3 URI first, as ``sam package`` does; the template names no
    managed policy, so the policy loader is never asked for one.
    """
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    packaged = json.loads(json.dumps(template))
    for resource in packaged["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://packaged/code.zip"
    # The region comes from a boto3 session (pseudo parameters): one made here, since the
    # tests set no AWS_DEFAULT_REGION; nothing is called.
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=region))
    result: dict[str, Any] = translator.translate(
        packaged, parameter_values={}, get_managed_policy_map=dict
    )
    return result


def from_cloudformation(template: Mapping[str, Any]) -> Settings:
    """The effective settings of a plain CloudFormation template (no SAM resources)."""
    resources: Mapping[str, Mapping[str, Any]] = template["Resources"]

    def of_type(kind: str) -> dict[str, Mapping[str, Any]]:
        return {rid: r.get("Properties", {}) for rid, r in resources.items() if r["Type"] == kind}

    (_, function), *others = of_type("AWS::Lambda::Function").items()
    assert not others, f"one function expected, found also {[rid for rid, _ in others]}"
    (_, mapping), *others = of_type("AWS::Lambda::EventSourceMapping").items()
    assert not others, "one event source mapping expected"
    names: dict[str, str] = {}
    source_id = _cfn_target(mapping["EventSourceArn"])
    names[source_id] = SOURCE
    source = resources[source_id]["Properties"]
    redrive = source.get("RedrivePolicy") or {}
    if redrive:
        names[_cfn_target(redrive["deadLetterTargetArn"])] = DLQ
    variables = function.get("Environment", {}).get("Variables", {})
    for variable, role in (("ORDERS_TABLE_NAME", ORDERS), ("IDEMPOTENCY_TABLE_NAME", IDEMPOTENCY)):
        if variable in variables:
            names[_cfn_target(variables[variable])] = role
    logging = function.get("LoggingConfig", {})
    if "LogGroup" in logging:
        names[_cfn_target(logging["LogGroup"])] = LOGS
    by_role = {role: resources[rid].get("Properties", {}) for rid, role in names.items()}

    settings: Settings = {}
    for prefix, role in (("source_queue", SOURCE), ("dead_letter_queue", DLQ)):
        queue = by_role.get(role, {})
        queue_redrive = queue.get("RedrivePolicy") or {}
        settings.update(
            _prefixed(
                prefix,
                {
                    "name": queue.get("QueueName"),
                    "fifo": bool(queue.get("FifoQueue", False)),
                    "content_based_deduplication": bool(
                        queue.get("ContentBasedDeduplication", False)
                    ),
                    "deduplication_scope": queue.get("DeduplicationScope"),
                    "fifo_throughput_limit": queue.get("FifoThroughputLimit"),
                    "retention": queue.get("MessageRetentionPeriod"),
                    "sse": bool(queue.get("SqsManagedSseEnabled", False)),
                    "redrive_target": names.get(_cfn_target(queue_redrive["deadLetterTargetArn"]))
                    if queue_redrive
                    else None,
                },
            )
        )
    settings["source_queue.visibility_timeout"] = source.get("VisibilityTimeout", 30)
    settings["source_queue.max_receive_count"] = redrive.get("maxReceiveCount")
    log_group = by_role.get(LOGS, {})
    settings.update(
        {
            "function.name": function.get("FunctionName"),
            "function.handler": function.get("Handler"),
            "function.runtime": function.get("Runtime"),
            "function.architecture": _single(function.get("Architectures", ["x86_64"])),
            "function.memory": function.get("MemorySize", 128),
            "function.timeout": function.get("Timeout", 3),
            "function.reserved_concurrency": function.get("ReservedConcurrentExecutions"),
            "function.dead_letter_config": "DeadLetterConfig" in function,
            "function.log_format": logging.get("LogFormat", "Text"),
            "function.log_group": names.get(_cfn_target(logging["LogGroup"]))
            if "LogGroup" in logging
            else None,
            "function.environment": {
                key: _cfn_value(value, names) for key, value in variables.items()
            },
            "log_group.name": log_group.get("LogGroupName"),
            "log_group.retention_days": log_group.get("RetentionInDays"),
            "mapping.event_source": SOURCE,
            "mapping.batch_size": mapping.get("BatchSize"),
            "mapping.batching_window": mapping.get("MaximumBatchingWindowInSeconds"),
            "mapping.response_types": mapping.get("FunctionResponseTypes", []),
            "mapping.max_concurrency": mapping.get("ScalingConfig", {}).get("MaximumConcurrency"),
            "mapping.enabled": mapping.get("Enabled", True),
        }
    )
    for prefix, role in (("orders_table", ORDERS), ("idempotency_table", IDEMPOTENCY)):
        if role in by_role:
            table = by_role[role]
            ttl = table.get("TimeToLiveSpecification", {})
            settings.update(
                _prefixed(
                    prefix,
                    {
                        "name": table.get("TableName"),
                        "billing": table.get("BillingMode", "PROVISIONED"),
                        "key": _single(
                            [
                                key["AttributeName"]
                                for key in table["KeySchema"]
                                if key["KeyType"] == "HASH"
                            ]
                        ),
                        "ttl": ttl.get("AttributeName") if ttl.get("Enabled") else None,
                        "sse": bool(table.get("SSESpecification", {}).get("SSEEnabled", False)),
                        "pitr": bool(
                            table.get("PointInTimeRecoverySpecification", {}).get(
                                "PointInTimeRecoveryEnabled", False
                            )
                        ),
                    },
                )
            )
    settings["alarm"] = _cfn_alarm(of_type("AWS::CloudWatch::Alarm"), names)
    role_id = _cfn_target(function["Role"])
    settings["grants"] = sorted(_cfn_grants(resources, role_id, names))
    return settings


def _cfn_target(value: Any) -> str:
    """The logical id a ``Ref`` or ``Fn::GetAtt`` points at."""
    if isinstance(value, Mapping):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    raise AssertionError(f"not a reference to a resource: {value!r}")


def _cfn_value(value: Any, names: Mapping[str, str]) -> Any:
    """A literal as it is; a reference as ``Role.attribute`` (``Ref`` of a queue is its URL)."""
    if not isinstance(value, Mapping):
        return value
    target = names.get(_cfn_target(value), _cfn_target(value))
    if "Ref" in value:
        return f"{target}.{'url' if target in (SOURCE, DLQ) else 'name'}"
    attribute = value["Fn::GetAtt"]
    return f"{target}.{(attribute[1] if isinstance(attribute, list) else attribute.split('.')[1])}"


def _cfn_alarm(
    alarms: Mapping[str, Mapping[str, Any]], names: Mapping[str, str]
) -> dict[str, Any] | None:
    assert len(alarms) <= 1, f"at most one alarm expected: {list(alarms)}"
    for alarm in alarms.values():
        dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        return {
            "name": alarm.get("AlarmName"),
            "queue": names.get(_cfn_target(dimensions["QueueName"])),
            "namespace": alarm.get("Namespace"),
            "metric": alarm.get("MetricName"),
            "statistic": alarm.get("Statistic"),
            "period": alarm.get("Period"),
            "evaluation_periods": alarm.get("EvaluationPeriods"),
            "threshold": alarm.get("Threshold"),
            "comparison": alarm.get("ComparisonOperator"),
            "missing_data": alarm.get("TreatMissingData", "missing"),
            "actions": len(alarm.get("AlarmActions", [])),
        }
    return None


def _cfn_grants(
    resources: Mapping[str, Mapping[str, Any]], role_id: str, names: Mapping[str, str]
) -> set[tuple[str, str]]:
    """Every (action, resource role) the function's role allows: inline and attached policies."""
    role = resources[role_id]["Properties"]
    assert not role.get("ManagedPolicyArns"), "the role must hold no managed policy"
    documents = [policy["PolicyDocument"] for policy in role.get("Policies", [])]
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy":
            attached = resource["Properties"].get("Roles", [])
            if any(_cfn_target(r) == role_id for r in attached):
                documents.append(resource["Properties"]["PolicyDocument"])
    grants: set[tuple[str, str]] = set()
    for document in documents:
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow", statement
            for action in _as_list(statement["Action"]):
                for target in _as_list(statement["Resource"]):
                    grants.add((action, str(_cfn_value(target, names)).removesuffix(".Arn")))
    return grants


# ---------------------------------------------------------------------- Terraform

_REFERENCE = re.compile(
    r"^\$\{(?P<address>(?:data\.)?[a-z0-9_]+\.[a-z0-9_]+)\.(?P<attr>[a-z0-9_]+)\}$"
)
_REDRIVE = re.compile(
    r"deadLetterTargetArn\s*=\s*(?P<target>[a-z0-9_]+\.[a-z0-9_]+)\.arn\s*,\s*"
    r"maxReceiveCount\s*=\s*(?P<count>\d+)"
)


def from_terraform(files: Iterable[Mapping[str, Any]]) -> Settings:
    """The effective settings of ``infra/terraform`` (python-hcl2 output, quotes stripped)."""
    blocks: dict[str, dict[str, Any]] = {}
    variables: dict[str, Any] = {}
    for parsed in files:
        for kind in ("resource", "data"):
            for entry in parsed.get(kind, []):
                for block_type, named in entry.items():
                    for name, body in named.items():
                        prefix = "data." if kind == "data" else ""
                        blocks[f"{prefix}{block_type}.{name}"] = body
        for entry in parsed.get("variable", []):
            for name, body in entry.items():
                variables[name] = body.get("default")

    def of_type(kind: str) -> dict[str, dict[str, Any]]:
        return {a: b for a, b in blocks.items() if a.split(".", 1)[0] == kind}

    (_, function), *others = of_type("aws_lambda_function").items()
    assert not others, "one function expected"
    (_, mapping), *others = of_type("aws_lambda_event_source_mapping").items()
    assert not others, "one event source mapping expected"
    names: dict[str, str] = {}
    source_address = _tf_reference(mapping["event_source_arn"])[0]
    names[source_address] = SOURCE
    source = blocks[source_address]
    redrive = _REDRIVE.search(source.get("redrive_policy", ""))
    if redrive:
        names[redrive["target"]] = DLQ
    variables_block = _nested(function, "environment").get("variables", {})
    for variable, role in (("ORDERS_TABLE_NAME", ORDERS), ("IDEMPOTENCY_TABLE_NAME", IDEMPOTENCY)):
        if variable in variables_block:
            names[_tf_reference(variables_block[variable])[0]] = role
    logging = _nested(function, "logging_config")
    if "log_group" in logging:
        names[_tf_reference(logging["log_group"])[0]] = LOGS
    by_role = {role: blocks[address] for address, role in names.items()}

    def resolve(value: Any) -> Any:
        """A variable as its default, a resource attribute as ``Role.attribute``."""
        if isinstance(value, str) and value.startswith("${var.") and value.endswith("}"):
            return variables[value[len("${var.") : -1]]
        if isinstance(value, str) and _REFERENCE.match(value):
            address, attribute = _tf_reference(value)
            return f"{names.get(address, address)}.{attribute}"
        return value

    settings: Settings = {}
    for prefix, role in (("source_queue", SOURCE), ("dead_letter_queue", DLQ)):
        queue = by_role.get(role, {})
        queue_redrive = _REDRIVE.search(queue.get("redrive_policy", ""))
        fifo = bool(queue.get("fifo_queue", False))
        settings.update(
            _prefixed(
                prefix,
                {
                    "name": queue.get("name"),
                    "fifo": fifo,
                    "content_based_deduplication": bool(
                        queue.get("content_based_deduplication", False)
                    ),
                    "deduplication_scope": queue.get("deduplication_scope"),
                    "fifo_throughput_limit": queue.get("fifo_throughput_limit"),
                    "retention": queue.get("message_retention_seconds"),
                    "sse": bool(queue.get("sqs_managed_sse_enabled", False)),
                    "redrive_target": names.get(queue_redrive["target"]) if queue_redrive else None,
                },
            )
        )
    settings["source_queue.visibility_timeout"] = source.get("visibility_timeout_seconds", 30)
    settings["source_queue.max_receive_count"] = int(redrive["count"]) if redrive else None
    log_group = by_role.get(LOGS, {})
    scaling = _nested(mapping, "scaling_config")
    settings.update(
        {
            "function.name": function.get("function_name"),
            "function.handler": function.get("handler"),
            "function.runtime": function.get("runtime"),
            "function.architecture": _single(function.get("architectures", ["x86_64"])),
            "function.memory": function.get("memory_size", 128),
            "function.timeout": function.get("timeout", 3),
            "function.reserved_concurrency": _none_if_unreserved(
                function.get("reserved_concurrent_executions", -1)
            ),
            "function.dead_letter_config": "dead_letter_config" in function,
            "function.log_format": logging.get("log_format", "Text"),
            "function.log_group": resolve(logging["log_group"]).removesuffix(".name")
            if "log_group" in logging
            else None,
            "function.environment": {k: resolve(v) for k, v in variables_block.items()},
            "log_group.name": log_group.get("name"),
            "log_group.retention_days": resolve(log_group.get("retention_in_days")),
            "mapping.event_source": SOURCE,
            "mapping.batch_size": mapping.get("batch_size"),
            "mapping.batching_window": mapping.get("maximum_batching_window_in_seconds"),
            "mapping.response_types": mapping.get("function_response_types", []),
            "mapping.max_concurrency": scaling.get("maximum_concurrency"),
            "mapping.enabled": mapping.get("enabled", True),
        }
    )
    for prefix, role in (("orders_table", ORDERS), ("idempotency_table", IDEMPOTENCY)):
        if role in by_role:
            table = by_role[role]
            ttl = _nested(table, "ttl")
            settings.update(
                _prefixed(
                    prefix,
                    {
                        "name": table.get("name"),
                        "billing": table.get("billing_mode", "PROVISIONED"),
                        "key": table.get("hash_key"),
                        "ttl": ttl.get("attribute_name") if ttl.get("enabled") else None,
                        "sse": bool(_nested(table, "server_side_encryption").get("enabled")),
                        "pitr": bool(_nested(table, "point_in_time_recovery").get("enabled")),
                    },
                )
            )
    settings["alarm"] = _tf_alarm(of_type("aws_cloudwatch_metric_alarm"), resolve)
    settings["grants"] = sorted(_tf_grants(blocks, function, resolve))
    return settings


def _tf_reference(value: str) -> tuple[str, str]:
    match = _REFERENCE.match(value)
    assert match, f"not a reference to a resource attribute: {value!r}"
    return match["address"], match["attr"]


def _nested(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The single nested block ``name`` (python-hcl2 gives a list), or {} when absent."""
    nested = body.get(name, [])
    assert len(nested) <= 1, f"more than one {name} block"
    return dict(nested[0]) if nested else {}


def _none_if_unreserved(value: int) -> int | None:
    return None if value == -1 else value


def _tf_alarm(alarms: Mapping[str, Mapping[str, Any]], resolve: Any) -> dict[str, Any] | None:
    assert len(alarms) <= 1, f"at most one alarm expected: {list(alarms)}"
    for alarm in alarms.values():
        return {
            "name": alarm.get("alarm_name"),
            "queue": resolve(alarm["dimensions"]["QueueName"]).removesuffix(".name"),
            "namespace": alarm.get("namespace"),
            "metric": alarm.get("metric_name"),
            "statistic": alarm.get("statistic"),
            "period": alarm.get("period"),
            "evaluation_periods": alarm.get("evaluation_periods"),
            "threshold": alarm.get("threshold"),
            "comparison": alarm.get("comparison_operator"),
            "missing_data": alarm.get("treat_missing_data", "missing"),
            "actions": len(alarm.get("alarm_actions", [])),
        }
    return None


def _tf_grants(
    blocks: Mapping[str, Mapping[str, Any]], function: Mapping[str, Any], resolve: Any
) -> set[tuple[str, str]]:
    """Every (action, resource role) of the policies attached to the function's role."""
    role_address = _tf_reference(function["role"])[0]
    attachments = [
        address
        for address, body in blocks.items()
        if address.startswith("aws_iam_role_policy_attachment.")
        and _tf_reference(body["role"])[0] == role_address
    ]
    assert not attachments, f"the role must hold no managed policy: {attachments}"
    grants: set[tuple[str, str]] = set()
    for address, body in blocks.items():
        if not address.startswith("aws_iam_role_policy."):
            continue
        if _tf_reference(body["role"])[0] != role_address:
            continue
        document = blocks[_tf_reference(body["policy"])[0]]
        for statement in document["statement"]:
            assert statement.get("effect", "Allow") == "Allow", statement
            for action in statement["actions"]:
                for target in statement["resources"]:
                    grants.add((action, str(resolve(target)).removesuffix(".arn")))
    return grants


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _single(values: list[Any]) -> Any:
    assert len(values) == 1, values
    return values[0]
