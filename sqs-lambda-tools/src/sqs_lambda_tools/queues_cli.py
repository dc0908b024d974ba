"""``send``, ``dlq``, ``redrive``, ``purge``: put traffic on the queues and look after the DLQ.

These are the steps of a consumer's working life, against the embedded emulator, any
``AWS_ENDPOINT_URL`` or (with ``--aws``) the real queues: send orders, awkward ones
included; see what failed and why without taking it off the DLQ; send it back once the
cause is fixed; start again from an empty queue.

Queue names come from the project's settings (``[tool.sqsl.queue]`` and ``dlq``). Hidden
options select others, so that each test works on queues of its own: ``--suffix`` as for
``run``, or ``--source-queue`` and ``--dead-letter-queue`` by name.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich import box
from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .endpoint import DEV_COMMAND, Endpoint, NoEndpointError, resolve_endpoint
from .project import current
from .samples import DEFAULT_GROUP_ID, OutgoingMessage, outgoing, sample_orders

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        DeleteMessageBatchRequestEntryTypeDef,
        MessageAttributeValueOutputTypeDef,
        MessageAttributeValueTypeDef,
        MessageTypeDef,
    )

QueueChoice = Literal["source", "dlq"]
RedriveMethod = Literal["auto", "move-task", "resend"]

# SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch: at most 10 entries;
# a SendMessageBatch's bodies and attributes together at most the 1 MiB message limit.
BATCH_ENTRIES = 10
BATCH_BYTES = 1024 * 1024
# `dlq` hides what it has read for this long, so its next receives reach the rest of the
# queue; it makes them visible again when done, or SQS does after this many seconds.
PEEK_HOLD_SECONDS = 60
# A brief long poll: a short poll of a standard queue samples only some SQS servers and
# can come back empty while messages wait.
RECEIVE_WAIT_SECONDS = 1
# `redrive`'s fallback hides a DLQ message while it copies it, so no one else moves it too.
RESEND_HOLD_SECONDS = 120
MOVE_TASK_POLL_SECONDS = 1.0
# SQS moves at most 500 messages a second; an hour covers any DLQ a local loop makes.
MOVE_TASK_TIMEOUT_SECONDS = 3600
# What an endpoint without StartMessageMoveTask answers (MiniStack: InvalidAction, 400).
UNSUPPORTED_ACTION_CODES = frozenset(
    {
        "InvalidAction",
        "UnknownOperation",
        "UnknownOperationException",
        "UnsupportedOperation",
        "NotImplemented",
        "NotImplementedError",
        "NotImplementedException",
    }
)
# The attributes the handler adds when it dead-letters a message: about the failure, so
# not carried back to the source queue. source_message_id and source_receive_count stay,
# to trace a redriven message to the delivery that failed.
FAILURE_ATTRIBUTE_PREFIX = "failure_"
# `dlq`'s table: longer text is cut (`--json` shows it whole); widths in columns.
TABLE_TEXT_CHARS = 200
FIFO_MORE = "the rest wait behind their group's first messages; `redrive` moves them all"
FAILURE_TYPE_WIDTH = 24
# The failure reason wraps in a column at least this wide; on a terminal with less room
# for it (80 columns: the message id takes 36), each message is listed as a block instead.
REASON_MIN_WIDTH = 30
BODY_MIN_WIDTH = 16
# What SQS answers when the caller may not do it: `redrive` reports these instead of going
# around them by receive/send/delete (which the same missing permission would stop too).
PERMISSION_ERROR_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "UnauthorizedOperation",
        "KMS.AccessDeniedException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "UnrecognizedClientException",
    }
)
# A SendMessageBatch refused as a whole for what it holds, not for where it was sent.
BATCH_CONTENT_ERRORS = frozenset({"BatchRequestTooLong", "InvalidParameterValue"})

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


# -- options shared by every command -------------------------------------------------------

QueueOption = Annotated[
    QueueChoice,
    typer.Option(
        "--queue",
        "-q",
        help="source: the queue the function consumes; dlq: its dead-letter queue.",
    ),
]
AwsOption = Annotated[
    bool,
    typer.Option(
        "--aws",
        help="Use real AWS (your usual credentials) if no emulator is running and "
        "AWS_ENDPOINT_URL is unset; without it, nothing reaches AWS by accident.",
    ),
]
SuffixOption = Annotated[
    str | None,
    typer.Option(
        "--suffix",
        hidden=True,
        help="Use the queues named <name><suffix> (.fifo stays last), as tests provision them.",
    ),
]
SourceQueueOption = Annotated[
    str | None,
    typer.Option(
        "--source-queue",
        hidden=True,
        help="Name of the source queue, instead of the project's (tests use their own).",
    ),
]
DeadLetterQueueOption = Annotated[
    str | None,
    typer.Option(
        "--dead-letter-queue",
        hidden=True,
        help="Name of the dead-letter queue, instead of the project's.",
    ),
]


# -- plumbing ------------------------------------------------------------------------------


def _fail(message: str) -> NoReturn:
    """One line on stderr and exit status 1: what went wrong and, where known, what to do."""
    errors.print(Text.assemble(("error: ", "bold red"), message))
    raise typer.Exit(1)


def _warn(message: str) -> None:
    errors.print(Text.assemble(("warning: ", "bold yellow"), message))


def _error_code(error: ClientError) -> str:
    """The error code without the ``AWS.SimpleQueueService.`` prefix of the query protocol."""
    code = error.response.get("Error", {}).get("Code", "")
    return code.rsplit(".", 1)[-1]


def _error_text(error: ClientError) -> str:
    details = error.response.get("Error", {})
    return f"{details.get('Code', 'error')}: {details.get('Message', str(error))}"


@dataclass
class Queues:
    """The project's two queues on one endpoint, for one command.

    URLs and ARNs are looked up on first use, so a command that needs only one queue does
    not fail because the other is missing.
    """

    endpoint: Endpoint
    sqs: SQSClient
    names: dict[QueueChoice, str]
    fifo: bool
    _urls: dict[QueueChoice, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        """The endpoint in words, for messages: which emulator, or real AWS."""
        if self.endpoint.url is None:
            return "AWS"
        return f"{self.endpoint.url} ({self.endpoint.source})"

    def url(self, which: QueueChoice) -> str:
        if which not in self._urls:
            name = self.names[which]
            try:
                self._urls[which] = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except ClientError as error:
                if _error_code(error) not in ("NonExistentQueue", "QueueDoesNotExist"):
                    raise
                _fail(
                    f"queue {name} does not exist on {self.where}: provision it with "
                    f"`{DEV_COMMAND} up`"
                )
        return self._urls[which]

    def arn(self, which: QueueChoice) -> str:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url(which), AttributeNames=["QueueArn"]
        )
        return attributes["Attributes"]["QueueArn"]

    def depth(self, which: QueueChoice) -> tuple[int, int]:
        """(visible, in flight) messages, as SQS approximates them."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url(which),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes.get("ApproximateNumberOfMessages", "0")),
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0")),
        )


