"""Each preflight rule fires on a deployment broken in its own way; a sound one passes."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sqs_lambda_tools import project
from sqs_lambda_tools.preflight.model import (
    REGION,
    Deployment,
    Function,
    Mapping,
    Queue,
    Redrive,
    Reference,
    Table,
)
from sqs_lambda_tools.preflight.rules import RULES, evaluate

pytestmark = pytest.mark.unit

README = Path(__file__).parents[2] / "README.md"
ROOT = Path("/service")


def healthy(*, fifo: bool = False) -> Deployment:
    """The pattern done right: what a sound IaC declares."""
    suffix = ".fifo" if fifo else ""
    return Deployment(
        source=str(ROOT / "template.yaml"),
        queues={
            "source": Queue(
                key="source",
                label=f"orders{suffix}",
                name=f"orders{suffix}",
                fifo=fifo,
                visibility_timeout=180,
                retention=345600,
                sse=True,
                redrive=Redrive(target="dlq", max_receive_count=5),
            ),
            "dlq": Queue(
                key="dlq",
                label=f"orders-dlq{suffix}",
                name=f"orders-dlq{suffix}",
                fifo=fifo,
                retention=1209600,
                sse=True,
            ),
        },
        functions={
            "function": Function(
                key="function",
                label="consumer",
                timeout=30,
                name="consumer",
                handler="orders.handler.lambda_handler",
                runtime="python3.13",
                architecture="arm64",
                memory=256,
                environment={
                    "ORDERS_TABLE_NAME": Reference("orders", "name"),
                    "DEAD_LETTER_QUEUE_URL": Reference("dlq", "url"),
                    "LOG_LEVEL": "INFO",
                },
            )
        },
        tables={"orders": Table("orders", "orders", name="orders-table", partition_key="id")},
        mappings=(
            Mapping(
                label="mapping",
                queue="source",
                function="function",
                batch_size=10,
                batching_window=0,
                response_types=("ReportBatchItemFailures",),
                maximum_concurrency=10,
            ),
        ),
        alarmed_queues=frozenset({"dlq"}),
    )


def with_queue(deployment: Deployment, key: str, **changes: object) -> Deployment:
    queues = dict(deployment.queues)
    queues[key] = replace(queues[key], **changes)  # type: ignore[arg-type]
    return replace(deployment, queues=queues)


def with_function(deployment: Deployment, **changes: object) -> Deployment:
    function = replace(deployment.functions["function"], **changes)  # type: ignore[arg-type]
    return replace(deployment, functions={"function": function})


def with_mapping(deployment: Deployment, **changes: object) -> Deployment:
    mapping = replace(deployment.mappings[0], **changes)  # type: ignore[arg-type]
    return replace(deployment, mappings=(mapping,))


def redrive(count: int) -> Redrive:
    return Redrive(target="dlq", max_receive_count=count)


def reserved_only() -> Deployment:
    return with_function(with_mapping(healthy(), maximum_concurrency=None), reserved_concurrency=10)


# What healthy() declares, as a project's [tool.sqsl] table says it.
SETTINGS: dict[str, Any] = {
    "function": {
        "name": "consumer",
        "handler": "orders.handler.lambda_handler",
        "runtime": "python3.13",
        "architecture": "arm64",
        "timeout": 30,
        "memory": 256,
        "environment": {
            "ORDERS_TABLE_NAME": "{tables.orders}",
            "DEAD_LETTER_QUEUE_URL": "{dlq.url}",
            "LOG_LEVEL": "INFO",
        },
    },
    "mapping": {"batch_size": 10, "batching_window": 0, "maximum_concurrency": 10},
    "queue": {"name": "orders", "visibility_timeout": 180, "retention": 345600},
    "dlq": {"name": "orders-dlq", "max_receive_count": 5, "retention": 1209600},
    "tables": {"orders": {"name": "orders-table", "key": "id"}},
}


def settings(**sections: dict[str, Any]) -> project.Project:
    """The project of SETTINGS, each section given updated by ``sections``."""
    table = {key: dict(value) for key, value in SETTINGS.items()}
    for section, changes in sections.items():
        table[section].update(changes)
    return project.from_table(table, root=ROOT, source="pyproject.toml [tool.sqsl]")


def checked(deployment: Deployment | None = None, **sections: dict[str, Any]) -> Deployment:
    """``deployment`` (default: healthy) to be compared with the settings."""
    return replace(deployment or healthy(), settings=settings(**sections))


# case: (rule, severity, the deployment broken that way)
BROKEN: dict[str, tuple[str, str, Callable[[], Deployment]]] = {
    "visibility below the function timeout": (
        "SQSL001",
        "error",
        lambda: with_queue(healthy(), "source", visibility_timeout=29),
    ),
    "visibility below 6 x the function timeout": (
        "SQSL001",
        "warning",
        lambda: with_queue(healthy(), "source", visibility_timeout=179),
    ),
    "no redrive policy": (
        "SQSL002",
        "error",
        lambda: with_queue(healthy(), "source", redrive=None),
    ),
    "a FIFO queue with a standard DLQ": (
        "SQSL003",
        "error",
        lambda: with_queue(healthy(fifo=True), "dlq", fifo=False),
    ),
    "DLQ retention not above the source's": (
        "SQSL004",
        "error",
        lambda: with_queue(healthy(), "dlq", retention=345600),
    ),
    "maxReceiveCount below 5 with reserved concurrency": (
        "SQSL005",
        "error",
        lambda: with_function(
            with_queue(healthy(), "source", redrive=redrive(4)), reserved_concurrency=20
        ),
    ),
    "maxReceiveCount 1": (
        "SQSL005",
        "warning",
        lambda: with_queue(healthy(), "source", redrive=redrive(1)),
    ),
    "retries outlast the retention": (
        "SQSL005",
        "warning",
        lambda: with_queue(healthy(), "source", redrive=redrive(1000), retention=86400),
    ),
    "no ReportBatchItemFailures": (
        "SQSL006",
        "error",
        lambda: with_mapping(healthy(), response_types=()),
    ),
    "no concurrency cap": (
        "SQSL007",
        "warning",
        lambda: with_mapping(healthy(), maximum_concurrency=None),
    ),
    "reserved concurrency only": ("SQSL007", "warning", reserved_only),
    "MaximumConcurrency above reserved concurrency": (
        "SQSL007",
        "error",
        lambda: with_function(healthy(), reserved_concurrency=5),
    ),
    "reserved concurrency 0": (
        "SQSL007",
        "error",
        lambda: with_function(healthy(), reserved_concurrency=0),
    ),
    "batch size 11 without a window": (
        "SQSL008",
        "error",
        lambda: with_mapping(healthy(), batch_size=11),
    ),
    "FIFO batch size 11": (
        "SQSL009",
        "error",
        lambda: with_mapping(healthy(fifo=True), batch_size=11),
    ),
    "a function-level DLQ": (
        "SQSL010",
        "warning",
        lambda: with_function(healthy(), dead_letter_target="arn:aws:sqs:us-east-1:1:x"),
    ),
    "SSE disabled on the DLQ": (
        "SQSL011",
        "warning",
        lambda: with_queue(healthy(), "dlq", sse=False),
    ),
    "no DLQ alarm": (
        "SQSL012",
        "warning",
        lambda: replace(healthy(), alarmed_queues=frozenset()),
    ),
    "the settings table says another batch size": (
        "SQSL013",
        "error",
        lambda: checked(mapping={"batch_size": 5}),
    ),
}


@pytest.mark.parametrize("fifo", [False, True])
def test_a_sound_deployment_has_no_findings(fifo: bool) -> None:
    assert evaluate(healthy(fifo=fifo)) == []


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_each_rule_fires_on_its_breakage(case: str) -> None:
    rule, severity, build = BROKEN[case]

    findings = evaluate(build())

    assert [(finding.rule, finding.severity) for finding in findings] == [(rule, severity)]
    assert findings[0].message
    assert findings[0].fix


def test_every_rule_has_a_breakage_here() -> None:
    assert {rule for rule, _, _ in BROKEN.values()} == {rule.id for rule in RULES}


def test_a_finding_names_the_resource_and_its_values() -> None:
    [finding] = evaluate(with_queue(healthy(), "source", visibility_timeout=20))

    assert finding.resource == "orders"
    assert "20 s" in finding.message
    assert "30 s" in finding.message
    assert "180 s" in finding.fix


def test_a_queue_that_declares_no_encryption_is_encrypted_by_default() -> None:
    # SSE-SQS has been the default for new queues since 2022: saying nothing is no finding.
    assert evaluate(with_queue(with_queue(healthy(), "source", sse=None), "dlq", sse=None)) == []


def test_a_batch_above_10_with_a_window_passes() -> None:
    assert evaluate(with_mapping(healthy(), batch_size=100, batching_window=1)) == []


def test_a_queue_outside_the_source_skips_the_rules_that_need_it() -> None:
    deployment = with_mapping(healthy(), queue="arn:aws:sqs:us-east-1:1:elsewhere")

    assert evaluate(deployment) == []


def test_the_readme_lists_every_rule_with_its_severity() -> None:
    readme = README.read_text(encoding="utf-8")
    rows = re.findall(r"^\| (SQSL\d{3}) \| ([a-z /]+) \|", readme, flags=re.MULTILINE)

    assert rows == [(rule.id, rule.severity) for rule in RULES]


def test_settings_that_agree_with_the_iac_have_no_findings() -> None:
    assert evaluate(checked()) == []


def drift(deployment: Deployment) -> list[str]:
    return [finding.message for finding in evaluate(deployment) if finding.rule == "SQSL013"]


def test_each_differing_setting_is_one_finding_naming_both_values() -> None:
    deployment = checked(
        with_mapping(healthy(), batch_size=20, batching_window=1),
        function={"memory": 512, "handler": "orders.app.handler"},
        queue={"visibility_timeout": 300},
    )
    tail = ": the local tools run with one, a deploy with the other"

    assert drift(deployment) == [
        'pyproject.toml [tool.sqsl.function] handler is "orders.app.handler", template.yaml '
        f'says "orders.handler.lambda_handler"{tail}',
        f"pyproject.toml [tool.sqsl.function] memory is 512, template.yaml says 256{tail}",
        f"pyproject.toml [tool.sqsl.mapping] batch_size is 10, template.yaml says 20{tail}",
        f"pyproject.toml [tool.sqsl.mapping] batching_window is 0, template.yaml says 1{tail}",
        "pyproject.toml [tool.sqsl.queue] visibility_timeout is 300, template.yaml says 180" + tail,
    ]
    [finding] = [item for item in evaluate(deployment) if "memory" in item.message]
    assert (finding.severity, finding.resource) == ("error", "consumer")
    assert finding.fix == "make them agree: change [tool.sqsl.function] memory or template.yaml"


@pytest.mark.parametrize(
    ("variable", "value", "found"),
    [
        # A reference to another resource than the placeholder's.
        ("DEAD_LETTER_QUEUE_URL", "{dlq.url}", 'the url of the queue "orders"'),
        ("DEAD_LETTER_QUEUE_URL", "{dlq.arn}", 'the url of the queue "orders-dlq"'),
        ("ORDERS_TABLE_NAME", "{queue.name}", 'the name of the table "orders-table"'),
        ("LOG_LEVEL", "DEBUG", '"INFO"'),
    ],
)
def test_an_environment_value_is_compared_with_what_its_placeholder_stands_for(
    variable: str, value: str, found: str
) -> None:
    deployment = healthy()
    if value == "{dlq.url}":  # the IaC points the variable at the source queue
        environment = dict(deployment.functions["function"].environment or {})
        environment[variable] = Reference("source", "url")
        deployment = with_function(deployment, environment=environment)
    environment = dict(SETTINGS["function"]["environment"], **{variable: value})

    [message] = drift(checked(deployment, function={"environment": environment}))

    assert message.startswith(
        f'pyproject.toml [tool.sqsl.function.environment] {variable} is "{value}", '
        f"template.yaml says {found}:"
    )


def test_literal_names_and_urls_match_their_placeholders() -> None:
    # What a live function reports: its variables resolved to the deployed names and URLs.
    literal = with_function(
        healthy(),
        environment={
            "ORDERS_TABLE_NAME": "orders-table",
            "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/orders-dlq",
            "LOG_LEVEL": "INFO",
            "PREFIXED": "svc-orders-table",
            "REGION": "us-east-1",
        },
    )
    environment = dict(
        SETTINGS["function"]["environment"], PREFIXED="svc-{tables.orders}", REGION="{region}"
    )

    assert drift(checked(literal, function={"environment": environment})) == []


def test_values_only_a_deploy_knows_are_not_compared() -> None:
    unknown = with_function(
        healthy(),
        name=None,
        handler=None,
        memory=None,
        environment={"ORDERS_TABLE_NAME": None, "REGION": Reference(REGION, "value")},
    )
    environment = {"ORDERS_TABLE_NAME": "other", "REGION": "eu-west-1"}
    deployment = with_queue(unknown, "source", name=None)

    assert (
        drift(
            checked(
                deployment,
                function={
                    "name": "x",
                    "handler": "a.b",
                    "memory": 1024,
                    "environment": environment,
                },
                queue={"name": "other-queue"},
            )
        )
        == []
    )


def test_a_table_the_iac_does_not_declare_and_its_settings_are_named() -> None:
    assert drift(checked(tables={"orders": {"name": "orders-other", "key": "id"}})) == [
        # The variable that names the table names another one too.
        'pyproject.toml [tool.sqsl.function.environment] ORDERS_TABLE_NAME is "{tables.orders}", '
        'template.yaml says the name of the table "orders-table": the local tools run with one, '
        "a deploy with the other",
        'pyproject.toml [tool.sqsl.tables.orders] name is "orders-other", template.yaml says '
        'no table of that name (its tables: "orders-table"): the local tools run with one, a '
        "deploy with the other",
    ]
    [message] = drift(
        checked(tables={"orders": {"name": "orders-table", "key": "id", "ttl": "expires"}})
    )
    assert 'ttl is "expires", template.yaml says no TTL' in message


def test_the_dlq_and_fifo_settings_are_compared() -> None:
    deployment = checked(
        with_queue(healthy(fifo=True), "source", content_based_deduplication=True),
        queue={"name": "orders.fifo", "fifo": True},
        dlq={"name": "orders-dlq.fifo", "max_receive_count": 3, "retention": 604800},
    )

    assert [message.split(":")[0] for message in drift(deployment)] == [
        "pyproject.toml [tool.sqsl.queue] content_based_deduplication is false, template.yaml "
        "says true",
        "pyproject.toml [tool.sqsl.dlq] max_receive_count is 3, template.yaml says 5",
        "pyproject.toml [tool.sqsl.dlq] retention is 604800, template.yaml says 1209600",
    ]


def test_without_settings_or_with_several_mappings_nothing_is_compared() -> None:
    other = replace(healthy().mappings[0], label="other", queue="elsewhere")
    several = replace(checked(), mappings=(*healthy().mappings, other))
    named = with_queue(several, "source", name="not-the-projects")

    assert drift(replace(checked(mapping={"batch_size": 5}), settings=None)) == []
    # Two mappings: the one of the project's queue is compared...
    assert drift(replace(several, settings=settings(mapping={"batch_size": 5}))) != []
    # ...and when neither is the project's, there is nothing to compare with.
    assert drift(replace(named, settings=settings(mapping={"batch_size": 5}))) == []
