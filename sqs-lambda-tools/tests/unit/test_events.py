"""`sqsl events` writes the sample events from the project's sample function.

The bodies are the sample function's, the digests the ones SQS computes (checked against
moto's SQS, which computes them as SQS does), and the files the same bytes on every run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner, Result

from sqs_lambda_tools import events_cli
from sqs_lambda_tools.cli import app
from sqs_lambda_tools.project import Project

pytestmark = pytest.mark.unit

FIVE_MINUTES_MS = 5 * 60 * 1000


def sqsl(*arguments: str) -> Result:
    return CliRunner().invoke(app, list(arguments))


def sample(number: int, run_id: str) -> dict[str, Any]:
    """The sample project's own sample function, as its service would call it."""
    return {
        "orderId": f"o-{run_id}-{number:03d}",
        "userId": ("u-1", "u-2", "u-3")[(number - 1) % 3],
    }


def body_of(number: int, run_id: str) -> str:
    return json.dumps(sample(number, run_id))


def records(folder: Path, name: str) -> list[dict[str, Any]]:
    event = json.loads((folder / name).read_text(encoding="utf-8"))
    assert list(event) == ["Records"]
    found: list[dict[str, Any]] = event["Records"]
    return found


def test_the_batch_holds_three_samples_and_a_poison_third(
    sample_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(sample_project.root)

    result = sqsl("events")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["wrote events/batch.json", "wrote events/duplicate.json"]
    batch = records(sample_project.root / "events", "batch.json")
    bodies = [record["body"] for record in batch]
    assert bodies[0] == body_of(1, "batch")
    assert bodies[1] == body_of(2, "batch")
    assert bodies[3] == body_of(4, "batch")
    # The poison is sample 3 cut short: it names the order, and it is not JSON.
    assert body_of(3, "batch").startswith(bodies[2])
    assert '"o-batch-003"' in bodies[2]
    with pytest.raises(ValueError, match="Expecting"):
        json.loads(bodies[2])
    assert len({record["messageId"] for record in batch}) == 4


def test_the_duplicate_is_one_sample_delivered_as_two_messages(sample_project: Project) -> None:
    assert sqsl("events").exit_code == 0

    first, second = records(sample_project.root / "events", "duplicate.json")

    assert first["body"] == second["body"] == body_of(1, "duplicate")
    assert first["messageId"] != second["messageId"]
    assert first["receiptHandle"] != second["receiptHandle"]
    sent = [int(record["attributes"]["SentTimestamp"]) for record in (first, second)]
    assert sent[1] - sent[0] > FIVE_MINUTES_MS


def test_records_have_the_shape_lambda_delivers_for_a_standard_queue(
    sample_project: Project,
) -> None:
    assert sqsl("events").exit_code == 0

    for record in records(sample_project.root / "events", "batch.json"):
        assert list(record) == [
            "messageId",
            "receiptHandle",
            "body",
            "attributes",
            "messageAttributes",
            "md5OfBody",
            "md5OfMessageAttributes",
            "eventSource",
            "eventSourceARN",
            "awsRegion",
        ]
        assert set(record["attributes"]) == {
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
        }
        first_received = int(record["attributes"]["ApproximateFirstReceiveTimestamp"])
        assert first_received >= int(record["attributes"]["SentTimestamp"])
        assert record["messageAttributes"]["eventType"]["stringValue"] == "SampleOrder"
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"].endswith(":sample-orders")
        assert record["awsRegion"] == sample_project.region == "us-east-1"


def test_the_digests_are_the_ones_sqs_computes(sample_project: Project) -> None:
    assert sqsl("events").exit_code == 0
    written = [
        *records(sample_project.root / "events", "batch.json"),
        *records(sample_project.root / "events", "duplicate.json"),
    ]

    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="digests")["QueueUrl"]
        for record in written:
            attributes = {
                name: {"DataType": value["dataType"], "StringValue": value["stringValue"]}
                for name, value in record["messageAttributes"].items()
            }
            sent = sqs.send_message(
                QueueUrl=url,
                MessageBody=record["body"],
                MessageAttributes=attributes,  # type: ignore[arg-type]
            )

            assert record["md5OfBody"] == sent["MD5OfMessageBody"]
            assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
            assert record["md5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]


def test_the_attribute_digest_follows_sqs_for_strings_and_binaries() -> None:
    # The digest AWS's own sample events carry for this attribute.
    order_placed = {"eventType": {"stringValue": "OrderPlaced", "dataType": "String"}}
    assert events_cli.attributes_md5(order_placed) == "cd09b7610d38bb3635df21b6933432ec"

    attributes = {
        "b": {"binaryValue": "AAEC/w==", "dataType": "Binary"},
        "a": {"stringValue": "7", "dataType": "Number"},
    }
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="digests")["QueueUrl"]
        sent = sqs.send_message(
            QueueUrl=url,
            MessageBody="x",
            MessageAttributes={
                "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01\x02\xff"},
                "a": {"DataType": "Number", "StringValue": "7"},
            },
        )
    assert events_cli.attributes_md5(attributes) == sent["MD5OfMessageAttributes"]