def _queues(
    aws: bool, suffix: str | None, source_queue: str | None, dead_letter_queue: str | None
) -> Queues:
    """The endpoint every command resolves the same way, and the names it works on.

    The project's queues by default; ``--suffix`` (the tools' convention for tests)
    or, more precisely, an explicit name selects others.
    """
    try:
        endpoint = resolve_endpoint(aws=aws)
    except NoEndpointError as error:
        _fail(str(error))
    defaults = current().resources()
    if suffix:
        defaults = defaults.with_suffix(suffix)
    return Queues(
        endpoint=endpoint,
        sqs=endpoint.sqs(),
        names={
            "source": source_queue or defaults.source_queue,
            "dlq": dead_letter_queue or defaults.dead_letter_queue,
        },
        fifo=defaults.fifo,
    )


@contextmanager
def _reported(queues: Queues) -> Iterator[None]:
    """Turn an AWS or connection error into one line on stderr and exit status 1.

    A traceback from botocore says little to someone who only forgot ``sqsl up``.
    """
    try:
        yield
    except ClientError as error:
        _fail(f"{error.operation_name} on {queues.where} failed: {_error_text(error)}")
    except BotoCoreError as error:
        hint = (
            f" (is the emulator running? `{DEV_COMMAND} up`)" if queues.endpoint.is_emulator else ""
        )
        _fail(f"{queues.where}: {error}{hint}")


