"""`run`'s local pace and what it says about failed messages, without any queue.

``--retry-after`` changes when a queue's failed messages come back: allowed against an
emulator, refused before any call when the run would reach real AWS.
"""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from sqs_lambda_tools import endpoint, run_cli, run_report
from sqs_lambda_tools.cli import app
from sqs_lambda_tools.endpoint import Endpoint
from sqs_lambda_tools.esm import QueueSettings, Retry
from sqs_lambda_tools.project import Project

pytestmark = pytest.mark.unit

QUEUE = QueueSettings(
    visibility_timeout_seconds=180, max_receive_count=5, dead_letter_queue_arn="arn:dlq"
)


@pytest.mark.parametrize(
    ("url", "emulator"),
    [
        (None, False),
        ("https://sqs.us-east-1.amazonaws.com", False),
        ("https://sqs.us-east-1.amazonaws.com.", False),
        ("https://sqs.cn-north-1.amazonaws.com.cn", False),
        ("https://sqs.eu-west-1.api.aws", False),
        ("http://127.0.0.1:4566", True),
        ("http://localhost:4566", True),
        ("http://localhost.localstack.cloud:4566", True),
        ("http://emulator:4566", True),
    ],
)
def test_the_pace_is_for_emulators_only(url: str | None, emulator: bool) -> None:
    assert run_cli._is_emulator(Endpoint(url=url, source="test")) is emulator


@pytest.mark.parametrize(
    ("arguments", "endpoint_url"),
    [
        (["--aws"], None),
        ([], "https://sqs.us-east-1.amazonaws.com"),
    ],
    ids=["aws-flag", "aws-endpoint-url"],
)
def test_the_pace_is_refused_against_aws_before_any_call(
    sample_project: Project,
    arguments: list[str],
    endpoint_url: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN no emulator recorded, and a run that would reach AWS
    monkeypatch.setattr(endpoint, "recorded_emulator", lambda project=None: None)
    if endpoint_url is None:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint_url)

    def no_call(*_: object, **__: object) -> object:
        raise AssertionError("the run reached for the queue")

    monkeypatch.setattr(run_cli, "_target", no_call)

    # WHEN it is asked for the local pace
    result = CliRunner().invoke(app, ["run", "--retry-after", "5", *arguments])

    # THEN it is refused, saying why
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    output = " ".join(result.output.split())
    assert "--retry-after is a local pace, for an emulator's queue only" in output
    assert "as deployed" in output


def retry(message_id: str, receive_count: int, group: str | None = None) -> Retry:
    return Retry(
        message_id=message_id,
        group=group,
        receive_count=receive_count,
        returns_at=time.time() + 5.4,
    )


def test_a_failed_group_says_what_waits_and_until_when() -> None:
    lines = run_report.retry_lines(
        [
            retry("aaaaaaaa-1", 2, "u-1"),
            retry("bbbbbbbb-2", 2, "u-1"),
            retry("cccccccc-3", 1, "u-1"),
        ],
        QUEUE,
        fifo=True,
    )

    [line] = lines
    assert line.startswith("group u-1 waits: message aaaaaaaa failed on receive 2 of 5, back at ")
    assert "(in 5 s); SQS holds the rest of the group until then." in line
    assert "3 more failed receives and the redrive policy moves it to the DLQ." in line
    assert "The 2 later messages of the group in its batch were reported with it" in line
    assert "1 of them, received as often, go to the DLQ with it if it gets there." in line


def test_a_group_whose_message_had_its_last_receive_says_it_leaves_for_the_dlq() -> None:
    [line] = run_report.retry_lines([retry("aaaaaaaa-1", 5, "u-1")], QUEUE, fifo=True)

    assert line.startswith(
        "group u-1 waits: message aaaaaaaa failed on receive 5 of 5, due to leave for the DLQ at "
    )
    assert "back at" not in line
    assert "It has had its 5 receives: the redrive policy moves it to the DLQ." in line


def test_each_failed_message_says_when_it_comes_back_and_how_far_the_dlq_is() -> None:
    lines = run_report.retry_lines(
        [retry("aaaaaaaa-1", 1), retry("bbbbbbbb-2", 5)], QUEUE, fifo=False
    )

    assert lines[0].startswith("message aaaaaaaa failed on receive 1 of 5, back at ")
    assert lines[0].endswith(
        "(in 5 s). 4 more failed receives and the redrive policy moves it to the DLQ."
    )
    assert lines[1].startswith(
        "message bbbbbbbb failed on receive 5 of 5, due to leave for the DLQ at "
    )
    assert lines[1].endswith("It has had its 5 receives: the redrive policy moves it to the DLQ.")


def test_many_failures_of_a_batch_make_one_line() -> None:
    lines = run_report.retry_lines(
        [retry(f"m-{n}", 1 + n % 2) for n in range(8)], QUEUE, fifo=False
    )

    [line] = lines
    assert line.startswith("8 failed messages (receive 1-2 of 5), back at ")


@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
def test_without_a_redrive_policy_a_failure_comes_back_until_processed(fifo: bool) -> None:
    queue = QueueSettings(
        visibility_timeout_seconds=30, max_receive_count=None, dead_letter_queue_arn=None
    )

    [line] = run_report.retry_lines(
        [retry("aaaaaaaa-1", 3, "u-1" if fifo else None)], queue, fifo=fifo
    )

    assert "failed on receive 3, back at " in line
    assert "No redrive policy: it comes back until it is processed." in line


@pytest.mark.parametrize(
    ("visibility", "retry_after", "expected"),
    [
        (180, None, "comes back when the visibility timeout ends, 180 s after its receive;"),
        (2, None, "2 s after its receive (deployed: 180 s);"),
        (180, 1, "comes back 1 s after its failure on the emulator's queue (deployed: when "),
    ],
    ids=["as-deployed", "changed-visibility", "local-pace"],
)
def test_the_retry_rule_compares_the_queue_with_the_projects_visibility_timeout(
    sample_project: Project, visibility: int, retry_after: int | None, expected: str
) -> None:
    # GIVEN the sample project's visibility timeout, 180 s, and a queue with `visibility`
    queue = QueueSettings(
        visibility_timeout_seconds=visibility, max_receive_count=3, dead_letter_queue_arn="a"
    )

    rule = run_report.retry_rule(queue, retry_after, sample_project)

    assert expected in rule
    assert "after 3 failed receives the redrive policy moves it to the DLQ" in rule