def test_fifo_records_carry_groups_sequence_numbers_and_deduplication_ids(
    fifo_sample_project: Project,
) -> None:
    assert sqsl("events").exit_code == 0
    folder = fifo_sample_project.root / "events"

    batch = records(folder, "batch.json")
    # The group is the sample's group_key field (userId), the poison's its whole sample's.
    assert [record["attributes"]["MessageGroupId"] for record in batch] == [
        "u-1",
        "u-2",
        "u-3",
        "u-1",
    ]
    numbers = [int(record["attributes"]["SequenceNumber"]) for record in batch]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 4
    for record in batch:
        assert record["eventSourceARN"].endswith(":sample-orders.fifo")
        body = record["body"].encode()
        assert record["attributes"]["MessageDeduplicationId"] == hashlib.sha256(body).hexdigest()

    first, second = records(folder, "duplicate.json")
    # Content-based deduplication gives both copies one id: only the five-minute interval
    # between them lets SQS deliver the second.
    dedup = [record["attributes"]["MessageDeduplicationId"] for record in (first, second)]
    assert dedup[0] == dedup[1]
    assert first["attributes"]["MessageGroupId"] == second["attributes"]["MessageGroupId"] == "u-1"


def test_a_second_run_writes_the_same_bytes(
    sample_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(sample_project.root)
    assert sqsl("events").exit_code == 0
    folder = sample_project.root / "events"
    before = {name: (folder / name).read_bytes() for name in events_cli.FILES}

    result = sqsl("events")

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "unchanged events/batch.json",
        "unchanged events/duplicate.json",
    ]
    assert {name: (folder / name).read_bytes() for name in events_cli.FILES} == before


def test_check_passes_on_fresh_files_and_names_an_edited_one(sample_project: Project) -> None:
    assert sqsl("events").exit_code == 0
    assert sqsl("events", "--check").exit_code == 0
    batch = sample_project.root / "events" / "batch.json"
    event = json.loads(batch.read_text(encoding="utf-8"))
    event["Records"][0]["body"] = body_of(1, "edited")
    batch.write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")

    result = sqsl("events", "--check")

    assert result.exit_code == 1
    assert "events/batch.json is stale" in result.stderr
    assert "duplicate.json" not in result.stderr
    assert json.loads(batch.read_text(encoding="utf-8")) == event  # --check writes nothing


def test_check_follows_the_sample_function(
    make_sample_project: Callable[..., Project],
) -> None:
    # GIVEN events written from the sample function, and a copy of the project where the
    # function has a new field (a copy: a module already imported is not read again)
    original = make_sample_project(name="original")
    assert sqsl("events").exit_code == 0
    edited = make_sample_project(name="edited")
    samples = edited.root / "src" / "sample_orders" / "samples.py"
    samples.write_text(
        samples.read_text(encoding="utf-8").replace(
            '"userId": USERS[(number - 1) % len(USERS)]',
            '"userId": USERS[(number - 1) % len(USERS)], "currency": "EUR"',
        ),
        encoding="utf-8",
    )
    (edited.root / "events").mkdir()
    for name in events_cli.FILES:
        (edited.root / "events" / name).write_bytes((original.root / "events" / name).read_bytes())

    stale = sqsl("events", "--check")
    written = sqsl("events")

    assert stale.exit_code == 1
    assert "events/batch.json is stale" in stale.stderr
    assert "events/duplicate.json is stale" in stale.stderr
    assert written.exit_code == 0
    assert '"currency": "EUR"' in records(edited.root / "events", "batch.json")[0]["body"]
    assert sqsl("events", "--check").exit_code == 0


def test_check_names_a_missing_file(sample_project: Project) -> None:
    result = sqsl("events", "--check")

    assert result.exit_code == 1
    assert "events/batch.json is missing" in result.stderr
    assert "events/duplicate.json is missing" in result.stderr


def test_output_writes_elsewhere(sample_project: Project, tmp_path: Path) -> None:
    result = sqsl("events", "--output", str(tmp_path / "elsewhere"))

    assert result.exit_code == 0, result.output
    assert len(records(tmp_path / "elsewhere", "batch.json")) == 4
    assert not (sample_project.root / "events").exists()


def test_without_a_sample_function_it_says_which_key_to_set(
    make_sample_project: Callable[..., Project],
) -> None:
    settings = make_sample_project(
        edit=lambda text: text.replace('function = "sample_orders.samples:sample_order"\n', "")
    )

    result = sqsl("events")

    assert result.exit_code == 2
    assert "[tool.sqsl.samples] function is not set" in result.stderr
    assert str(settings.root / "pyproject.toml") in result.stderr
    assert not (settings.root / "events").exists()