def _chunks(items: Sequence[str], size: int = BATCH_ENTRIES) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _release(sqs: SQSClient, url: str, receipt_handles: Sequence[str]) -> None:
    """Make received messages visible again at once, instead of after their hold."""
    for chunk in _chunks(receipt_handles):
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for index, handle in enumerate(chunk)
        ]
        failed = sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries).get(
            "Failed", []
        )
        if failed:
            _warn(f"{len(failed)} messages stay hidden until their visibility timeout ends")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# -- send ----------------------------------------------------------------------------------


def _check_json(body: str, where: str, *, raw: bool) -> None:
    """Refuse a body that is not JSON unless ``--raw`` says it is meant to be malformed."""
    if raw:
        return
    try:
        json.loads(body)
    except json.JSONDecodeError as error:
        _fail(
            f"{where} is not valid JSON ({error.msg} at column {error.colno}); "
            "pass --raw to send it as it is"
        )


def _read_lines(path: Path, *, raw: bool) -> list[tuple[str, str]]:
    """(label, body) for each non-blank line of a JSON-lines file (``-``: standard input).

    Every line is checked before anything is sent: a typo on line 900 must not leave 899
    messages sent and the file half replayed. Lines split on ``\\n`` only, because a JSON
    string may hold other Unicode line separators.
    """
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        _fail(f"cannot read {path}: {error}")
    bodies = []
    for number, line in enumerate(text.split("\n"), start=1):
        body = line.removesuffix("\r")
        if not body.strip():
            continue
        _check_json(body, f"{path}, line {number},", raw=raw)
        bodies.append((f"line {number}", body))
    return bodies


def _size(message: OutgoingMessage) -> int:
    """Bytes a message counts for against the batch limit: its body and attributes."""
    size = len(message.body.encode("utf-8"))
    for name, value in message.attributes.items():
        payload = value.get("StringValue", value.get("BinaryValue", b""))
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        size += (
            len(name) + len(value["DataType"]) + (len(payload) if isinstance(payload, bytes) else 0)
        )
    return size


def _batches(messages: Sequence[OutgoingMessage]) -> Iterator[range]:
    """Index ranges of at most 10 messages and 1 MiB each, in order."""
    sizes = [_size(message) for message in messages]
    start = 0
    while start < len(messages):
        end, total = start + 1, sizes[start]
        while end < len(messages) and end - start < BATCH_ENTRIES:
            if total + sizes[end] > BATCH_BYTES:
                break
            total += sizes[end]
            end += 1
        yield range(start, end)
        start = end


def _send_batches(
    sqs: SQSClient, url: str, messages: Sequence[OutgoingMessage]
) -> tuple[list[int], dict[int, str]]:
    """Send with SendMessageBatch; return the positions sent and, per position, why not.

    An entry SQS refuses does not stop the others, nor does a batch refused as a whole
    for its content (too long, an invalid value); any other error (no such queue, no
    permission) would fail every batch the same way, so it propagates at once.
    """
    sent: list[int] = []
    refused: dict[int, str] = {}
    for indexes in _batches(messages):
        entries = [messages[index].entry(str(index)) for index in indexes]
        try:
            response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        except ClientError as error:
            if _error_code(error) not in BATCH_CONTENT_ERRORS:
                if sent:
                    _warn(f"{_plural(len(sent), 'message')} were sent before this error")
                raise
            refused.update((index, _error_text(error)) for index in indexes)
            continue
        sent.extend(int(entry["Id"]) for entry in response.get("Successful", []))
        refused.update(
            (int(entry["Id"]), f"{entry['Code']}: {entry.get('Message', '')}")
            for entry in response.get("Failed", [])
        )
    return sent, refused


def _messages(
    body: str | None,
    file: Path | None,
    sample: int | None,
    *,
    poison: bool,
    raw: bool,
    group: str | None,
    dedup_id: str | None,
) -> list[tuple[str, OutgoingMessage]]:
    """What ``send`` was asked to send, each with a label for error lines."""
    given = [
        name
        for name, value in (("BODY", body), ("--file", file), ("--sample", sample))
        if value is not None
    ]
    if len(given) != 1:
        got = f" (got {' and '.join(given)})" if given else ""
        _fail(f"give exactly one of BODY, --file or --sample{got}")
    if poison and sample is None:
        _fail("--poison only applies to --sample")
    fifo = current().queue.fifo
    if not fifo and (group or dedup_id):
        _fail("--group and --dedup-id only apply to a FIFO queue; this project's are standard")
    if dedup_id and body is None:
        _fail("--dedup-id applies to one BODY: each message of a file or sample gets its own")
    if body is not None:
        _check_json(body, "the body", raw=raw)
        message = outgoing(body, group_id=group, deduplication_id=dedup_id, fifo=fifo)
        return [("the body", message)]
    if file is not None:
        lines = _read_lines(file, raw=raw)
        if not lines:
            _fail(f"{file} holds no message: every line is blank")
        return [(label, outgoing(line, group_id=group, fifo=fifo)) for label, line in lines]
    assert sample is not None  # exactly one of the three was given
    return [
        (f"message {number}", replace(message, group_id=group) if group else message)
        for number, message in enumerate(sample_orders(sample, poison=poison), start=1)
    ]


