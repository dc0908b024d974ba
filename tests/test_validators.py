"""Every validator of copier.yml rejects its bad inputs, saying which field and what is allowed.

A rejected answer stops Copier before it writes a file, so these renders are fast. The
accepted boundaries and the computed values are read from the probe template (copier.yml
plus one file dumping every value), which does not depend on the files under ``template/``.

Copier shows a refused answer as one line, ``Validation error for question '<key>':
<message>``, and a terminal cuts that line at its width: every rejection below must fit 80
columns whole. The prefix names the field; the message says what is allowed, in short, and the
question's help (also checked here: no line over 77 columns) carries the detail.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pytest

from tests.conftest import Probe
from tests.rendering import questions, render

#: The width of the terminal a refusal and a help line must fit.
COLUMNS = 80
#: Copier puts its mark and a space (3 columns) before a help's first line.
HELP_COLUMNS = COLUMNS - 3


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
PACKAGE = "must match ^[a-z_][a-z0-9_]*$"
KEYWORD = "is a Python keyword"
QUEUE_CHARS = "[A-Za-z0-9_-] only (.fifo is added)"
SOURCE_RETENTION = "1m-14d, e.g. 4d, 96h"
DLQ_RETENTION = "1m-14d, e.g. 14d, 336h"

REJECTED = [
    Rejected("project_name-blank", {"project_name": "   "}, "project_name", ("must not be empty",)),
    Rejected("slug-uppercase", {"project_slug": "Orders"}, "project_slug", (SLUG,)),
    Rejected("slug-leading-digit", {"project_slug": "1orders"}, "project_slug", (SLUG,)),
    Rejected("slug-underscore", {"project_slug": "orders_consumer"}, "project_slug", (SLUG,)),
    Rejected("slug-trailing-space", {"project_slug": "orders "}, "project_slug", (SLUG,)),
    Rejected(
        "slug-from-name-with-leading-digit", {"project_name": "2nd Orders"}, "project_slug", (SLUG,)
    ),
    Rejected(
        "slug-65-chars",
        {"project_slug": "a" * 65},
        "project_slug",
        ("at most 64 characters, got 65",),
    ),
    Rejected(
        "package-keyword-class", {"package_name": "class"}, "package_name", (f"'class' {KEYWORD}",)
    ),
    Rejected("package-keyword-import", {"package_name": "import"}, "package_name", (KEYWORD,)),
    Rejected("package-soft-keyword-match", {"package_name": "match"}, "package_name", (KEYWORD,)),
    Rejected("package-leading-digit", {"package_name": "1abc"}, "package_name", (PACKAGE,)),
    Rejected("package-dash", {"package_name": "orders-consumer"}, "package_name", (PACKAGE,)),
    Rejected("package-uppercase", {"package_name": "Orders"}, "package_name", (PACKAGE,)),
    Rejected(
        "package-shadows-boto3",
        {"package_name": "boto3"},
        "package_name",
        ("shadows a module the code imports",),
    ),
    Rejected(
        "package-shadows-powertools",
        {"package_name": "aws_lambda_powertools"},
        "package_name",
        ("shadows a module the code imports",),
    ),
    Rejected(
        "package-shadows-tests",
        {"package_name": "tests"},
        "package_name",
        ("shadows a module",),
    ),
    Rejected(
        "package-41-chars",
        {"package_name": "p" * 41},
        "package_name",
        ("at most 40 characters, got 41",),
    ),
    Rejected(
        "email-no-at",
        {"author_email": "platform-team"},
        "author_email",
        ("must look like name@example.com",),
    ),
    Rejected("email-no-domain-dot", {"author_email": "team@example"}, "author_email", ("name@",)),
    Rejected(
        "region-truncated",
        {"aws_region": "us-east"},
        "aws_region",
        ("must be a region like us-east-1",),
    ),
    Rejected("region-uppercase", {"aws_region": "US-EAST-1"}, "aws_region", ("region",)),
    Rejected("region-unknown-prefix", {"aws_region": "xx-east-1"}, "aws_region", ("region",)),
    Rejected(
        "queue-name-77-chars-standard",
        {"queue_name": "q" * 77},
        "queue_name",
        ("at most 76 characters, got 77",),
    ),
    Rejected(
        "queue-name-72-chars-fifo",
        {"queue_type": "fifo", "queue_name": "q" * 72},
        "queue_name",
        ("at most 71 characters, got 72",),
    ),
    Rejected(
        "queue-name-with-fifo-suffix",
        {"queue_type": "fifo", "queue_name": "orders.fifo"},
        "queue_name",
        (QUEUE_CHARS,),
    ),
    Rejected("queue-name-space", {"queue_name": "my queue"}, "queue_name", (QUEUE_CHARS,)),
    Rejected(
        "fifo-batch-11",
        {"queue_type": "fifo", "batch_size": 11},
        "batch_size",
        ("1-10 for fifo, got 11",),
    ),
    Rejected(
        "fifo-batch-0",
        {"queue_type": "fifo", "batch_size": 0},
        "batch_size",
        ("1-10 for fifo, got 0",),
    ),
    Rejected(
        "standard-batch-10001",
        {"batch_size": 10001, "max_batching_window_seconds": 1},
        "batch_size",
        ("1-10000 for standard, got 10001",),
    ),
    Rejected(
        "standard-batch-0",
        {"batch_size": 0},
        "batch_size",
        ("1-10000 for standard, got 0",),
    ),
    Rejected(
        "fifo-batching-window-5",
        {"queue_type": "fifo", "max_batching_window_seconds": 5},
        "max_batching_window_seconds",
        ("0 or derived (fifo)",),
    ),
    Rejected(
        "batch-11-window-0",
        {"batch_size": 11, "max_batching_window_seconds": 0},
        "max_batching_window_seconds",
        ("derived or 1-300",),
    ),
    Rejected(
        "window-301",
        {"max_batching_window_seconds": 301},
        "max_batching_window_seconds",
        ("derived or 0-300",),
    ),
    Rejected(
        "window-negative",
        {"max_batching_window_seconds": -1},
        "max_batching_window_seconds",
        ("derived or 0-300",),
    ),
    Rejected(
        "window-fraction",
        {"max_batching_window_seconds": "1.5"},
        "max_batching_window_seconds",
        ("derived or 0-300",),
    ),
    Rejected(
        "window-word",
        {"max_batching_window_seconds": "auto"},
        "max_batching_window_seconds",
        ("derived or 0-300",),
    ),
    Rejected(
        "timeout-0",
        {"function_timeout_seconds": 0},
        "function_timeout_seconds",
        ("1-900, got 0",),
    ),
    Rejected(
        "timeout-901",
        {"function_timeout_seconds": 901},
        "function_timeout_seconds",
        ("1-900, got 901",),
    ),
    Rejected("memory-127", {"memory_mb": 127}, "memory_mb", ("128-10240, got 127",)),
    Rejected("memory-10241", {"memory_mb": 10241}, "memory_mb", ("128-10240, got 10241",)),
    Rejected(
        "visibility-below-timeout",
        {"function_timeout_seconds": 60, "visibility_timeout_seconds": 59},
        "visibility_timeout_seconds",
        ("derived or 60-43200",),
    ),
    Rejected(
        "visibility-below-timeout-900",
        {"function_timeout_seconds": 900, "visibility_timeout_seconds": 899},
        "visibility_timeout_seconds",
        ("derived or 900-43200",),
    ),
    Rejected(
        "visibility-43201",
        {"visibility_timeout_seconds": 43201},
        "visibility_timeout_seconds",
        ("derived or 30-43200",),
    ),
    Rejected(
        "visibility-with-unit",
        {"visibility_timeout_seconds": "180s"},
        "visibility_timeout_seconds",
        ("derived or 30-43200",),
    ),
    Rejected(
        "visibility-negative",
        {"visibility_timeout_seconds": "-180"},
        "visibility_timeout_seconds",
        ("derived or 30-43200",),
    ),
    Rejected(
        "max-receive-0",
        {"max_receive_count": 0},
        "max_receive_count",
        ("1-1000, got 0",),
    ),
    Rejected(
        "max-receive-1001",
        {"max_receive_count": 1001},
        "max_receive_count",
        ("1-1000, got 1001",),
    ),
    Rejected(
        "source-retention-59",
        {"source_retention_seconds": 59},
        "source_retention_seconds",
        (SOURCE_RETENTION,),
    ),
    Rejected(
        "source-retention-59s",
        {"source_retention_seconds": "59s"},
        "source_retention_seconds",
        (SOURCE_RETENTION,),
    ),
    Rejected(
        "source-retention-1209601",
        {"source_retention_seconds": 1209601},
        "source_retention_seconds",
        (SOURCE_RETENTION,),
    ),
    Rejected(
        "source-retention-15d",
        {"source_retention_seconds": "15d"},
        "source_retention_seconds",
        (SOURCE_RETENTION,),
    ),
    Rejected(
        "source-retention-337h",
        {"source_retention_seconds": "337h"},
        "source_retention_seconds",
        (SOURCE_RETENTION,),
    ),
    Rejected(
        "source-retention-unknown-unit",
        {"source_retention_seconds": "4w"},
        "source_retention_seconds",
        (SOURCE_RETENTION,),
    ),
    Rejected(
        "source-retention-space",
        {"source_retention_seconds": "4 d"},
        "source_retention_seconds",
        (SOURCE_RETENTION,),
    ),
    Rejected(
        "source-retention-unit-only",
        {"source_retention_seconds": "d"},
        "source_retention_seconds",
        (SOURCE_RETENTION,),
    ),
    Rejected(
        "dlq-retention-59",
        {"dlq_retention_seconds": 59},
        "dlq_retention_seconds",
        (DLQ_RETENTION,),
    ),
    Rejected(
        "dlq-retention-15d",
        {"dlq_retention_seconds": "15d"},
        "dlq_retention_seconds",
        (DLQ_RETENTION,),
    ),
    Rejected(
        "standard-dlq-retention-below-source",
        {"source_retention_seconds": 345600, "dlq_retention_seconds": 300000},
        "dlq_retention_seconds",
        ("above source's 345600 s",),
    ),
    Rejected(
        "standard-dlq-retention-equal-to-source",
        {"source_retention_seconds": "96h", "dlq_retention_seconds": "4d"},
        "dlq_retention_seconds",
        ("above source's 345600 s",),
    ),
    Rejected(
        "standard-source-retention-14d",
        {"source_retention_seconds": "14d"},
        "dlq_retention_seconds",
        ("above source's 1209600 s",),
    ),
    Rejected(
        "max-concurrency-1",
        {"max_concurrency": 1},
        "max_concurrency",
        ("2-1000, got 1",),
    ),
    Rejected(
        "max-concurrency-1001",
        {"max_concurrency": 1001},
        "max_concurrency",
        ("2-1000, got 1001",),
    ),
    Rejected(
        "reserved-below-max-concurrency",
        {"max_concurrency": 10, "reserved_concurrency": 5},
        "reserved_concurrency",
        ("0 or >= 10, got 5",),
    ),
    Rejected(
        "reserved-below-max-concurrency-1000",
        {"max_concurrency": 1000, "reserved_concurrency": 999},
        "reserved_concurrency",
        ("0 or >= 1000, got 999",),
    ),
    Rejected(
        "reserved-with-few-receives",
        {"max_receive_count": 3, "reserved_concurrency": 20},
        "reserved_concurrency",
        ("0 if max_receive_count < 5",),
    ),
    Rejected(
        "reserved-negative",
        {"reserved_concurrency": -1},
        "reserved_concurrency",
        ("0 or >= 10, got -1",),
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
    Rejected("region-trailing-newline", {"aws_region": "us-east-1\n"}, "aws_region", ("region",)),
    Rejected(
        "retention-trailing-newline",
        {"source_retention_seconds": "4d\n"},
        "source_retention_seconds",
        (SOURCE_RETENTION,),
    ),
    Rejected(
        "visibility-trailing-newline",
        {"visibility_timeout_seconds": "180\n"},
        "visibility_timeout_seconds",
        ("derived or 30-43200",),
    ),
]


def test_the_bad_inputs_are_distinct() -> None:
    ids = [case.id for case in REJECTED]
    answers = [sorted(case.answers.items()) for case in REJECTED]
    assert len(set(ids)) == len(ids)
    assert all(answers.count(a) == 1 for a in answers)
    assert len(REJECTED) >= 25


def test_every_validator_is_exercised() -> None:
    """Each question with a validator has at least one bad answer above."""
    validated = {name for name, spec in questions().items() if "validator" in spec}
    exercised = {case.field for case in REJECTED if not case.choice}
    assert validated - exercised == set()


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
        # The line Copier shows, in the terminal too: the field, then what is allowed, on one
        # line that an 80-column terminal shows whole.
        assert message.startswith(f"Validation error for question '{case.field}': "), message
        assert "\n" not in message, message
        assert len(message) <= COLUMNS, f"{len(message)} columns: {message!r}"
    for expected in case.says:
        assert expected in message, f"{expected!r} not in {message!r}"
    assert not dest.exists() or not any(dest.iterdir()), "files were written before validation"


#: Questions asked as text whose answer Copier records as text ("derived", "4d", "200").
TEXT_SETTINGS = frozenset(
    name
    for name, spec in questions().items()
    if spec.get("type") == "str" and "choices" not in spec
)


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param({"queue_type": "fifo", "batch_size": 10}, id="fifo-batch-10"),
        pytest.param({"queue_type": "fifo", "batch_size": 1}, id="fifo-batch-1"),
        pytest.param({"batch_size": 10000, "max_batching_window_seconds": 1}, id="std-batch-10000"),
        pytest.param({"batch_size": 11, "max_batching_window_seconds": 1}, id="std-batch-11"),
        pytest.param({"batch_size": 10, "max_batching_window_seconds": 0}, id="std-batch-10-w0"),
        pytest.param({"max_batching_window_seconds": 300}, id="window-300"),
        pytest.param({"max_batching_window_seconds": "derived"}, id="window-derived-typed"),
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
        pytest.param({"visibility_timeout_seconds": "derived"}, id="visibility-derived-typed"),
        pytest.param({"memory_mb": 128}, id="memory-128"),
        pytest.param({"memory_mb": 10240}, id="memory-10240"),
        pytest.param({"max_receive_count": 1}, id="max-receive-1"),
        pytest.param({"max_receive_count": 1000}, id="max-receive-1000"),
        pytest.param(
            {"source_retention_seconds": 60, "dlq_retention_seconds": 61}, id="retention-60-61"
        ),
        pytest.param(
            {"source_retention_seconds": "1m", "dlq_retention_seconds": "2m"}, id="retention-1m-2m"
        ),
        pytest.param(
            {"source_retention_seconds": 1209599, "dlq_retention_seconds": 1209600},
            id="retention-max",
        ),
        pytest.param(
            {"source_retention_seconds": "335h", "dlq_retention_seconds": "336h"},
            id="retention-hours",
        ),
        pytest.param(
            {
                "queue_type": "fifo",
                "source_retention_seconds": "14d",
                "dlq_retention_seconds": "1209600s",
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
        expected = str(value) if name in TEXT_SETTINGS else value
        assert values[name] == expected, f"{name}: {values[name]!r} != {expected!r}"


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
    # Settings derived from other answers record "derived" and resolve into computed values.
    assert values["max_batching_window_seconds"] == "derived"
    assert values["batching_window_seconds"] == 0
    assert values["visibility_timeout_seconds"] == "derived"
    assert values["queue_visibility_timeout_seconds"] == 6 * 30 + 0
    assert values["source_retention_seconds"] == "4d"
    assert values["source_retention_period_seconds"] == 4 * 86400
    assert values["dlq_retention_seconds"] == "14d"
    assert values["dlq_retention_period_seconds"] == 14 * 86400
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
    assert values["batching_window_seconds"] == 0
    assert values["queue_visibility_timeout_seconds"] == 6 * 30


def test_fifo_questions_have_their_defaults(probe_values: Probe) -> None:
    values = probe_values(queue_type="fifo")

    assert values["fifo_content_based_deduplication"] is True
    assert values["fifo_high_throughput"] is False


def test_a_batch_above_10_derives_a_window_of_1_and_adds_it_to_visibility(
    probe_values: Probe,
) -> None:
    values = probe_values(batch_size=100)

    assert values["max_batching_window_seconds"] == "derived"
    assert values["batching_window_seconds"] == 1
    assert values["queue_visibility_timeout_seconds"] == 6 * 30 + 1


@pytest.mark.parametrize(
    ("timeout", "window", "batch_size", "visibility"),
    [
        pytest.param(120, 0, 10, 720, id="timeout-120"),
        pytest.param(60, 5, 100, 365, id="timeout-60-window-5"),
        pytest.param(900, 300, 10000, 5700, id="timeout-900-window-300"),
        pytest.param(1, 0, 1, 6, id="timeout-1"),
    ],
)
def test_visibility_derives_six_timeouts_plus_the_window(
    timeout: int, window: int, batch_size: int, visibility: int, probe_values: Probe
) -> None:
    values = probe_values(
        function_timeout_seconds=timeout,
        max_batching_window_seconds=window,
        batch_size=batch_size,
    )

    assert values["visibility_timeout_seconds"] == "derived"
    assert values["queue_visibility_timeout_seconds"] == visibility
    assert values["batching_window_seconds"] == window


def test_a_typed_setting_is_used_as_typed(probe_values: Probe) -> None:
    values = probe_values(
        batch_size=50, max_batching_window_seconds=5, visibility_timeout_seconds=200
    )

    assert (values["max_batching_window_seconds"], values["batching_window_seconds"]) == ("5", 5)
    assert values["visibility_timeout_seconds"] == "200"
    assert values["queue_visibility_timeout_seconds"] == 200


@pytest.mark.parametrize(
    ("typed", "seconds"),
    [
        ("4d", 345600),
        ("96h", 345600),
        ("345600", 345600),
        ("345600s", 345600),
        ("5760m", 345600),
        ("1m", 60),
        ("60", 60),
        ("13d", 13 * 86400),
    ],
)
def test_a_retention_is_a_duration(typed: str, seconds: int, probe_values: Probe) -> None:
    values = probe_values(source_retention_seconds=typed)

    assert values["source_retention_seconds"] == typed
    assert values["source_retention_period_seconds"] == seconds
    assert values["dlq_retention_period_seconds"] == 14 * 86400


def _helps(values: dict[str, Any]) -> dict[str, str]:
    """Every question's help as Copier shows it, rendered with ``values`` (the answers)."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return {
        name: environment.from_string(spec["help"]).render(values)
        for name, spec in questions().items()
        if "help" in spec
    }


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"queue_type": "fifo"}, id="fifo"),
        pytest.param(
            {
                "function_timeout_seconds": 900,
                "batch_size": 10000,
                "max_batching_window_seconds": 300,
                "max_concurrency": 1000,
                "reserved_concurrency": 1000,
                "source_retention_seconds": "1209599",
            },
            id="widest-numbers",
        ),
    ],
)
def test_every_help_is_a_label_that_fits_the_terminal(
    answers: dict[str, Any], probe_values: Probe
) -> None:
    """Copier shows the help as the prompt (no question name beside it), each line cut at the
    terminal's width: a label or a question, every line whole at 80 columns."""
    asked = {name for name, spec in questions().items() if spec.get("when") is not False}
    helps = _helps(probe_values(**answers))

    assert asked - helps.keys() == set(), "questions without a help"
    for name, text in helps.items():
        assert text[:1].isupper(), f"{name}: {text!r} does not read as a label"
        for line in text.splitlines():
            assert len(line) <= HELP_COLUMNS, f"{name}: {len(line)} columns: {line!r}"


