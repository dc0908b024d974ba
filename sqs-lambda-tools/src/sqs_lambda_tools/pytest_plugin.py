"""Fixtures for a service's integration tests: an emulator, the service's queues and tables
provisioned for each test, and its handler in their environment.

The package installs this plugin (a ``pytest11`` entry point): a service's tests name the
fixtures and nothing else::

    def test_a_poison_message_reaches_the_dlq(sqsl_resources, sqsl_handler):
        [message_id] = sqsl_resources.send(["not json"])
        ...

- ``sqsl_project`` (session): the project's settings (:class:`.project.Project`).
- ``sqsl_emulator`` (session): the :class:`.endpoint.Endpoint` the tests talk to.
- ``sqsl_resources``: this test's own copy of the queues and tables
  (:class:`ProvisionedResources`), with helpers to send and to read them.
- ``sqsl_handler_env``: the function's environment for those resources, set.
- ``sqsl_handler``: the function's handler, imported afresh in that environment.

For type hints: ``from sqs_lambda_tools.pytest_plugin import ProvisionedResources``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from . import project as projects
from .project import Project, QueueUrls, Resources

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef, SendMessageBatchRequestEntryTypeDef

    from .endpoint import Endpoint

ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"
#: The FIFO message group of a body without the project's group key.
DEFAULT_GROUP_ID = "default"
#: How long ``dlq_messages`` keeps what it read hidden while it reads on (then released).
READ_VISIBILITY_SECONDS = 30
# SendMessageBatch's limits: 10 entries, 256 KiB in all.
BATCH_ENTRIES = 10
BATCH_BYTES = 262_144

Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class QueueDepth:
    """A queue's approximate counts: visible, and received but not yet deleted."""

    visible: int
    in_flight: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight


@dataclass(frozen=True)
class Depths:
    source: QueueDepth
    dead_letter: QueueDepth


