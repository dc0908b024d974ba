"""`events`: the sample events, ``events/batch.json`` and ``events/duplicate.json``.

Both are made from the project's sample function (``[tool.sqsl.samples] function``), so a
field added to the schema and to that function reaches the events with one command, and
shaped as the event source mapping delivers records ("Using Lambda with Amazon SQS"):

- ``batch.json``: four records, samples 1, 2 and 4 and, third, sample 3's JSON cut short
  (a poison message);
- ``duplicate.json``: the same sample delivered twice, as two messages with different
  ``messageId``s sent six minutes apart (past a FIFO queue's five-minute deduplication
  interval, so SQS delivers both: deduplication by the queue is not idempotency).

``md5OfBody`` and ``md5OfMessageAttributes`` are the real digests (SQS's algorithms). Ids,
receipt handles and timestamps come from a fixed seed: writing the files again gives the
same bytes, so ``git diff`` shows only what the sample function changed, and ``--check``
(for a service's CI) fails when a file is not what the sample function gives.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import struct
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from . import config
from .project import Project, current
from .samples import SampleFunction, group_of, sample_body, sample_function

FILES = ("batch.json", "duplicate.json")
SEED = "sqsl-events"
#: 2026-01-01T00:00:00Z: the batch is sent from here, the duplicate an hour later.
BASE_TIMESTAMP_MS = 1_767_225_600_000
DUPLICATE_INTERVAL_MS = 6 * 60 * 1000
FIRST_SEQUENCE_NUMBER = 18_849_496_460_467_696_128
SENDER_ID = "AIDAIENQZJOLO23YVJ4VO"  # the IAM user of AWS's sample event
EVENT_TYPE_ATTRIBUTE = "eventType"


def register(app: typer.Typer) -> None:
    app.command("events")(events)


def events(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            file_okay=False,
            help="Folder of the event files (default: the project's events/).",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 when a file is missing or stale."),
    ] = False,
) -> None:
    """Write events/batch.json and events/duplicate.json from the sample function."""
    project = current()
    folder = output if output is not None else project.root / "events"
    if check:
        stale = stale_files(folder, project)
        for path in stale:
            state = "missing" if not path.exists() else "stale"
            typer.echo(
                f"{display(path)} is {state}: run `sqsl events` to write it from "
                f"{project.samples.function}",
                err=True,
            )
        if stale:
            raise typer.Exit(1)
        typer.echo(f"{', '.join(display(folder / name) for name in FILES)}: up to date")
        return
    for path, changed in write_events(folder, project):
        typer.echo(f"{'wrote' if changed else 'unchanged'} {display(path)}")


def build_events(project: Project | None = None) -> dict[str, dict[str, Any]]:
    """Each event file's content, by file name."""
    project = project or current()
    sample = sample_function(project)
    batch_samples = [_sample(sample, project, number, "batch") for number in range(1, 5)]
    batch_samples[2] = (poison_body(batch_samples[2][0]), batch_samples[2][1])
    batch = _Records(project, "batch.json", BASE_TIMESTAMP_MS)
    for body, group in batch_samples:
        batch.add(body, group, sent_after_ms=batch.rng.randint(100, 150))

    duplicate = _Records(project, "duplicate.json", BASE_TIMESTAMP_MS + 3_600_000)
    body, group = _sample(sample, project, 1, "duplicate")
    duplicate.add(body, group, sent_after_ms=0)
    duplicate.add(body, group, sent_after_ms=DUPLICATE_INTERVAL_MS)
    return {"batch.json": batch.event(), "duplicate.json": duplicate.event()}


def render(event: Mapping[str, Any]) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False) + "\n"


def write_events(folder: Path, project: Project | None = None) -> list[tuple[Path, bool]]:
    """Write the event files into ``folder``; (path, whether its content changed) each."""
    contents = {name: render(event) for name, event in build_events(project).items()}
    folder.mkdir(parents=True, exist_ok=True)
    written: list[tuple[Path, bool]] = []
    for name, text in contents.items():
        path = folder / name
        changed = _read(path) != text
        if changed:
            path.write_text(text, encoding="utf-8")
        written.append((path, changed))
    return written


def stale_files(folder: Path, project: Project | None = None) -> list[Path]:
    """The event files in ``folder`` that are missing or differ from what would be written."""
    return [
        folder / name
        for name, event in build_events(project).items()
        if _read(folder / name) != render(event)
    ]