def send(
    body: Annotated[
        str | None,
        typer.Argument(
            help='The message body, e.g. \'{"orderId": "o-1"}\'.',
            metavar="BODY",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="JSON lines: one body per line; blank lines are skipped; - reads stdin.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample",
            "-n",
            min=1,
            help="Send N sample messages from the project's sample function "
            "([tool.sqsl.samples] function), about one in five a repeat of an earlier one.",
            show_default=False,
        ),
    ] = None,
    poison: Annotated[
        bool,
        typer.Option("--poison", help="With --sample: one of the N is malformed (truncated JSON)."),
    ] = False,
    raw: Annotated[
        bool,
        typer.Option("--raw", help="Send a body or line that is not JSON as it is, not refuse it."),
    ] = False,
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            "-g",
            help="FIFO queues: the message group of every message (default: each body's "
            "[tool.sqsl.samples] group_key field, else one group).",
            show_default=False,
        ),
    ] = None,
    dedup_id: Annotated[
        str | None,
        typer.Option(
            "--dedup-id",
            help="FIFO queues, one BODY: its deduplication id; send twice with the same id "
            "to see SQS drop the second (default: a new id, so every send is delivered).",
            show_default=False,
        ),
    ] = None,
    queue: QueueOption = "source",
    aws: AwsOption = False,
    suffix: SuffixOption = None,
    source_queue: SourceQueueOption = None,
    dead_letter_queue: DeadLetterQueueOption = None,
) -> None:
    """Send messages to the source queue (or the DLQ): a BODY, a --file, or --sample N.

    Every body must be JSON unless --raw is given, so a typo is not sent as a poison
    message by accident. Messages go in batches of 10; an entry SQS refuses is reported
    with its line or position, and the command then exits with status 1.
    """
    labelled = _messages(body, file, sample, poison=poison, raw=raw, group=group, dedup_id=dedup_id)
    messages = [message for _, message in labelled]
    queues = _queues(aws, suffix, source_queue, dead_letter_queue)
    with _reported(queues):
        sent, refused = _send_batches(queues.sqs, queues.url(queue), messages)
    for index, reason in sorted(refused.items()):
        errors.print(f"{labelled[index][0]}: {reason}", markup=False, highlight=False)
    name = queues.names[queue]
    groups = {message.group_id for message in messages}
    in_groups = f" in {_plural(len(groups), 'message group')}" if queues.fifo else ""
    if refused:
        total = _plural(len(messages), "message")
        _fail(f"sent {len(sent)} of {total} to {name}{in_groups}; {len(refused)} refused")
    console.print(
        f"Sent {_plural(len(sent), 'message')} to {name}{in_groups} on {queues.where}.",
        markup=False,
    )


# -- dlq -----------------------------------------------------------------------------------


def _peek(sqs: SQSClient, url: str, limit: int) -> list[MessageTypeDef]:
    """Up to ``limit`` messages of a queue, left in it.

    Reading a message means receiving it. Each message read is hidden until the end, so
    the next receive reaches further into the queue instead of returning the same first
    ten; then all are made visible again at once. If that last step never runs, SQS shows
    them again after :data:`PEEK_HOLD_SECONDS`. A FIFO queue hands out nothing more of a
    message group while some of it is hidden, so only each group's first messages (those
    of the receive that reached the group) can be listed: SQS offers no way to read
    further into a group without deleting. Each read adds one to the message's
    ``ApproximateReceiveCount``.
    """
    found: dict[str, MessageTypeDef] = {}
    handles: list[str] = []
    try:
        while len(found) < limit:
            response = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(BATCH_ENTRIES, limit - len(found)),
                VisibilityTimeout=PEEK_HOLD_SECONDS,
                WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            handles.extend(message["ReceiptHandle"] for message in received)
            new = [message for message in received if message["MessageId"] not in found]
            if not new:
                break
            found.update((message["MessageId"], message) for message in new)
    finally:
        _release(sqs, url, handles)
    return list(found.values())