def test_the_helps_of_derived_settings_show_the_number_now(probe_values: Probe) -> None:
    helps = _helps(probe_values(function_timeout_seconds=60, batch_size=100))

    assert "derived = 6 x timeout + window = 361 s now" in helps["visibility_timeout_seconds"]
    assert "60-43200" in helps["visibility_timeout_seconds"]
    assert "derived = 1 s now" in helps["max_batching_window_seconds"]
    assert "4d (= 345600 s)" in helps["source_retention_seconds"]
    assert "above the source's 345600 s" in helps["dlq_retention_seconds"]
    assert (
        "above the source" not in _helps(probe_values(queue_type="fifo"))["dlq_retention_seconds"]
    )


def test_the_package_help_names_every_module_the_validator_refuses() -> None:
    spec = questions()["package_name"]
    listed = re.search(r"set shadowed = (\[.*?\])", spec["validator"])
    assert listed is not None
    help_words = set(re.findall(r"[a-z_0-9]+", spec["help"]))
    assert set(ast.literal_eval(listed[1])) <= help_words


@pytest.mark.parametrize(
    ("question", "label"),
    [
        ("queue_type", "Queue type ("),
        ("idempotency", "Idempotency ("),
        ("handler_style", "Handler style ("),
        ("poison_policy", "Poison messages ("),
    ],
)
def test_a_choice_is_introduced_by_what_it_chooses(question: str, label: str) -> None:
    assert questions()[question]["help"].startswith(label)


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
    with pytest.raises(ValueError, match="'batch_size': 1-10 for fifo, got 11"):
        probe_values(queue_type="fifo", batch_size=11)
