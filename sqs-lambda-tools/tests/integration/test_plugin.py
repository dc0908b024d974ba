"""The pytest plugin in a project it has never seen: a copy of the sample project with a
test file of a service's kind, run by pytest in a process of its own (``pytester``).

The inner sessions use this session's emulator through AWS_ENDPOINT_URL, except the one
that shows the embedded MiniStack starting and stopping by itself. The helpers of
``sqsl_resources`` are tested in this session too, on the FIFO kind as well.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sqs_lambda_tools import emulator as emulators
from sqs_lambda_tools import project
from sqs_lambda_tools.endpoint import Endpoint
from sqs_lambda_tools.pytest_plugin import ProvisionedResources, QueueDepth

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

pytestmark = pytest.mark.integration

SAMPLE_PROJECT = Path(__file__).parents[1] / "sample_project"

# What a service's integration tests look like with the plugin.
SERVICE_TESTS = """
import json

from sqs_lambda_tools.pytest_plugin import ProvisionedResources


def event(message_ids, bodies):
    records = [
        {"messageId": message_id, "body": body, "attributes": {}}
        for message_id, body in zip(message_ids, bodies)
    ]
    return {"Records": records}


def test_an_order_is_recorded_and_a_poison_message_reaches_the_dlq(
    sqsl_resources: ProvisionedResources, sqsl_handler
):
    bodies = [json.dumps({"orderId": "o-1", "userId": "u-1"}), "not json"]
    ids = sqsl_resources.send(bodies)
    assert len(ids) == 2
    assert sqsl_resources.depths().source.total == 2

    response = sqsl_handler(event(ids, bodies), None)

    assert response == {"batchItemFailures": []}
    [item] = sqsl_resources.table_items("orders")
    assert item["orderId"] == "o-1"
    [dead] = sqsl_resources.dlq_messages(wait=5)
    assert dead["Body"] == "not json"
    reason = dead["MessageAttributes"]["failure_reason"]["StringValue"]
    assert reason.startswith("not JSON")
    # read, and still there for the next look
    assert len(sqsl_resources.dlq_messages(wait=0)) == 1
    assert sqsl_resources.depths().dead_letter.total == 1


def test_each_test_has_its_own_resources_and_a_fresh_handler_module(
    sqsl_resources: ProvisionedResources, sqsl_handler, sqsl_handler_env
):
    import sys

    module = sys.modules["sample_orders.handler"]
    assert module.INVOCATIONS == 0
    assert sqsl_resources.table_items("orders") == []
    assert sqsl_handler_env["ORDERS_TABLE_NAME"] == sqsl_resources.resources.tables["orders"]
    assert sqsl_resources.resources.source_queue.endswith(sqsl_resources.suffix)

    sqsl_handler({"Records": []}, None)

    assert module.INVOCATIONS == 1


def test_dicts_are_sent_as_json_and_entries_as_they_are(sqsl_resources):
    ids = sqsl_resources.send(
        [
            {"orderId": "o-2"},
            {"MessageBody": "raw", "MessageAttributes": {
                "kind": {"DataType": "String", "StringValue": "test"}}},
        ]
    )
    received = sqsl_resources.sqs.receive_message(
        QueueUrl=sqsl_resources.source_queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=1,
        MessageAttributeNames=["All"],
    )["Messages"]
    by_id = {message["MessageId"]: message for message in received}
    assert json.loads(by_id[ids[0]]["Body"]) == {"orderId": "o-2"}
    assert by_id[ids[1]]["Body"] == "raw"
    assert by_id[ids[1]]["MessageAttributes"]["kind"]["StringValue"] == "test"
"""


@pytest.fixture
def service(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """GIVEN a project never seen before (a copy of the sample project) with a service's
    integration tests, and no project named by the environment."""
    shutil.copytree(SAMPLE_PROJECT, pytester.path, dirs_exist_ok=True)
    # pytester gives the inner session a HOME of its own: keep the user's cache, where
    # MiniStack is installed once per machine.
    monkeypatch.setenv("XDG_CACHE_HOME", str(emulators.CACHE_DIR.parent))
    monkeypatch.delenv(project.PROJECT_VARIABLE, raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return pytester


@pytest.fixture
def at_the_emulator(sqsl_emulator: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN AWS_ENDPOINT_URL is this session's emulator."""
    assert sqsl_emulator.url is not None
    monkeypatch.setenv("AWS_ENDPOINT_URL", sqsl_emulator.url)


def test_the_fixtures_serve_a_services_tests(
    service: pytest.Pytester, at_the_emulator: None
) -> None:
    service.makepyfile(test_service=SERVICE_TESTS)

    result = service.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=3)