def _attribute_text(value: MessageAttributeValueOutputTypeDef) -> str | None:
    if "StringValue" in value:
        return value["StringValue"]
    if "BinaryValue" in value:
        return f"<{len(value['BinaryValue'])} bytes>"
    return None


def _count(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _summary(message: MessageTypeDef) -> dict[str, object]:
    """A DLQ message as the JSON output shows it: the failure first, the body in full."""
    attributes = {
        name: _attribute_text(value) for name, value in message.get("MessageAttributes", {}).items()
    }
    system = message.get("Attributes", {})
    approximate = _count(system.get("ApproximateReceiveCount"))
    return {
        "messageId": message["MessageId"],
        # The source queue's deliveries when the handler dead-lettered it; else SQS's count,
        # which includes the reads of this command.
        "receiveCount": _count(attributes.get("source_receive_count")) or approximate,
        "approximateReceiveCount": approximate,
        "groupId": system.get("MessageGroupId"),
        "failureType": attributes.get("failure_type"),
        "failureReason": attributes.get("failure_reason"),
        "sourceMessageId": attributes.get("source_message_id"),
        "sentTimestamp": _count(system.get("SentTimestamp")),
        "messageAttributes": attributes,
        "body": message.get("Body", ""),
    }


def _short(text: object) -> Text:
    """Untrusted text for a table cell: one line, cut short, never read as rich markup."""
    value = "-" if text is None else " ".join(str(text).split())
    if len(value) > TABLE_TEXT_CHARS:
        value = value[: TABLE_TEXT_CHARS - 1] + "…"
    return Text(value)


def _shown(summary: dict[str, object], key: str) -> object:
    """A summary's field as the listing shows it. The message id is the one the function
    logged: a message the handler dead-lettered is a copy with an id of its own, and the
    source queue's id is in its ``source_message_id`` attribute (``--json`` has both)."""
    if key == "messageId":
        return summary.get("sourceMessageId") or summary["messageId"]
    return summary[key]


def _dlq_listing(
    title: str, summaries: Sequence[dict[str, object]], *, fifo: bool
) -> RenderableType:
    """The DLQ's messages at the terminal's width, the failure reason always whole.

    A table when the reason gets at least ``REASON_MIN_WIDTH`` columns: it wraps there,
    never cut. The message id keeps its full width (folded, never cut: it is what one
    searches the logs for), the short columns keep theirs, and the body, one line cut
    short, gets what is left (``--json`` has it whole), or is left out on a terminal too
    narrow for it. Narrower than that (80 columns), one block per message, each field on
    its own line.
    """
    fixed = [
        ("message id", "messageId"),
        *([("group", "groupId")] if fifo else []),
        ("receives", "receiveCount"),
        ("failure_type", "failureType"),
    ]
    flexible = [("failure_reason", "failureReason"), ("body", "body")]
    rows = [
        {key: _short(_shown(summary, key)) for _, key in (*fixed, *flexible)}
        for summary in summaries
    ]

    def longest(header: str, key: str) -> int:
        return max(len(header), *(len(row[key]) for row in rows))

    def room(columns: int) -> int:
        # Each column is padded by a space either side; a rule between two columns.
        return console.width - sum(widths.values()) - 3 * columns + 1

    every_field = [*fixed, *flexible]
    widths = {key: longest(header, key) for header, key in fixed}
    widths["failureType"] = min(widths["failureType"], FAILURE_TYPE_WIDTH)
    caption = None
    rest = room(len(fixed) + 2)
    if rest < REASON_MIN_WIDTH + BODY_MIN_WIDTH:
        flexible, caption = flexible[:1], "bodies: --json, or a wider terminal"
        rest = room(len(fixed) + 1)
    if rest < REASON_MIN_WIDTH:
        return _dlq_blocks(title, every_field, rows)
    if len(flexible) == 2:
        widths["body"] = max(
            BODY_MIN_WIDTH, min(longest("body", "body"), rest // 2, rest - REASON_MIN_WIDTH)
        )
        rest -= widths["body"]
    widths["failureReason"] = min(longest("failure_reason", "failureReason"), rest)
    table = Table(
        title=title,
        title_justify="left",
        caption=caption,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    for header, key in (*fixed, *flexible):
        table.add_column(
            header,
            width=widths[key],
            # Identifiers and reasons fold onto more lines; only the body is cut short.
            no_wrap=key == "body",
            overflow="ellipsis" if key == "body" else "fold",
            justify="right" if key == "receiveCount" else "left",
        )
    for row in rows:
        table.add_row(*(row[key] for _, key in (*fixed, *flexible)))
    return table


def _dlq_blocks(
    title: str, fields: Sequence[tuple[str, str]], rows: Sequence[dict[str, Text]]
) -> RenderableType:
    """One block per message, a field a line, long values folded at the terminal's edge."""
    blocks: list[RenderableType] = [Text(title)]
    for row in rows:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=False, overflow="fold")
        for header, key in fields:
            grid.add_row(Text(header, style="bold"), row[key])
        blocks.extend([Text(""), grid])
    return Group(*blocks)


def dlq(
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, max=1000, help="List at most this many messages."),
    ] = 50,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print a JSON array (every attribute, the full body) for scripts and jq.",
        ),
    ] = False,
    aws: AwsOption = False,
    suffix: SuffixOption = None,
    source_queue: SourceQueueOption = None,
    dead_letter_queue: DeadLetterQueueOption = None,
) -> None:
    """List the messages in the dead-letter queue and why each failed; they stay there.

    failure_type and failure_reason are what the handler recorded when it sent a poison
    message to the DLQ; a message the redrive policy moved after too many receives has
    none. Fix the cause, then `redrive` sends them back to the source queue.
    """
    queues = _queues(aws, suffix, source_queue, dead_letter_queue)
    with _reported(queues):
        url = queues.url("dlq")
        visible, in_flight = queues.depth("dlq")
        summaries = [_summary(message) for message in _peek(queues.sqs, url, limit)]
    if as_json:
        typer.echo(json.dumps(summaries, indent=2, ensure_ascii=False))
        return
    name = queues.names["dlq"]
    if not summaries:
        hidden = f" ({_plural(in_flight, 'message')} in flight, hidden)" if in_flight else ""
        console.print(f"The DLQ {name} is empty{hidden}.", markup=False)
        return
    title = f"{name}: {_plural(len(summaries), 'message')}"
    console.print(_dlq_listing(title, summaries, fifo=queues.fifo))
    if visible > len(summaries):
        more = FIFO_MORE if queues.fifo and len(summaries) < limit else "--limit shows more"
        console.print(f"Showing {len(summaries)} of about {visible}: {more}.", markup=False)


