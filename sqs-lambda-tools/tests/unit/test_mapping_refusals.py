"""The mapping parameters CreateEventSourceMapping refuses, refused locally in AWS's words
(``esm.refusals``): ``run`` checks them before it polls."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sqs_lambda_tools.esm import MappingSettings, Refusal, refusals

pytestmark = pytest.mark.unit

VALID = MappingSettings(
    batch_size=10,
    batching_window_seconds=0,
    max_concurrency=5,
    function_timeout_seconds=30,
    fifo=False,
)


def refused(
    changes: dict[str, Any], *, visibility: int = 180, in_process: bool = False
) -> list[Refusal]:
    settings = dataclasses.replace(VALID, **changes)
    return refusals(settings, visibility_timeout_seconds=visibility, in_process=in_process)


def constraint(field: str, value: object, direction: str, bound: int) -> str:
    return (
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
        f"constraint: Member must have value {direction} than or equal to {bound}"
    )


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"batch_size": 1},
        {"batch_size": 10_000, "batching_window_seconds": 1},
        {"batch_size": 11, "batching_window_seconds": 0.5},
        {"batching_window_seconds": 300},
        {"fifo": True, "batch_size": 10},
        {"function_timeout_seconds": 180},
        {"max_concurrency": 2},
        {"max_concurrency": 1000},
    ],
    ids=[
        "defaults",
        "batch-1",
        "batch-10000",
        "batch-11-window-half-a-second",
        "window-300",
        "fifo-batch-10",
        "timeout-as-long-as-the-visibility",
        "concurrency-2",
        "concurrency-1000",
    ],
)
def test_what_aws_accepts_passes(changes: dict[str, Any]) -> None:
    assert refused(changes) == []


@pytest.mark.parametrize(
    ("changes", "setting", "message"),
    [
        ({"batch_size": 0}, "batch_size", constraint("batchSize", 0, "greater", 1)),
        (
            {"batch_size": 10_001, "batching_window_seconds": 1},
            "batch_size",
            constraint("batchSize", 10001, "less", 10000),
        ),
        (
            {"fifo": True, "batch_size": 11},
            "batch_size",
            "Maximum batch size must be between 1 and 10 inclusive",
        ),
        (
            {"batching_window_seconds": 301},
            "batching_window_seconds",
            constraint("maximumBatchingWindowInSeconds", 301, "less", 300),
        ),
        (
            {"batching_window_seconds": -1},
            "batching_window_seconds",
            constraint("maximumBatchingWindowInSeconds", -1, "greater", 0),
        ),
        (
            {"fifo": True, "batching_window_seconds": 1},
            "batching_window_seconds",
            "Batching window is not supported for FIFO queues",
        ),
        (
            {"batch_size": 11},
            "batching_window_seconds",
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is "
            "greater than 10",
        ),
        (
            {"function_timeout_seconds": 181},
            "function_timeout_seconds",
            "Queue visibility timeout: 180 seconds is less than Function timeout: 181 seconds",
        ),
        (
            {"max_concurrency": 1},
            "max_concurrency",
            constraint("scalingConfig.maximumConcurrency", 1, "greater", 2),
        ),
        (
            {"max_concurrency": 1001},
            "max_concurrency",
            constraint("scalingConfig.maximumConcurrency", 1001, "less", 1000),
        ),
    ],
    ids=[
        "batch-0",
        "batch-10001",
        "fifo-batch-11",
        "window-301",
        "window-negative",
        "fifo-window",
        "batch-11-without-window",
        "timeout-past-the-visibility",
        "concurrency-1",
        "concurrency-1001",
    ],
)
def test_what_aws_refuses_is_refused_in_its_words(
    changes: dict[str, Any], setting: str, message: str
) -> None:
    [refusal] = refused(changes)

    assert (refusal.setting, refusal.message) == (setting, message)


def test_every_refusal_is_told_at_once() -> None:
    found = refused(
        {"batch_size": 20, "function_timeout_seconds": 60, "max_concurrency": 1}, visibility=30
    )

    assert [refusal.setting for refusal in found] == [
        "batching_window_seconds",
        "function_timeout_seconds",
        "max_concurrency",
    ]
    assert found[1].message == (
        "Queue visibility timeout: 30 seconds is less than Function timeout: 60 seconds"
    )


def test_one_environment_in_this_process_is_no_mapping_setting() -> None:
    # run --debug: concurrency 1, which a mapping cannot have
    assert refused({"max_concurrency": 1}, in_process=True) == []
    assert refused({"max_concurrency": 0}, in_process=True) != []
