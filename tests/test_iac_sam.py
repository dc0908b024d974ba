"""The SAM flavour (``iac=sam``): ``template.yaml`` passes cfn-lint and checkov, and its
effective settings are the answers.

cfn-lint is pinned in the dev group. checkov pins boto3 exactly, which conflicts with the
dev group's boto3, so it runs in an environment of its own through ``uv tool run`` at
:data:`CHECKOV_VERSION`, offline (``--skip-download``). A checkov run takes about 8 s, so
it runs once per render, in the session fixture.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.iac_expectations import expected_grants
from tests.rendering import REPO_ROOT, answers_file, render

CHECKOV_VERSION = "3.3.30"
BIN = Path(sys.executable).parent

#: Renders with iac=sam; every other answer takes its default.
RENDERS: dict[str, dict[str, Any]] = {
    "standard-defaults": {"iac": "sam"},
    "fifo-retry-noidem-reserved": {
        "iac": "sam",
        "queue_type": "fifo",
        "poison_policy": "retry",
        "idempotency": "none",
        "reserved_concurrency": 20,
        "dlq_alarm": False,
    },
    "standard-bigbatch": {"iac": "sam", "batch_size": 100, "max_batching_window_seconds": 5},
}


class CfnLoader(yaml.SafeLoader):
    """A YAML loader that reads CloudFormation's short tags (``!Ref``, ``!GetAtt``, ...)."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


