"""The partial batch response rules the local event source mapping applies, as Lambda does.

``failed_message_ids`` decides what a handler's response means: which records stay in
the queue, or that the whole batch failed and nothing is deleted.
"""

from __future__ import annotations

import pytest

from sqs_lambda_tools.esm import (
    InvalidResponseError,
    failed_message_ids,
)

pytestmark = pytest.mark.unit

BATCH = ("m-1", "m-2", "m-3")


class Opaque:
    """An object JSON cannot encode, as a handler might return by mistake."""


@pytest.mark.parametrize(
    "response",
    [None, "", [], {}, {"batchItemFailures": []}, {"batchItemFailures": None}],
    ids=["none", "empty-string", "empty-list", "empty-object", "no-failures", "null-failures"],
)
def test_an_empty_response_means_every_record_succeeded(response: object) -> None:
    assert failed_message_ids(response, BATCH) == set()


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        ({"batchItemFailures": [{"itemIdentifier": "m-2"}]}, {"m-2"}),
        (
            {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-3"}]},
            {"m-1", "m-3"},
        ),
        ({"batchItemFailures": [{"itemIdentifier": i} for i in BATCH]}, set(BATCH)),
        (
            {"batchItemFailures": [{"itemIdentifier": "m-2"}, {"itemIdentifier": "m-2"}]},
            {"m-2"},
        ),
        ({"batchItemFailures": [{"itemIdentifier": "m-1", "extra": 1}], "other": 2}, {"m-1"}),
    ],
    ids=["one", "two", "all", "repeated", "extra-keys"],
)
def test_the_listed_message_ids_are_the_failed_ones(response: object, failed: set[str]) -> None:
    assert failed_message_ids(response, BATCH) == failed


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": "m-9"}]},
        {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-9"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifier": 1}]},
        {"batchItemFailures": [{"messageId": "m-1"}]},
        {"batchItemFailures": [{}]},
        {"batchItemFailures": ["m-1"]},
        {"batchItemFailures": [None]},
        {"batchItemFailures": [["m-1"]]},
        {"batchItemFailures": "m-1"},
        {"batchItemFailures": {"itemIdentifier": "m-1"}},
        {"batchItemFailures": 0},
        "not an object",
        " ",
        ["m-1"],
        [{}],
        0,
        True,
        False,
        {"batchItemFailures": [{"itemIdentifier": "m-1"}], "seen": {"m-1"}},
        {"batchItemFailures": [{"itemIdentifier": {"m-1"}}]},
        {"batchItemFailures": [Opaque()]},
        Opaque(),
    ],
    ids=[
        "unknown-id",
        "unknown-id-after-a-known-one",
        "empty-id",
        "null-id",
        "non-string-id",
        "no-item-identifier",
        "empty-item",
        "item-not-an-object",
        "item-null",
        "item-a-list",
        "failures-a-string",
        "failures-an-object",
        "failures-a-number",
        "response-a-string",
        "response-a-blank-string",
        "response-a-list",
        "response-a-list-of-an-empty-object",
        "response-a-number",
        "response-a-bool",
        "response-false",
        "not-json-a-set",
        "not-json-a-set-as-id",
        "not-json-an-object-item",
        "not-json-an-object",
    ],
)
def test_a_malformed_response_fails_the_whole_batch(response: object) -> None:
    with pytest.raises(InvalidResponseError):
        failed_message_ids(response, BATCH)


def test_a_response_naming_a_message_of_no_batch_fails_it() -> None:
    # GIVEN an empty batch, WHEN the response still names a messageId, THEN it is unknown.
    with pytest.raises(InvalidResponseError, match="not in the batch"):
        failed_message_ids({"batchItemFailures": [{"itemIdentifier": "m-1"}]}, ())