# -- redrive -------------------------------------------------------------------------------


def _is_unsupported(error: ClientError) -> bool:
    """Whether the endpoint lacks the action itself, rather than refusing this request."""
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return _error_code(error) in UNSUPPORTED_ACTION_CODES or status in (404, 501)


def _is_permission_error(error: ClientError) -> bool:
    """Whether the caller may not do this (a missing permission or invalid credentials)."""
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return _error_code(error) in PERMISSION_ERROR_CODES or status == 403


def _start_move_task(queues: Queues) -> None:
    """Ask SQS to move the DLQ's messages back itself, as the console's "Start DLQ redrive"."""
    queues.sqs.start_message_move_task(
        SourceArn=queues.arn("dlq"), DestinationArn=queues.arn("source")
    )


def _await_move_task(queues: Queues, progress: Progress, expected: int) -> int:
    """Poll ListMessageMoveTasks until the task ends; return how many it moved.

    SQS lists a queue's tasks newest first and allows one active task per queue, so the
    first one listed is the task just started.
    """
    dlq_arn = queues.arn("dlq")
    task_id = progress.add_task("StartMessageMoveTask", total=expected)
    deadline = time.monotonic() + MOVE_TASK_TIMEOUT_SECONDS
    while True:
        results = queues.sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1).get(
            "Results", []
        )
        task = results[0] if results else {}
        moved = task.get("ApproximateNumberOfMessagesMoved", 0)
        total = task.get("ApproximateNumberOfMessagesToMove", expected)
        progress.update(task_id, completed=moved, total=max(total, moved))
        status = task.get("Status", "RUNNING")
        if status == "COMPLETED":
            return moved
        if status not in ("RUNNING", "CANCELLING"):
            reason = task.get("FailureReason", "no reason given")
            _fail(f"the message move task ended {status}: {reason}; {moved} moved")
        if time.monotonic() > deadline:
            _fail(
                f"the message move task is still {status} after {MOVE_TASK_TIMEOUT_SECONDS} s "
                f"({moved} moved so far); it goes on: check it with ListMessageMoveTasks"
            )
        time.sleep(MOVE_TASK_POLL_SECONDS)