def test_without_aws_endpoint_url_the_session_starts_and_stops_its_own_emulator(
    service: pytest.Pytester,
) -> None:
    service.makepyfile(
        test_embedded="""
        import os

        from sqs_lambda_tools import emulator


        def test_the_emulator_is_embedded_and_answers(sqsl_emulator):
            assert "AWS_ENDPOINT_URL" not in os.environ
            assert sqsl_emulator.source == "embedded"
            assert emulator.is_healthy(sqsl_emulator.url)
            print("EMULATOR", sqsl_emulator.url)
        """
    )

    result = service.runpytest_subprocess("-p", "no:cacheprovider", "-s")

    result.assert_outcomes(passed=1)
    [line] = [line for line in result.outlines if line.startswith("EMULATOR ")]
    url = line.split()[-1]
    assert not emulators.is_healthy(url)  # stopped with the session


def test_the_project_is_the_one_sqsl_project_names(
    service: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the tests in a folder of their own, the project named by SQSL_PROJECT
    service.makepyfile(
        test_elsewhere="""
        def test_the_project(sqsl_project):
            assert sqsl_project.function.name == "sample-orders"
        """
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(service.path / "test_elsewhere.py", elsewhere / "test_elsewhere.py")
    monkeypatch.setenv(project.PROJECT_VARIABLE, str(service.path))

    result = service.runpytest_subprocess(str(elsewhere), "-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)


def test_bad_settings_are_named_when_the_fixtures_start(service: pytest.Pytester) -> None:
    pyproject = service.path / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace("batch_size = 10", "batch_size = 0"), encoding="utf-8")
    service.makepyfile(test_service="def test_it(sqsl_resources):\n    pass\n")

    result = service.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*sqsl_project: {pyproject}: [[]tool.sqsl.mapping[]] batch_size: expected a whole "
            "number 1-10000, got 0*"
        ]
    )


def test_a_handler_that_does_not_import_is_named(
    service: pytest.Pytester, at_the_emulator: None
) -> None:
    pyproject = service.path / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(
        text.replace("sample_orders.handler.lambda_handler", "sample_orders.handlers.main"),
        encoding="utf-8",
    )
    service.makepyfile(test_service="def test_it(sqsl_handler):\n    pass\n")

    result = service.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*sqsl_handler: the handler 'sample_orders.handlers.main' (from pyproject.toml "
            f"[[]tool.sqsl[]] in {service.path}): no module 'sample_orders.handlers' in "
            f"{service.path / 'src'} or on sys.path*"
        ]
    )


# --- the helpers of ProvisionedResources, in this session ---------------------------------


def receive_all(resources: ProvisionedResources, expected: int) -> list[MessageTypeDef]:
    """The source queue's messages, deleted as read (a FIFO group's next ones come only
    then)."""
    messages: list[MessageTypeDef] = []
    for _ in range(10):
        received = resources.sqs.receive_message(
            QueueUrl=resources.source_queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
        ).get("Messages", [])
        for message in received:
            messages.append(message)
            resources.sqs.delete_message(
                QueueUrl=resources.source_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        if len(messages) >= expected:
            break
    return messages


@pytest.mark.parametrize("sqsl_project", ["fifo"], indirect=True)
def test_on_a_fifo_queue_send_groups_by_the_group_key_and_delivers_a_duplicate(
    sqsl_resources: ProvisionedResources,
) -> None:
    order = json.dumps({"orderId": "o-1", "userId": "u-2"})
    bodies: list[str | dict[str, str]] = [
        order,
        order,
        "not json",
        {"MessageBody": "mine", "MessageGroupId": "g-9"},
    ]

    ids = sqsl_resources.send(bodies)

    assert len(set(ids)) == 4  # the queue deduplicates by content; send's ids win
    received = {message["MessageId"]: message for message in receive_all(sqsl_resources, 4)}
    assert set(received) == set(ids)
    groups = [received[message_id]["Attributes"]["MessageGroupId"] for message_id in ids]
    assert groups == ["u-2", "u-2", "default", "g-9"]


def test_dlq_messages_of_an_empty_dlq_is_empty_at_once(
    sqsl_resources: ProvisionedResources,
) -> None:
    assert sqsl_resources.dlq_messages(wait=0) == []
    assert sqsl_resources.depths().dead_letter == QueueDepth(visible=0, in_flight=0)


def test_dlq_messages_waits_for_as_many_as_asked(sqsl_resources: ProvisionedResources) -> None:
    for body in ("a", "b", "c"):
        sqsl_resources.sqs.send_message(
            QueueUrl=sqsl_resources.dead_letter_queue_url, MessageBody=body
        )

    messages = sqsl_resources.dlq_messages(wait=5, count=3)

    assert sorted(message["Body"] for message in messages) == ["a", "b", "c"]
    assert sqsl_resources.depths().dead_letter.total == 3  # still there


def test_table_items_names_the_tables_there_are(sqsl_resources: ProvisionedResources) -> None:
    with pytest.raises(KeyError) as raised:
        sqsl_resources.table_items("order")

    assert raised.value.args == (
        "no table 'order' in pyproject.toml [tool.sqsl]; its tables: 'orders'",
    )