def body_md5(body: str) -> str:
    return hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest()


def attributes_md5(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """``md5OfMessageAttributes`` of attributes in the Lambda record's shape.

    SQS's algorithm ("Calculating the MD5 message digest for message attributes"): for each
    attribute, by name, the name, the data type, a transport byte (1 string, 2 binary) and
    the value, each string or value preceded by its length as 4 big-endian bytes.
    """
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        attribute = attributes[name]
        data_type: str = attribute["dataType"]
        if "stringValue" in attribute:
            transport, value = 1, str(attribute["stringValue"]).encode("utf-8")
        elif "binaryValue" in attribute:
            transport, value = 2, base64.b64decode(attribute["binaryValue"])
        else:
            raise ValueError(f"attribute {name!r} has neither stringValue nor binaryValue")
        for part in (name.encode("utf-8"), data_type.encode("utf-8")):
            digest.update(struct.pack(">I", len(part)) + part)
        digest.update(bytes([transport]) + struct.pack(">I", len(value)) + value)
    return digest.hexdigest()


def poison_body(body: str) -> str:
    """``body`` cut short, so that it no longer parses: a JSON object keeps only its first
    field (``{"orderId": "o-1", `` shows whose message it was), other text its first half."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload:
        first = next(iter(payload.items()))
        return json.dumps(dict([first]), ensure_ascii=False)[:-1] + ", "
    return body[: len(body) // 2]


class _Records:
    """The records of one event file, ids and timestamps drawn from the seed."""

    def __init__(self, project: Project, file: str, start_ms: int) -> None:
        self.project = project
        self.rng = random.Random(f"{SEED}:{file}")
        self.sent_ms = start_ms
        self.sequence_number = FIRST_SEQUENCE_NUMBER
        self.records: list[dict[str, Any]] = []

    def add(self, body: str, group: str, *, sent_after_ms: int) -> None:
        self.sent_ms += sent_after_ms
        message_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        receipt_handle = "AQEB" + base64.b64encode(self.rng.randbytes(114)).decode("ascii")
        attributes = {"ApproximateReceiveCount": "1", "SentTimestamp": str(self.sent_ms)}
        if self.project.queue.fifo:
            self.sequence_number += self.rng.randint(200_000, 320_000)
            attributes["SequenceNumber"] = str(self.sequence_number)
            attributes["MessageGroupId"] = group
        attributes["SenderId"] = SENDER_ID
        if self.project.queue.fifo:
            # What SQS uses with content-based deduplication: the body's SHA-256.
            attributes["MessageDeduplicationId"] = hashlib.sha256(body.encode()).hexdigest()
        message_attributes = {
            EVENT_TYPE_ATTRIBUTE: {
                "stringValue": self.event_type,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
        }
        self.records.append(
            {
                "messageId": message_id,
                "receiptHandle": receipt_handle,
                "body": body,
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": body_md5(body),
                "md5OfMessageAttributes": attributes_md5(message_attributes),
                "eventSource": "aws:sqs",
                "eventSourceARN": (
                    f"arn:aws:sqs:{self.project.region}:{config.ACCOUNT_ID}:"
                    f"{self.project.queue.name}"
                ),
                "awsRegion": self.project.region,
            }
        )

    @property
    def event_type(self) -> str:
        """The sample function's name in CamelCase: ``sample_order`` -> ``SampleOrder``."""
        name = (self.project.samples.function or "sample").rpartition(":")[2]
        return "".join(part.capitalize() for part in name.split("_") if part)

    def event(self) -> dict[str, Any]:
        # Every record of one batch is first received by the same poll.
        first_received = str(self.sent_ms + self.rng.randint(600, 1100))
        for record in self.records:
            attributes = record["attributes"]
            attributes["ApproximateFirstReceiveTimestamp"] = first_received
        return {"Records": self.records}


def _sample(
    function: SampleFunction, project: Project, number: int, run_id: str
) -> tuple[str, str]:
    """Sample ``number``'s body, and its FIFO group (its ``group_key`` field)."""
    body = sample_body(function, number, run_id, project)
    return body, group_of(body, project)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def display(path: Path) -> str:
    """``path`` relative to the cwd when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