def _attribute(value: MessageAttributeValueOutputTypeDef) -> MessageAttributeValueTypeDef:
    copied: MessageAttributeValueTypeDef = {"DataType": value["DataType"]}
    if "StringValue" in value:
        copied["StringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        copied["BinaryValue"] = value["BinaryValue"]
    return copied


def _redriven(message: MessageTypeDef, *, fifo: bool) -> OutgoingMessage:
    """The message to send back: same body and attributes, minus the handler's failure_*.

    On a FIFO queue it keeps its group, so the group's order survives the round trip, and
    gets a new deduplication id: the original may still be inside the 5-minute window.
    """
    attributes = {
        name: _attribute(value)
        for name, value in message.get("MessageAttributes", {}).items()
        if not name.startswith(FAILURE_ATTRIBUTE_PREFIX)
    }
    group_id = message.get("Attributes", {}).get("MessageGroupId") if fifo else None
    return OutgoingMessage(
        body=message.get("Body", ""),
        group_id=group_id or (DEFAULT_GROUP_ID if fifo else None),
        deduplication_id=str(uuid.uuid4()) if fifo else None,
        attributes=attributes,
    )


def _resend(queues: Queues, progress: Progress, budget: int) -> tuple[int, int]:
    """Redrive without StartMessageMoveTask: receive from the DLQ, send, then delete.

    A message is deleted from the DLQ only once the source queue accepted it, so a crash
    in between leaves a copy in both queues, never in neither. At most ``budget`` messages
    (the DLQ's depth at the start) are moved: if a consumer is running and dead-letters
    them again, the command still ends. Messages the source refuses stay hidden until the
    end, so they are not tried twice in one run, then are made visible again. On a FIFO queue, a
    group's next messages are received only once its earlier ones are deleted, so each
    group arrives in its original order. Returns (moved, refused).
    """
    dlq_url, source_url = queues.url("dlq"), queues.url("source")
    task_id = progress.add_task("receive/send/delete", total=budget)
    moved, refused_count = 0, 0
    held: set[str] = set()  # receipt handles of messages received and not yet deleted
    try:
        while moved + refused_count < budget:
            received = queues.sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=min(BATCH_ENTRIES, budget - moved - refused_count),
                VisibilityTimeout=RESEND_HOLD_SECONDS,
                WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["MessageGroupId"],
            ).get("Messages", [])
            if not received:
                break
            held.update(message["ReceiptHandle"] for message in received)
            sent, refused = _send_batches(
                queues.sqs, source_url, [_redriven(m, fifo=queues.fifo) for m in received]
            )
            for index, reason in refused.items():
                _warn(f"{received[index]['MessageId']} stays in the DLQ: {reason}")
            handles = [received[index]["ReceiptHandle"] for index in sent]
            for chunk in _chunks(handles):
                deletes: list[DeleteMessageBatchRequestEntryTypeDef] = [
                    {"Id": str(position), "ReceiptHandle": handle}
                    for position, handle in enumerate(chunk)
                ]
                undeleted = queues.sqs.delete_message_batch(QueueUrl=dlq_url, Entries=deletes).get(
                    "Failed", []
                )
                if undeleted:
                    _warn(f"{len(undeleted)} messages were sent but stay in the DLQ too")
            held.difference_update(handles)
            moved += len(sent)
            refused_count += len(refused)
            progress.update(task_id, completed=moved)
    finally:
        # Refused messages, and any caught mid-batch by an error, are visible again at once.
        _release(queues.sqs, dlq_url, list(held))
    return moved, refused_count


