"""Sample messages come from the project's own sample function: ``sqsl send --sample``,
``sample_orders`` and the test helpers of :mod:`sqs_lambda_tools.testing`."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from typer.testing import CliRunner

from sqs_lambda_tools import code_import, samples
from sqs_lambda_tools.cli import app
from sqs_lambda_tools.project import Project, SettingsError
from sqs_lambda_tools.samples import DUPLICATE_DELAY, sample_orders
from sqs_lambda_tools.testing import make_context, make_sqs_event, make_sqs_record, sample_bodies

pytestmark = pytest.mark.unit

SETTING = "[tool.sqsl.samples] function"


@pytest.fixture(autouse=True)
def fresh_imports() -> Iterator[None]:
    """The sample project's package and ``sys.path`` as they were, after each test."""
    path = list(sys.path)
    saved = code_import.purge("sample_orders")
    yield
    code_import.purge("sample_orders")
    sys.modules.update(saved)
    sys.path[:] = path


def without(key: str) -> Callable[[str], str]:
    """An edit of the sample project's settings: the ``[tool.sqsl.samples]`` line of ``key``
    removed."""
    return lambda text: re.sub(rf"(?m)^{key} = .*\n", "", text)


def test_a_sample_mixes_distinct_messages_duplicates_and_one_poison(
    sample_project: Project,
) -> None:
    messages = sample_orders(20, poison=True, run_id="r")

    bodies = [message.body for message in messages]
    assert len(bodies) == 20
    [poison] = [body for body in bodies if not body.endswith("}")]
    assert bodies.index(poison) == 9  # in the middle of the other 19: neighbours both sides
    with pytest.raises(ValueError, match="Expecting"):
        json.loads(poison)
    orders = [json.loads(body) for body in bodies if body != poison]
    # The sample function's bodies, numbers 1 to 15, and 4 (one in five) repeated.
    assert {order["orderId"] for order in orders} == {f"o-r-{n:03d}" for n in range(1, 16)}
    repeats = Counter(order["orderId"] for order in orders)
    assert sorted(repeats.values()) == [1] * 11 + [2] * 4
    # The poison is the next sample, cut short: it names whose it was.
    assert json.loads(poison + "}")["orderId"] == "o-r-016"
    # A standard queue takes no group or deduplication id.
    assert {(m.group_id, m.deduplication_id) for m in messages} == {(None, None)}


def test_a_duplicate_comes_some_messages_after_its_original(sample_project: Project) -> None:
    bodies = [m.body for m in sample_orders(6, duplicates=2, run_id="r")]

    first = bodies.index(bodies[0], 1)
    assert first == DUPLICATE_DELAY + 1  # after sample 1 + DUPLICATE_DELAY
    assert len(set(bodies)) == 4


def test_a_fifo_sample_groups_by_the_group_key_and_is_never_deduplicated(
    fifo_sample_project: Project,
) -> None:
    messages = sample_orders(10, poison=True, run_id="r")

    for message in messages:
        if message.body.endswith("}"):
            assert message.group_id == json.loads(message.body)["userId"]
        else:  # the poison: in its sample's group, though its body names none any more
            assert message.group_id == json.loads(message.body + "}")["userId"]
    assert len({message.group_id for message in messages}) == 3
    assert len({message.deduplication_id for message in messages}) == 10


def test_without_a_group_key_a_fifo_sample_is_one_group(
    make_sample_project: Callable[..., Project],
) -> None:
    make_sample_project(fifo=True, edit=without("group_key"))

    assert {message.group_id for message in sample_orders(5, run_id="r")} == {"default"}


@pytest.mark.parametrize(
    ("count", "duplicates", "poison", "error"),
    [
        (0, None, False, "count must be at least 1"),
        (3, -1, False, "duplicates must be 0 or more"),
        (2, 2, False, "cannot hold 2 duplicates"),
        (2, 1, True, "cannot hold 1 duplicates and a poison message"),
    ],
)
def test_an_impossible_sample_is_refused(
    sample_project: Project, count: int, duplicates: int | None, poison: bool, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        sample_orders(count, duplicates=duplicates, poison=poison)


def test_without_a_sample_function_the_error_names_the_key_to_set(
    make_sample_project: Callable[..., Project],
) -> None:
    project = make_sample_project(edit=without("function"))

    with pytest.raises(SettingsError) as refused:
        sample_orders(3)

    assert f"{project.root / 'pyproject.toml'}: {SETTING} is not set" in str(refused.value)


def test_send_sample_without_a_sample_function_exits_2_naming_the_key(
    make_sample_project: Callable[..., Project], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_sample_project(edit=without("function"))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)

    result = CliRunner().invoke(app, ["send", "--sample", "5", "--poison"])

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert SETTING in result.stderr
    assert str(project.root / "pyproject.toml") in result.stderr
    assert "Sent" not in result.output


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("def sample_order(number, run_id):\n    return 7\n", "returned int for sample 1"),
        ("sample_order = 'not a function'\n", "has no function 'sample_order'"),
        ("import not_a_module\n", "does not import from"),
    ],
    ids=["not-a-body", "not-a-function", "no-import"],
)
def test_a_sample_function_that_gives_no_body_is_refused(
    make_sample_project: Callable[..., Project], source: str, error: str
) -> None:
    project = make_sample_project()
    (project.code_dir / "sample_orders" / "samples.py").write_text(source, encoding="utf-8")

    with pytest.raises(SettingsError, match=error) as refused:
        sample_orders(3)

    assert SETTING in str(refused.value)


