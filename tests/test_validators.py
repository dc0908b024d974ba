"""Every validator of copier.yml rejects its bad inputs, saying which field and what is allowed.

A rejected answer stops Copier before it writes a file, so these renders are fast. The
accepted boundaries and the computed values are read from the probe template (copier.yml
plus one file dumping every value), which does not depend on the files under ``template/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Probe
from tests.rendering import render


@dataclass(frozen=True)
class Rejected:
    """Answers Copier must reject, the field it must name and what the message must say."""

    id: str
    answers: dict[str, Any]
    field: str
    says: tuple[str, ...]
    choice: bool = False


def _choice(question: str, value: str, allowed: list[str]) -> Rejected:
    return Rejected(
        id=f"{question}-{value}",
        answers={question: value},
        field=question,
        says=(f"'{value}' is not in {allowed}",),
        choice=True,
    )


SLUG = "must match ^[a-z][a-z0-9-]*$"
PACKAGE = "must be a lowercase Python identifier matching ^[a-z_][a-z0-9_]*$"
KEYWORD = "package_name must not be a Python keyword"
QUEUE_CHARS = "queue_name may only contain letters, digits, '-' and '_'"
RETENTION = "between 60 and 1209600 (14 days)"

REJECTED = [
    Rejected("project_name-blank", {"project_name": "   "}, "project_name", ("must not be empty",)),
    Rejected("slug-uppercase", {"project_slug": "Orders"}, "project_slug", (SLUG, "got 'Orders'")),
    Rejected("slug-leading-digit", {"project_slug": "1orders"}, "project_slug", (SLUG,)),
    Rejected("slug-underscore", {"project_slug": "orders_consumer"}, "project_slug", (SLUG,)),
    Rejected("slug-trailing-space", {"project_slug": "orders "}, "project_slug", (SLUG,)),
    Rejected(
        "slug-from-name-with-leading-digit",
        {"project_name": "2nd Orders"},
        "project_slug",
        (SLUG, "got '2nd-orders'"),
    ),
    Rejected(
        "slug-65-chars",
        {"project_slug": "a" * 65},
        "project_slug",
        ("project_slug must be at most 64 characters, got 65",),
    ),
    Rejected("package-keyword-class", {"package_name": "class"}, "package_name", (KEYWORD,)),
    Rejected("package-keyword-import", {"package_name": "import"}, "package_name", (KEYWORD,)),
    Rejected("package-soft-keyword-match", {"package_name": "match"}, "package_name", (KEYWORD,)),
    Rejected("package-leading-digit", {"package_name": "1abc"}, "package_name", (PACKAGE,)),
    Rejected("package-dash", {"package_name": "orders-consumer"}, "package_name", (PACKAGE,)),
    Rejected("package-uppercase", {"package_name": "Orders"}, "package_name", (PACKAGE,)),
    Rejected(
        "package-shadows-boto3",
        {"package_name": "boto3"},
        "package_name",
        ("package_name 'boto3' would shadow a module", "choose a name other than", "boto3"),
    ),
    Rejected(
        "package-shadows-tests",
        {"package_name": "tests"},
        "package_name",
        ("would shadow a module",),
    ),
    Rejected(
        "package-41-chars",
        {"package_name": "p" * 41},
        "package_name",
        ("must be at most 40 characters", "got 41"),
    ),
    Rejected(
        "email-no-at",
        {"author_email": "platform-team"},
        "author_email",
        ("author_email must be an e-mail address like name@example.com", "'platform-team'"),
    ),
    Rejected("email-no-domain-dot", {"author_email": "team@example"}, "author_email", ("e-mail",)),
    Rejected(
        "region-truncated",
        {"aws_region": "us-east"},
        "aws_region",
        ("aws_region must be an AWS region name such as us-east-1", "got 'us-east'"),
    ),
    Rejected("region-uppercase", {"aws_region": "US-EAST-1"}, "aws_region", ("AWS region",)),
    Rejected("region-unknown-prefix", {"aws_region": "xx-east-1"}, "aws_region", ("AWS region",)),
    Rejected(
        "queue-name-77-chars-standard",
        {"queue_name": "q" * 77},
        "queue_name",
        ("queue_name is too long", "has 81 characters", "SQS allows 80", "at most 76 characters"),
    ),
    Rejected(
        "queue-name-72-chars-fifo",
        {"queue_type": "fifo", "queue_name": "q" * 72},
        "queue_name",
        ("queue_name is too long", f"'{'q' * 72}-dlq.fifo'", "at most 71 characters"),
    ),
    Rejected(
        "queue-name-with-fifo-suffix",
        {"queue_type": "fifo", "queue_name": "orders.fifo"},
        "queue_name",
        (QUEUE_CHARS, "the .fifo suffix is added for you", "got 'orders.fifo'"),
    ),
    Rejected("queue-name-space", {"queue_name": "my queue"}, "queue_name", (QUEUE_CHARS,)),
    Rejected(
        "fifo-batch-11",
        {"queue_type": "fifo", "batch_size": 11},
        "batch_size",
        ("batch_size must be between 1 and 10 for a fifo queue, got 11",),
    ),
    Rejected(
        "fifo-batch-0",
        {"queue_type": "fifo", "batch_size": 0},
        "batch_size",
        ("between 1 and 10 for a fifo queue, got 0",),
    ),
    Rejected(
        "standard-batch-10001",
        {"batch_size": 10001, "max_batching_window_seconds": 1},
        "batch_size",
        ("batch_size must be between 1 and 10000 for a standard queue, got 10001",),
    ),
    Rejected(
        "standard-batch-0",
        {"batch_size": 0},
        "batch_size",
        ("between 1 and 10000 for a standard queue, got 0",),
    ),
    Rejected(
        "fifo-batching-window-5",
        {"queue_type": "fifo", "max_batching_window_seconds": 5},
        "max_batching_window_seconds",
        ("max_batching_window_seconds must be 0 for a fifo queue", "got 5"),
    ),
    Rejected(
        "batch-11-window-0",
        {"batch_size": 11, "max_batching_window_seconds": 0},
        "max_batching_window_seconds",
        ("must be at least 1 when batch_size (11) is greater than 10",),
    ),
    Rejected(
        "window-301",
        {"max_batching_window_seconds": 301},
        "max_batching_window_seconds",
        ("max_batching_window_seconds must be between 0 and 300, got 301",),
    ),
    Rejected(
        "window-negative",
        {"max_batching_window_seconds": -1},
        "max_batching_window_seconds",
        ("between 0 and 300, got -1",),
    ),
    Rejected(
        "timeout-0",
        {"function_timeout_seconds": 0},
        "function_timeout_seconds",
        ("function_timeout_seconds must be between 1 and 900, got 0",),
    ),
    Rejected(
        "timeout-901",
        {"function_timeout_seconds": 901},
        "function_timeout_seconds",
        ("function_timeout_seconds must be between 1 and 900, got 901",),
    ),
    Rejected(
        "memory-127",
        {"memory_mb": 127},
        "memory_mb",
        ("memory_mb must be between 128 and 10240, got 127",),
    ),
    Rejected(
        "memory-10241",
        {"memory_mb": 10241},
        "memory_mb",
        ("memory_mb must be between 128 and 10240, got 10241",),
    ),
    Rejected(
        "visibility-below-timeout",
        {"function_timeout_seconds": 60, "visibility_timeout_seconds": 59},
        "visibility_timeout_seconds",
        ("visibility_timeout_seconds must be at least function_timeout_seconds (60)", "got 59"),
    ),
    Rejected(
        "visibility-43201",
        {"visibility_timeout_seconds": 43201},
        "visibility_timeout_seconds",
        ("visibility_timeout_seconds must be at most 43200 (12 hours), got 43201",),
    ),
    Rejected(
        "max-receive-0",
        {"max_receive_count": 0},
        "max_receive_count",
        ("max_receive_count must be between 1 and 1000, got 0",),
    ),
    Rejected(
        "max-receive-1001",
        {"max_receive_count": 1001},
        "max_receive_count",
        ("max_receive_count must be between 1 and 1000, got 1001",),
    ),
    Rejected(
        "source-retention-59",
        {"source_retention_seconds": 59},
        "source_retention_seconds",
        (f"source_retention_seconds must be {RETENTION}, got 59",),
    ),
    Rejected(
        "source-retention-1209601",
        {"source_retention_seconds": 1209601},
        "source_retention_seconds",
        (f"source_retention_seconds must be {RETENTION}, got 1209601",),
    ),
    Rejected(
        "dlq-retention-59",
        {"dlq_retention_seconds": 59},
        "dlq_retention_seconds",
        (f"dlq_retention_seconds must be {RETENTION}, got 59",),
    ),
    Rejected(
        "standard-dlq-retention-below-source",
        {"source_retention_seconds": 345600, "dlq_retention_seconds": 300000},
        "dlq_retention_seconds",
        (
            "dlq_retention_seconds must be greater than source_retention_seconds (345600)",
            "for a standard queue",
            "got 300000",
        ),
    ),
    Rejected(
        "standard-dlq-retention-equal-to-source",
        {"source_retention_seconds": 345600, "dlq_retention_seconds": 345600},
        "dlq_retention_seconds",
        ("must be greater than source_retention_seconds (345600)", "got 345600"),
    ),
    Rejected(
        "max-concurrency-1",
        {"max_concurrency": 1},
        "max_concurrency",
        ("max_concurrency must be between 2 and 1000", "got 1"),
    ),
    Rejected(
        "max-concurrency-1001",
        {"max_concurrency": 1001},
        "max_concurrency",
        ("max_concurrency must be between 2 and 1000", "got 1001"),
    ),
    Rejected(
        "reserved-below-max-concurrency",
        {"max_concurrency": 10, "reserved_concurrency": 5},
        "reserved_concurrency",
        ("reserved_concurrency must be 0 (none) or at least max_concurrency (10)", "got 5"),
    ),
    Rejected(
        "reserved-with-few-receives",
        {"max_receive_count": 3, "reserved_concurrency": 20},
        "reserved_concurrency",
        ("reserved_concurrency needs max_receive_count of at least 5 (it is 3)", "got 20"),
    ),
    Rejected(
        "reserved-negative",
        {"reserved_concurrency": -1},
        "reserved_concurrency",
        ("reserved_concurrency must be 0 (none) or a positive number, got -1",),
    ),
    _choice("iac", "pulumi", ["terraform", "sam", "cdk", "none"]),
    _choice("queue_type", "kafka", ["standard", "fifo"]),
    _choice("lambda_runtime", "python3.11", ["python3.12", "python3.13", "python3.14"]),
    _choice("architecture", "i386", ["arm64", "x86_64"]),
    _choice("poison_policy", "drop", ["dlq_now", "retry"]),
    _choice("idempotency", "redis", ["dynamodb", "none"]),
    _choice("handler_style", "django", ["powertools", "stdlib"]),
    _choice("compose_emulator", "moto", ["localstack", "ministack"]),
    _choice("ci", "jenkins", ["github", "gitlab", "none"]),
]

# `$` also matches before a trailing newline: the validators compare the match with the
# whole value, so "orders\n" is rejected.
TRAILING_NEWLINE = [
    Rejected("slug-trailing-newline", {"project_slug": "orders\n"}, "project_slug", (SLUG,)),
    Rejected("package-trailing-newline", {"package_name": "orders\n"}, "package_name", (PACKAGE,)),
    Rejected(
        "queue-name-trailing-newline", {"queue_name": "orders\n"}, "queue_name", (QUEUE_CHARS,)
    ),
    Rejected(
        "region-trailing-newline", {"aws_region": "us-east-1\n"}, "aws_region", ("AWS region",)
    ),
]


def test_the_bad_inputs_are_distinct() -> None:
    ids = [case.id for case in REJECTED]
    answers = [sorted(case.answers.items()) for case in REJECTED]
    assert len(set(ids)) == len(ids)
    assert all(answers.count(a) == 1 for a in answers)
    assert len(REJECTED) >= 25


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id) for c in REJECTED]
    + [pytest.param(c, id=c.id) for c in TRAILING_NEWLINE],
)
def test_a_bad_answer_is_rejected_naming_the_field_and_what_is_allowed(
    case: Rejected, tmp_path: Path
) -> None:
    dest = tmp_path / "out"

    with pytest.raises(ValueError, match=r".") as excinfo:
        render(dest, **case.answers)

    message = str(excinfo.value)
    if case.choice:
        assert message.startswith(f"Invalid choice for '{case.field}'"), message
    else:
        prefix = f"Validation error for question '{case.field}': "
        assert message.startswith(prefix), message
        # The validator's own sentence names the field, not only Copier's prefix.
        assert case.field in message.removeprefix(prefix), message
    for expected in case.says:
        assert expected in message, f"{expected!r} not in {message!r}"
    assert not dest.exists() or not any(dest.iterdir()), "files were written before validation"


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param({"queue_type": "fifo", "batch_size": 10}, id="fifo-batch-10"),
        pytest.param({"queue_type": "fifo", "batch_size": 1}, id="fifo-batch-1"),
        pytest.param({"batch_size": 10000, "max_batching_window_seconds": 1}, id="std-batch-10000"),
        pytest.param({"batch_size": 11, "max_batching_window_seconds": 1}, id="std-batch-11"),
        pytest.param({"batch_size": 10, "max_batching_window_seconds": 0}, id="std-batch-10-w0"),
        pytest.param({"max_batching_window_seconds": 300}, id="window-300"),
        pytest.param(
            {"queue_type": "fifo", "max_batching_window_seconds": 0}, id="fifo-window-0-typed"
        ),
        pytest.param(
            {"function_timeout_seconds": 1, "visibility_timeout_seconds": 1}, id="timeout-1"
        ),
        pytest.param({"function_timeout_seconds": 900}, id="timeout-900"),
        pytest.param(
            {"function_timeout_seconds": 60, "visibility_timeout_seconds": 60},
            id="visibility-equals-timeout",
        ),
        pytest.param({"visibility_timeout_seconds": 43200}, id="visibility-43200"),
        pytest.param({"memory_mb": 128}, id="memory-128"),
        pytest.param({"memory_mb": 10240}, id="memory-10240"),
        pytest.param({"max_receive_count": 1}, id="max-receive-1"),
        pytest.param({"max_receive_count": 1000}, id="max-receive-1000"),
        pytest.param(
            {"source_retention_seconds": 60, "dlq_retention_seconds": 61}, id="retention-60-61"
        ),
        pytest.param(
            {"source_retention_seconds": 1209599, "dlq_retention_seconds": 1209600},
            id="retention-max",
        ),
        pytest.param(
            {
                "queue_type": "fifo",
                "source_retention_seconds": 345600,
                "dlq_retention_seconds": 345600,
            },
            id="fifo-dlq-retention-equal-to-source",
        ),
        pytest.param({"max_concurrency": 10, "reserved_concurrency": 10}, id="reserved-equals-max"),
        pytest.param({"max_concurrency": 2}, id="max-concurrency-2"),
        pytest.param(
            {"max_concurrency": 1000, "reserved_concurrency": 1000}, id="max-concurrency-1000"
        ),
        pytest.param({"queue_name": "q" * 76}, id="queue-name-76-standard"),
        pytest.param({"queue_type": "fifo", "queue_name": "q" * 71}, id="queue-name-71-fifo"),
        pytest.param({"queue_name": "Orders_In-2"}, id="queue-name-mixed-chars"),
        pytest.param({"project_slug": "a" * 64, "queue_name": "orders"}, id="slug-64"),
        pytest.param({"package_name": "_orders"}, id="package-leading-underscore"),
        pytest.param({"aws_region": "eu-west-3"}, id="region-eu-west-3"),
        pytest.param({"aws_region": "us-gov-west-1"}, id="region-us-gov-west-1"),
        pytest.param({"aws_region": "ap-southeast-2"}, id="region-ap-southeast-2"),
        pytest.param({"author_email": "team+sqs@example.co.uk"}, id="email-plus-subdomain"),
    ],
)
def test_the_boundary_is_accepted(answers: dict[str, Any], probe_values: Probe) -> None:
    values = probe_values(**answers)

    for name, value in answers.items():
        assert values[name] == value, f"{name}: {values[name]!r} != {value!r}"


def test_the_defaults_compute_every_derived_value(probe_values: Probe) -> None:
    values = probe_values()

    assert values["project_slug"] == "orders-consumer"
    assert values["package_name"] == "orders_consumer"
    assert values["author_email"] == "platform.team@example.com"
    assert values["is_fifo"] is False
    assert values["queue_suffix"] == ""
    assert values["source_queue_name"] == "orders-consumer"
    assert values["dlq_name"] == "orders-consumer-dlq"
    assert values["batch_size"] == 10
    assert values["max_batching_window_seconds"] == 0
    assert values["batching_window_seconds"] == 0
    assert values["visibility_timeout_seconds"] == 6 * 30 + 0
    assert values["function_name"] == "orders-consumer"
    assert values["orders_table_name"] == "orders-consumer-orders"
    assert values["idempotency_table_name"] == "orders-consumer-idempotency"
    assert values["python_version"] == "3.13"
    assert values["python_target"] == "py313"


def test_a_project_name_derives_slug_package_and_queue(probe_values: Probe) -> None:
    values = probe_values(project_name="  Billing Events!  ")

    assert values["project_slug"] == "billing-events"
    assert values["package_name"] == "billing_events"
    assert values["queue_name"] == "billing-events"
    assert values["dlq_name"] == "billing-events-dlq"


def test_fifo_names_end_in_dot_fifo_and_have_no_batching_window(probe_values: Probe) -> None:
    values = probe_values(queue_type="fifo", queue_name="orders-in")

    assert values["is_fifo"] is True
    assert values["queue_suffix"] == ".fifo"
    assert values["source_queue_name"] == "orders-in.fifo"
    assert values["dlq_name"] == "orders-in-dlq.fifo"
    assert values["max_batching_window_seconds"] == 0
    assert values["batching_window_seconds"] == 0
    assert values["visibility_timeout_seconds"] == 6 * 30


def test_fifo_questions_have_their_defaults(probe_values: Probe) -> None:
    values = probe_values(queue_type="fifo")

    assert values["fifo_content_based_deduplication"] is True
    assert values["fifo_high_throughput"] is False


def test_a_batch_above_10_defaults_the_window_to_1_and_adds_it_to_visibility(
    probe_values: Probe,
) -> None:
    values = probe_values(batch_size=100)

    assert values["max_batching_window_seconds"] == 1
    assert values["batching_window_seconds"] == 1
    assert values["visibility_timeout_seconds"] == 6 * 30 + 1


@pytest.mark.parametrize(
    ("timeout", "window", "batch_size", "visibility"),
    [
        pytest.param(120, 0, 10, 720, id="timeout-120"),
        pytest.param(60, 5, 100, 365, id="timeout-60-window-5"),
        pytest.param(900, 300, 10000, 5700, id="timeout-900-window-300"),
        pytest.param(1, 0, 1, 6, id="timeout-1"),
    ],
)
def test_visibility_defaults_to_six_timeouts_plus_the_window(
    timeout: int, window: int, batch_size: int, visibility: int, probe_values: Probe
) -> None:
    values = probe_values(
        function_timeout_seconds=timeout,
        max_batching_window_seconds=window,
        batch_size=batch_size,
    )

    assert values["visibility_timeout_seconds"] == visibility
    assert values["batching_window_seconds"] == window


@pytest.mark.parametrize(
    ("runtime", "version", "target"),
    [
        ("python3.12", "3.12", "py312"),
        ("python3.13", "3.13", "py313"),
        ("python3.14", "3.14", "py314"),
    ],
)
def test_the_runtime_gives_the_python_version_and_target(
    runtime: str, version: str, target: str, probe_values: Probe
) -> None:
    values = probe_values(lambda_runtime=runtime)

    assert (values["python_version"], values["python_target"]) == (version, target)


def test_a_rejected_answer_is_rejected_by_the_probe_too(probe_values: Probe) -> None:
    """The probe carries the same copier.yml: what it accepts above, the real template does."""
    with pytest.raises(ValueError, match="batch_size must be between 1 and 10 for a fifo queue"):
        probe_values(queue_type="fifo", batch_size=11)