@dataclass(frozen=True)
class SamRender:
    name: str
    path: Path
    answers: dict[str, Any]
    template: dict[str, Any]
    cfn_lint: subprocess.CompletedProcess[str]
    checkov: subprocess.CompletedProcess[str]

    def resource(self, logical_id: str) -> dict[str, Any]:
        resource: dict[str, Any] = self.template["Resources"][logical_id]
        return resource

    def properties(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resource(logical_id)["Properties"]
        return properties


def _uv() -> str:
    for candidate in (BIN / "uv", REPO_ROOT / ".tools" / "bin" / "uv"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("uv")
    if found is None:
        pytest.fail("uv is needed to run checkov in its own environment")
    return found


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="session", params=list(RENDERS))
def sam(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SamRender:
    name: str = request.param
    path = render(tmp_path_factory.mktemp(f"sam-{name}") / "svc", **RENDERS[name])
    text = (path / "template.yaml").read_text(encoding="utf-8")
    template = yaml.load(text, Loader=CfnLoader)
    cfn_lint = _run([str(BIN / "cfn-lint"), "--format", "parseable", "template.yaml"], path)
    checkov = _run(
        [
            _uv(),
            "tool",
            "run",
            "--from",
            f"checkov=={CHECKOV_VERSION}",
            "checkov",
            "-f",
            "template.yaml",
            "--framework",
            "cloudformation",
            "--skip-download",
            "--quiet",
            "--output",
            "json",
        ],
        path,
    )
    return SamRender(name, path, answers_file(path), template, cfn_lint, checkov)


def test_sam_files_rendered_only_for_sam(sam: SamRender) -> None:
    assert (sam.path / "template.yaml").is_file()
    assert (sam.path / "samconfig.toml").is_file()
    samconfig = (sam.path / "samconfig.toml").read_text(encoding="utf-8")
    assert f'region = "{sam.answers["aws_region"]}"' in samconfig


def test_cfn_lint_clean(sam: SamRender) -> None:
    output = sam.cfn_lint.stdout + sam.cfn_lint.stderr
    assert sam.cfn_lint.returncode == 0, output
    assert output.strip() == ""


def test_checkov_no_failed_checks(sam: SamRender) -> None:
    assert sam.checkov.returncode == 0, sam.checkov.stdout[-4000:] + sam.checkov.stderr[-4000:]
    report = json.loads(sam.checkov.stdout)
    summary = report["summary"]
    failed = [c["check_id"] for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 0


def test_every_checkov_skip_has_a_reason(sam: SamRender) -> None:
    skips = {
        (logical_id, skip["id"]): skip.get("comment", "")
        for logical_id, resource in sam.template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    assert skips
    assert all(len(comment) > 40 for comment in skips.values()), skips
    function_skips = {check for logical_id, check in skips if logical_id == "ConsumerFunction"}
    assert {"CKV_AWS_116", "CKV_AWS_117"} <= function_skips
    # CKV_AWS_115 (reserved concurrency) is skipped only when none is reserved.
    assert ("CKV_AWS_115" in function_skips) == (sam.answers["reserved_concurrency"] == 0)


def test_queues(sam: SamRender) -> None:
    a = sam.answers
    fifo = a["queue_type"] == "fifo"
    suffix = ".fifo" if fifo else ""
    source = sam.properties("SourceQueue")
    dlq = sam.properties("DeadLetterQueue")
    assert source["QueueName"] == f"{a['queue_name']}{suffix}"
    assert dlq["QueueName"] == f"{a['queue_name']}-dlq{suffix}"
    assert source["VisibilityTimeout"] == a["visibility_timeout_seconds"]
    assert source["MessageRetentionPeriod"] == a["source_retention_seconds"]
    assert dlq["MessageRetentionPeriod"] == a["dlq_retention_seconds"]
    assert source["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": a["max_receive_count"],
    }
    for queue in (source, dlq):
        assert queue["SqsManagedSseEnabled"] is True
        assert queue.get("FifoQueue", False) is fifo
        if fifo:
            assert queue["ContentBasedDeduplication"] is a["fifo_content_based_deduplication"]
            high = a["fifo_high_throughput"]
            assert queue["DeduplicationScope"] == ("messageGroup" if high else "queue")
            assert queue["FifoThroughputLimit"] == ("perMessageGroupId" if high else "perQueue")
        else:
            assert "ContentBasedDeduplication" not in queue


def test_function(sam: SamRender) -> None:
    a = sam.answers
    function = sam.properties("ConsumerFunction")
    assert sam.resource("ConsumerFunction")["Type"] == "AWS::Serverless::Function"
    assert function["Runtime"] == a["lambda_runtime"]
    assert function["Architectures"] == [a["architecture"]]
    assert function["MemorySize"] == a["memory_mb"]
    assert function["Timeout"] == a["function_timeout_seconds"]
    assert function["Handler"] == f"{a['package_name']}.handler.lambda_handler"
    # The tree `make package` builds: the runtime package and its runtime dependencies only.
    assert function["CodeUri"] == "build/lambda/"
    assert function["LoggingConfig"]["LogFormat"] == "JSON"
    assert "DeadLetterConfig" not in function
    reserved = a["reserved_concurrency"]
    assert function.get("ReservedConcurrentExecutions") == (reserved or None)
    variables = function["Environment"]["Variables"]
    expected = {"ORDERS_TABLE_NAME", "POWERTOOLS_SERVICE_NAME", "LOG_LEVEL"}
    if a["idempotency"] == "dynamodb":
        expected.add("IDEMPOTENCY_TABLE_NAME")
    if a["poison_policy"] == "dlq_now":
        expected.add("DEAD_LETTER_QUEUE_URL")
    assert set(variables) == expected
    log_group = sam.properties("ConsumerLogGroup")
    assert log_group["LogGroupName"] == f"/aws/lambda/{function['FunctionName']}"
    assert log_group["RetentionInDays"] > 0


def test_event_source_mapping(sam: SamRender) -> None:
    a = sam.answers
    events = sam.properties("ConsumerFunction")["Events"]
    assert list(events) == ["SourceQueue"]
    event = events["SourceQueue"]
    assert event["Type"] == "SQS"
    props = event["Properties"]
    assert props["Queue"] == {"Fn::GetAtt": ["SourceQueue", "Arn"]}
    assert props["BatchSize"] == a["batch_size"]
    if a["queue_type"] == "fifo":
        assert "MaximumBatchingWindowInSeconds" not in props
    else:
        assert props["MaximumBatchingWindowInSeconds"] == a["max_batching_window_seconds"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"] == {"MaximumConcurrency": a["max_concurrency"]}


def test_tables(sam: SamRender) -> None:
    a = sam.answers
    tables = {
        logical_id: resource["Properties"]
        for logical_id, resource in sam.template["Resources"].items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }
    expected = {"OrdersTable"} | ({"IdempotencyTable"} if a["idempotency"] == "dynamodb" else set())
    assert set(tables) == expected
    for table in tables.values():
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["SSESpecification"] == {"SSEEnabled": True}
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert tables["OrdersTable"]["KeySchema"] == [{"AttributeName": "orderId", "KeyType": "HASH"}]
    if "IdempotencyTable" in tables:
        idempotency = tables["IdempotencyTable"]
        assert idempotency["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
        assert idempotency["TimeToLiveSpecification"] == {
            "AttributeName": "expiration",
            "Enabled": True,
        }


def test_iam_least_privilege(sam: SamRender) -> None:
    a = sam.answers
    function = sam.properties("ConsumerFunction")
    assert function["Role"] == {"Fn::GetAtt": ["ConsumerRole", "Arn"]}
    assert "Policies" not in function  # SAM would add broad managed policies
    role = sam.properties("ConsumerRole")
    assert "ManagedPolicyArns" not in role
    granted: set[tuple[str, str]] = set()
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            resource = statement["Resource"]
            assert resource != "*"
            assert isinstance(resource, dict), resource  # a reference to one resource
            target = resource.get("Fn::GetAtt", [resource.get("Ref")])[0]
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                assert "*" not in action
                granted.add((action, target))
    assert granted == expected_grants(a)


def test_dlq_alarm(sam: SamRender) -> None:
    alarms = [
        resource["Properties"]
        for resource in sam.template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    ]
    if not sam.answers["dlq_alarm"]:
        assert alarms == []
        return
    assert len(alarms) == 1
    alarm = alarms[0]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}
    ]
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert sam.properties("AlarmTopic")["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}


@pytest.mark.parametrize("iac", ["terraform", "cdk", "none"])
def test_no_sam_files_for_other_flavours(tmp_path: Path, iac: str) -> None:
    rendered = render(tmp_path / "svc", iac=iac, skip_tasks=True)
    assert not (rendered / "template.yaml").exists()
    assert not (rendered / "samconfig.toml").exists()