def redrive(
    method: Annotated[
        RedriveMethod,
        typer.Option(
            "--method",
            help="auto: StartMessageMoveTask where the endpoint has it, else receive/send/"
            "delete; move-task or resend: only that way.",
        ),
    ] = "auto",
    aws: AwsOption = False,
    suffix: SuffixOption = None,
    source_queue: SourceQueueOption = None,
    dead_letter_queue: DeadLetterQueueOption = None,
) -> None:
    """Move every message in the DLQ back to the source queue, once the cause is fixed.

    Uses StartMessageMoveTask, as the SQS console's "Start DLQ redrive" does. Where it fails
    for any reason but a permission error (an endpoint without it, such as MiniStack, or
    one that answers it with an error), the same result comes by receive, send, delete: bodies and
    attributes are kept, except the handler's failure_* ones; FIFO messages keep their
    group. Prints the path used and how many messages moved.
    """
    queues = _queues(aws, suffix, source_queue, dead_letter_queue)
    dlq_name, source_name = queues.names["dlq"], queues.names["source"]
    with _reported(queues):
        queues.url("source")
        waiting, in_flight = queues.depth("dlq")
        if not waiting:
            hidden = f"; {_plural(in_flight, 'message')} in flight" if in_flight else ""
            console.print(f"The DLQ {dlq_name} is empty{hidden}: nothing to move.", markup=False)
            return
        use_move_task, why = method != "resend", ""
        if use_move_task:
            try:
                _start_move_task(queues)
            except ClientError as error:
                # Only a permission error stops here: any other failure (an endpoint without
                # the action, a 500 from one that has it half) leaves receive/send/delete,
                # which needs nothing of StartMessageMoveTask.
                if _is_permission_error(error):
                    raise
                reason = _error_text(error).rstrip(".")
                failed = (
                    "no StartMessageMoveTask on this endpoint"
                    if _is_unsupported(error)
                    else "StartMessageMoveTask failed"
                )
                if method == "move-task":
                    _fail(f"{failed} ({reason}); use --method resend")
                use_move_task = False
                why = f" ({failed}: {reason})"
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            if use_move_task:
                path, refused = "StartMessageMoveTask", 0
                moved = _await_move_task(queues, progress, waiting)
            else:
                path = "receive/send/delete"
                moved, refused = _resend(queues, progress, waiting)
    summary = f"Moved {_plural(moved, 'message')} from {dlq_name} to {source_name} by {path}{why}."
    if refused:
        _fail(f"{summary} {refused} could not be sent and stay in the DLQ.")
    console.print(summary, markup=False)


# -- purge ---------------------------------------------------------------------------------


def purge(
    queue: QueueOption = "source",
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Purge without asking first (scripts, CI)."),
    ] = False,
    aws: AwsOption = False,
    suffix: SuffixOption = None,
    source_queue: SourceQueueOption = None,
    dead_letter_queue: DeadLetterQueueOption = None,
) -> None:
    """Delete every message in a queue (PurgeQueue), e.g. to start a local run from scratch.

    Asks first, unless --yes. SQS may take up to 60 seconds to delete them all (an
    emulator is usually immediate), and allows one purge per queue every 60 seconds.
    """
    queues = _queues(aws, suffix, source_queue, dead_letter_queue)
    name = queues.names[queue]
    with _reported(queues):
        url = queues.url(queue)
        visible, in_flight = queues.depth(queue)
        if not yes:
            question = (
                f"Delete all {_plural(visible, 'message')} ({in_flight} in flight) "
                f"in {name} on {queues.where}?"
            )
            if not typer.confirm(question, default=False):
                _fail(f"purge cancelled: {name} is unchanged")
        try:
            queues.sqs.purge_queue(QueueUrl=url)
        except ClientError as error:
            if _error_code(error) != "PurgeQueueInProgress":
                raise
            _fail(f"{name} was purged less than 60 seconds ago; SQS allows one purge a minute")
    console.print(
        f"Purged {name} on {queues.where}: SQS may take up to 60 s to delete every message, "
        "and may delete messages sent meanwhile too.",
        markup=False,
    )


def _help(command: Callable[..., None]) -> str:
    """A command's docstring with its paragraphs unwrapped.

    Typer's rich help keeps the single line breaks of a docstring's later paragraphs, so
    text wrapped at 100 columns in the source breaks mid-sentence on a narrower terminal.
    """
    paragraphs = inspect.cleandoc(command.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


def register(app: typer.Typer) -> None:
    """Add send, dlq, redrive and purge to `sqsl`, under one help panel."""
    for command in (send, dlq, redrive, purge):
        app.command(rich_help_panel="Queues", help=_help(command))(command)