def test_samples_come_from_this_projects_copy_not_another_one_imported_before(
    make_sample_project: Callable[..., Project],
) -> None:
    # GIVEN a project whose samples were imported, and another copy with its own samples
    make_sample_project(name="first")
    assert samples.sample_function()(1, "r") == {"orderId": "o-r-001", "userId": "u-1"}
    other = make_sample_project(name="second")
    (other.code_dir / "sample_orders" / "samples.py").write_text(
        "def sample_order(number, run_id):\n    return {'orderId': f'other-{number}'}\n",
        encoding="utf-8",
    )

    # WHEN the second one's samples are asked for, THEN they are its own
    assert samples.sample_function(other)(1, "r") == {"orderId": "other-1"}


# -- sqs_lambda_tools.testing ---------------------------------------------------------------


def test_sample_bodies_are_the_sample_functions_as_json(sample_project: Project) -> None:
    assert sample_bodies(2, run_id="x") == [
        '{"orderId": "o-x-001", "userId": "u-1"}',
        '{"orderId": "o-x-002", "userId": "u-2"}',
    ]
    assert sample_bodies(2, run_id="x") == sample_bodies(2, run_id="x")


def test_an_event_is_shaped_as_lambda_delivers_it_from_the_projects_queue(
    sample_project: Project,
) -> None:
    event = make_sqs_event(["a", "b"])

    first, second = event["Records"]
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"] == "arn:aws:sqs:us-east-1:000000000000:sample-orders"
    assert first["awsRegion"] == "us-east-1"
    assert first["md5OfBody"] == hashlib.md5(b"a", usedforsecurity=False).hexdigest()
    assert first["messageId"] != second["messageId"]
    assert first["attributes"]["ApproximateReceiveCount"] == "1"
    assert "MessageGroupId" not in first["attributes"]


def test_a_fifo_projects_event_groups_records_by_the_group_key(
    fifo_sample_project: Project,
) -> None:
    event = make_sqs_event([*sample_bodies(2), "not json"])

    groups = [record["attributes"]["MessageGroupId"] for record in event["Records"]]
    assert groups == ["u-1", "u-2", "default"]
    sequence = [int(record["attributes"]["SequenceNumber"]) for record in event["Records"]]
    assert sequence == sorted(sequence)
    assert event["Records"][0]["eventSourceARN"].endswith(":sample-orders.fifo")


def test_an_event_takes_given_groups_queue_and_kind(sample_project: Project) -> None:
    arn = "arn:aws:sqs:eu-west-1:123456789012:other.fifo"

    event = make_sqs_event(["a", "b"], fifo=True, group_ids=["g-1", "g-2"], queue_arn=arn)

    assert [r["attributes"]["MessageGroupId"] for r in event["Records"]] == ["g-1", "g-2"]
    assert {r["awsRegion"] for r in event["Records"]} == {"eu-west-1"}
    with pytest.raises(ValueError, match="one entry per body"):
        make_sqs_event(["a", "b"], fifo=True, group_ids=["g-1"])


def test_a_record_keeps_its_receive_count_and_id(sample_project: Project) -> None:
    record = make_sqs_record("a", message_id="m-1", receive_count=3, group_id="g")

    assert record["messageId"] == "m-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "3"
    assert record["attributes"]["MessageDeduplicationId"] == "m-1"


def test_a_context_is_the_projects_function_with_its_deadline(sample_project: Project) -> None:
    context = make_context()

    assert context.function_name == "sample-orders"
    assert context.memory_limit_in_mb == 256
    assert context.invoked_function_arn == (
        "arn:aws:lambda:us-east-1:000000000000:function:sample-orders"
    )
    assert context.log_group_name == "/aws/lambda/sample-orders"
    assert 29_000 < context.get_remaining_time_in_millis() <= 30_000
    assert make_context(timeout_seconds=0).timed_out()