@dataclass(frozen=True)
class ProvisionedResources:
    """One test's queues and tables, with clients for the endpoint they live on.

    The names are the project's with a suffix of this test's (``resources``), so tests
    never share messages or items.
    """

    project: Project
    endpoint: Endpoint
    resources: Resources
    # The suffix of every name (what ``sqsl run --suffix`` takes): "-t1a2b3c4d".
    suffix: str
    source_queue_url: str
    source_queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str
    sqs: SQSClient
    dynamodb: DynamoDBClient
    # What provisioning said while creating them ("created queue ...").
    provision_log: list[str] = field(default_factory=list)

    @classmethod
    def provision(
        cls, endpoint: Endpoint, project: Project, *, suffix: str | None = None
    ) -> ProvisionedResources:
        """A copy of ``project``'s queues and tables on ``endpoint``, named with ``suffix``
        (default: a fresh one); :meth:`delete` removes them."""
        from .provisioning import provision_resources

        suffix = suffix if suffix is not None else f"-t{uuid.uuid4().hex[:8]}"
        resources = project.resources().with_suffix(suffix)
        lines: list[str] = []
        provisioned = provision_resources(endpoint, resources, log=lines.append, project=project)
        return cls(
            project=project,
            endpoint=endpoint,
            resources=resources,
            suffix=suffix,
            source_queue_url=provisioned["source_queue_url"],
            source_queue_arn=provisioned["source_queue_arn"],
            dead_letter_queue_url=provisioned["dead_letter_queue_url"],
            dead_letter_queue_arn=provisioned["dead_letter_queue_arn"],
            sqs=endpoint.sqs(),
            dynamodb=endpoint.dynamodb(),
            provision_log=lines,
        )

    def delete(self) -> None:
        """Remove the queues and tables (an emulator given through AWS_ENDPOINT_URL may
        outlive many sessions); what is already gone is no error."""
        from botocore.exceptions import BotoCoreError, ClientError

        for url in (self.source_queue_url, self.dead_letter_queue_url):
            with suppress(BotoCoreError, ClientError):
                self.sqs.delete_queue(QueueUrl=url)
        for table in self.resources.tables.values():
            with suppress(BotoCoreError, ClientError):
                self.dynamodb.delete_table(TableName=table)

    def handler_environment(self) -> dict[str, str]:
        """The function's environment (``[tool.sqsl.function.environment]``) for these
        resources, placeholders resolved."""
        urls = QueueUrls(
            source_url=self.source_queue_url,
            source_arn=self.source_queue_arn,
            dead_letter_url=self.dead_letter_queue_url,
            dead_letter_arn=self.dead_letter_queue_arn,
        )
        return self.project.environment(self.resources, urls)

    def send(self, messages: Iterable[str | Mapping[str, Any]]) -> list[str]:
        """Send to the source queue; the message ids, in order.

        Each item is a body (a string as it is, a dict as JSON) or, as a dict with a
        ``MessageBody``, a ``SendMessageBatch`` entry without ``Id`` (attributes, delay).
        On a FIFO queue each message's group is its entry's ``MessageGroupId``, else the
        body's field named by ``[tool.sqsl.samples] group_key``, else "default"; and each
        gets a deduplication id of its own, so a body sent twice arrives twice, as a
        redelivery would.
        """
        entries = [self._entry(item) for item in messages]
        ids: list[str] = []
        for batch in _batches(entries):
            numbered = [{**entry, "Id": str(number)} for number, entry in enumerate(batch, start=1)]
            response = self.sqs.send_message_batch(
                QueueUrl=self.source_queue_url,
                # Checked by SQS, which names what is wrong with an entry.
                Entries=cast("list[SendMessageBatchRequestEntryTypeDef]", numbered),
            )
            failed = response.get("Failed", [])
            if failed:
                reasons = "; ".join(f"{item['Code']}: {item.get('Message', '')}" for item in failed)
                raise RuntimeError(f"{len(failed)} of {len(batch)} messages not sent: {reasons}")
            sent = {item["Id"]: item["MessageId"] for item in response.get("Successful", [])}
            ids.extend(sent[str(number)] for number in range(1, len(batch) + 1))
        return ids

    def _entry(self, item: str | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(item, str):
            entry: dict[str, Any] = {"MessageBody": item}
        elif "MessageBody" in item:
            entry = dict(item)
        else:
            entry = {"MessageBody": json.dumps(item)}
        if self.resources.fifo:
            entry.setdefault("MessageGroupId", self._group(entry["MessageBody"]))
            entry.setdefault("MessageDeduplicationId", uuid.uuid4().hex)
        return entry

    def _group(self, body: str) -> str:
        key = self.project.samples.group_key
        try:
            payload = json.loads(body)
        except ValueError:
            return DEFAULT_GROUP_ID
        value = payload.get(key) if key and isinstance(payload, dict) else None
        return str(value) if value not in (None, "") else DEFAULT_GROUP_ID

    def dlq_messages(self, wait: float = 5.0, *, count: int | None = None) -> list[MessageTypeDef]:
        """The messages in the DLQ, with their attributes and message attributes (such as
        a reason the handler gave).

        Waits up to ``wait`` seconds for the first one (with ``count``: for that many),
        then reads what is there. They stay in the DLQ, visible again once read. On a
        FIFO DLQ a read hides the rest of a message group: at most 10 of each group.
        """
        deadline = time.monotonic() + wait
        found: dict[str, MessageTypeDef] = {}
        while True:
            waiting = time.monotonic() < deadline and (
                not found or (count is not None and len(found) < count)
            )
            received = self.sqs.receive_message(
                QueueUrl=self.dead_letter_queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1 if waiting else 0,
                VisibilityTimeout=READ_VISIBILITY_SECONDS,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            for message in received:
                found.setdefault(message["MessageId"], message)
            if count is not None and len(found) >= count:
                break
            if not received and not waiting:
                break
        self._release(list(found.values()))
        return list(found.values())

    def _release(self, messages: list[MessageTypeDef]) -> None:
        for start in range(0, len(messages), BATCH_ENTRIES):
            chunk = messages[start : start + BATCH_ENTRIES]
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.dead_letter_queue_url,
                Entries=[
                    {
                        "Id": str(number),
                        "ReceiptHandle": message["ReceiptHandle"],
                        "VisibilityTimeout": 0,
                    }
                    for number, message in enumerate(chunk)
                ],
            )

    def table_items(self, table_key: str) -> list[dict[str, Any]]:
        """Every item of table ``table_key`` (its key in ``[tool.sqsl.tables]``), as plain
        Python values (numbers as ``Decimal``)."""
        from boto3.dynamodb.types import TypeDeserializer

        try:
            name = self.resources.tables[table_key]
        except KeyError:
            known = ", ".join(map(repr, self.resources.tables)) or "none"
            raise KeyError(
                f"no table {table_key!r} in {self.project.source}; its tables: {known}"
            ) from None
        deserializer = TypeDeserializer()
        items: list[dict[str, Any]] = []
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=name):
            for item in page.get("Items", []):
                items.append({key: deserializer.deserialize(value) for key, value in item.items()})
        return items

    def depths(self) -> Depths:
        """How many messages each queue holds (approximate, as SQS counts them)."""
        return Depths(
            source=self._depth(self.source_queue_url),
            dead_letter=self._depth(self.dead_letter_queue_url),
        )

    def _depth(self, url: str) -> QueueDepth:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return QueueDepth(
            visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
            in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )


def _batches(entries: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        entry_size = len(str(entry["MessageBody"]).encode())
        if batch and (len(batch) == BATCH_ENTRIES or size + entry_size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry_size
    if batch:
        yield batch


# --- Fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqsl_project(pytestconfig: pytest.Config) -> Iterator[Project]:
    """The settings of the project under test: the folder ``$SQSL_PROJECT`` names, else
    pytest's rootdir (the folder of the service's ``pyproject.toml``).

    For the session it is also the tools' current project, so the ``sqsl`` commands a
    test runs in-process work on it.
    """
    configured = os.environ.get(projects.PROJECT_VARIABLE, "").strip()
    root = Path(configured).expanduser() if configured else pytestconfig.rootpath
    try:
        project = projects.load(root)
    except projects.SettingsError as error:
        pytest.fail(f"sqsl_project: {error}", pytrace=False)
    projects.use(project)
    yield project
    projects.use(None)


@pytest.fixture(scope="session")
def sqsl_emulator(
    sqsl_project: Project, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Endpoint]:
    """The emulator of this session: ``AWS_ENDPOINT_URL`` when it is set (CI's service
    container, an emulator of yours), else an embedded MiniStack started for the session.

    The embedded one runs on a free port with a state folder of its own, so it never
    touches the emulator a developer's ``sqsl up`` started; it stops when the session
    ends. The first session on a machine installs MiniStack (into the user's cache).
    """
    from . import emulator
    from .endpoint import Endpoint

    configured = os.environ.get(ENDPOINT_VARIABLE, "").strip()
    if configured:
        yield Endpoint(url=configured, source=ENDPOINT_VARIABLE, region=sqsl_project.region)
        return
    layout = emulator.Layout.under(tmp_path_factory.mktemp("sqsl-emulator"))
    try:
        # A port the OS picks: 4566 is left to the developer's `sqsl up`.
        record = emulator.start_embedded(
            layout, port=emulator.free_port(), log=print, region=sqsl_project.region
        )
    except emulator.EmulatorError as error:
        pytest.fail(f"sqsl_emulator: {error}", pytrace=False)
    assert record.pid is not None
    try:
        yield Endpoint(url=record.endpoint, source=record.mode, region=sqsl_project.region)
    finally:
        emulator.stop_embedded(record.pid)


@pytest.fixture
def sqsl_resources(
    sqsl_project: Project, sqsl_emulator: Endpoint
) -> Iterator[ProvisionedResources]:
    """This test's own copy of the project's queues and tables, on the session's emulator:
    the source queue and its DLQ (with the redrive policy and the queue settings), and
    every table of ``[tool.sqsl.tables]``, each name with a suffix unique to the test.

    Gives their URLs and ARNs, boto3 clients, and helpers: ``send(bodies)``,
    ``dlq_messages(wait=...)``, ``table_items(table_key)``, ``depths()``. Removed after
    the test.
    """
    resources = ProvisionedResources.provision(sqsl_emulator, sqsl_project)
    yield resources
    resources.delete()


@pytest.fixture
def sqsl_handler_env(
    sqsl_resources: ProvisionedResources,
    sqsl_emulator: Endpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """The environment the function gets, for this test's resources and pointed at the
    emulator, set in ``os.environ`` for the test (and undone after it): the values of
    ``[tool.sqsl.function.environment]`` with their placeholders resolved, the region, and
    the emulator's endpoint and credentials. The variables, as set."""
    environment = {
        **sqsl_resources.handler_environment(),
        **sqsl_emulator.environment(),
        "AWS_REGION": sqsl_emulator.region_name,  # as Lambda sets it, beside the default
    }
    # A per-service endpoint would win over AWS_ENDPOINT_URL in boto3.
    for name in list(os.environ):
        if name.startswith(f"{ENDPOINT_VARIABLE}_"):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


@pytest.fixture
def sqsl_handler(
    sqsl_project: Project,
    sqsl_handler_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Handler]:
    """The function's handler (``[tool.sqsl.function] handler``), imported in the
    environment of ``sqsl_handler_env``.

    Its top-level package is imported afresh, as in a new execution environment: module
    state (settings read once, clients, caches) starts from nothing and sees this test's
    resources. It is imported from the project's code folder (first on ``sys.path`` for
    the test) when the folder holds it or it is not importable otherwise. After the test
    the modules imported before it are back.
    """
    from .code_import import holds_package, purge

    function = sqsl_project.function
    saved = purge(function.package)
    code_dir = sqsl_project.code_dir
    if (
        holds_package(code_dir, function.package)
        or importlib.util.find_spec(function.package) is None
    ):
        monkeypatch.syspath_prepend(str(code_dir))
    try:
        yield _import_handler(sqsl_project)
    finally:
        purge(function.package)
        sys.modules.update(saved)


def _import_handler(project: Project) -> Handler:
    function = project.function
    where = f"the handler {function.handler!r} (from {project.source} in {project.root})"
    try:
        module = importlib.import_module(function.handler_module)
    except ModuleNotFoundError as error:
        parts = function.handler_module.split(".")
        missing = {".".join(parts[:end]) for end in range(1, len(parts) + 1)}
        if error.name not in missing:
            raise  # the handler's own import of something else: its traceback says more
        pytest.fail(
            f"sqsl_handler: {where}: no module {error.name!r} in {project.code_dir} or on sys.path",
            pytrace=False,
        )
    handler = getattr(module, function.handler_function, None)
    if not callable(handler):
        pytest.fail(
            f"sqsl_handler: {where}: {function.handler_module} has no function "
            f"{function.handler_function!r}",
            pytrace=False,
        )
    return handler  # type: ignore[no-any-return]
