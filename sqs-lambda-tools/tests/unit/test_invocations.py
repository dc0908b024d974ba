"""An invocation told as Lambda tells it (its REPORT line), and the --debug environment,
which runs the handler in this process and enforces nothing."""

from __future__ import annotations

import decimal
import time
from typing import Any

import pytest

from sqs_lambda_tools.in_process import InProcessEnvironment
from sqs_lambda_tools.invocations import ErrorInfo, Invocation

pytestmark = pytest.mark.unit

REQUEST_ID = "8f5c3e0e-1d2b-4c5a-9e6f-0a1b2c3d4e5f"


def invocation(**fields: Any) -> Invocation:
    values: dict[str, Any] = {
        "request_id": REQUEST_ID,
        "outcome": "success",
        "duration_ms": 12.3449,
        "memory_size_mb": 256,
        "max_memory_used_mb": 71,
        "timeout_seconds": 30,
        **fields,
    }
    return Invocation(**values)


def test_a_warm_invocation_reports_as_lambda_does() -> None:
    assert invocation().report_line() == (
        f"REPORT RequestId: {REQUEST_ID}\tDuration: 12.34 ms\tBilled Duration: 13 ms\t"
        "Memory Size: 256 MB\tMax Memory Used: 71 MB"
    )


def test_a_cold_start_reports_its_init_and_bills_it() -> None:
    line = invocation(init_duration_ms=412.5).report_line()

    # Since August 2025 the init phase is billed: 12.34 + 412.5 ms, rounded up.
    assert line.endswith(
        "\tBilled Duration: 425 ms\tMemory Size: 256 MB\tMax Memory Used: 71 MB"
        "\tInit Duration: 412.50 ms"
    )


@pytest.mark.parametrize(
    ("outcome", "error", "status", "reason"),
    [
        (
            "timeout",
            ErrorInfo("Sandbox.Timedout", "Task timed out after 30.00 seconds"),
            "\tStatus: timeout",
            "timed out after 30 s (the function timeout)",
        ),
        (
            "out_of_memory",
            ErrorInfo("Runtime.OutOfMemory", "Runtime exited with error: signal: killed"),
            "\tStatus: error\tError Type: Runtime.OutOfMemory",
            "out of memory (Runtime.OutOfMemory): Runtime exited with error: signal: killed",
        ),
        (
            "exit_error",
            ErrorInfo("Runtime.ExitError", "Runtime exited with error: exit status 3"),
            "\tStatus: error\tError Type: Runtime.ExitError",
            "the runtime exited (Runtime.ExitError): Runtime exited with error: exit status 3",
        ),
        (
            "function_error",
            ErrorInfo("KeyError", "'orderId'"),
            "",
            "handler raised KeyError: 'orderId'",
        ),
    ],
    ids=["timeout", "out-of-memory", "exit", "raised"],
)
def test_a_failed_invocation_says_how_it_ended(
    outcome: str, error: ErrorInfo, status: str, reason: str
) -> None:
    failed = invocation(outcome=outcome, error=error)

    assert failed.report_line().endswith(f"Max Memory Used: 71 MB{status}")
    assert failed.failure_reason() == reason
    assert not failed.succeeded


def test_the_debug_environment_reports_its_init_on_the_first_invocation_only() -> None:
    environment = InProcessEnvironment(lambda event, context: None, init_duration_ms=40.0)

    first = environment.invoke({"Records": []}, timeout_seconds=1)
    second = environment.invoke({"Records": []}, timeout_seconds=1)

    assert (first.init_duration_ms, second.init_duration_ms) == (40.0, None)
    assert first.request_id != second.request_id


def test_the_debug_environment_gives_the_handler_a_counting_down_context() -> None:
    seen: list[Any] = []
    environment = InProcessEnvironment(lambda event, context: seen.append(context))

    invoked = environment.invoke({"Records": []}, timeout_seconds=3)

    [context] = seen
    assert context.aws_request_id == invoked.request_id
    assert 2000 < context.get_remaining_time_in_millis() <= 3000


def test_the_debug_environment_tells_a_timeout_it_does_not_enforce() -> None:
    environment = InProcessEnvironment(lambda event, context: time.sleep(0.05))

    overran = environment.invoke({"Records": []}, timeout_seconds=0.01)

    assert overran.succeeded
    assert overran.past_timeout
    assert "Status" not in overran.report_line()


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ({"batchItemFailures": []}, {"batchItemFailures": []}),
        ({"total": decimal.Decimal("1.5")}, {"total": 1.5}),  # as Lambda's runtime encodes it
    ],
)
def test_the_debug_environment_passes_the_response_through_json(
    response: object, expected: object
) -> None:
    invoked = InProcessEnvironment(lambda event, context: response).invoke(
        {"Records": []}, timeout_seconds=1
    )

    assert invoked.response == expected


def test_a_response_json_cannot_encode_is_the_runtimes_marshal_error() -> None:
    invoked = InProcessEnvironment(lambda event, context: {"batchItemFailures": {1}}).invoke(
        {"Records": []}, timeout_seconds=1
    )

    assert invoked.outcome == "function_error"
    assert invoked.error == ErrorInfo(
        "Runtime.MarshalError",
        "Unable to marshal response: Object of type set is not JSON serializable",
    )
    assert invoked.failure_reason().startswith("invalid response: Unable to marshal response")


def test_an_error_the_handler_raises_keeps_its_traceback() -> None:
    def handler(event: Any, context: Any) -> object:
        raise ValueError("no orderId")

    invoked = InProcessEnvironment(handler).invoke({"Records": []}, timeout_seconds=1)

    assert invoked.outcome == "function_error"
    assert invoked.error is not None
    assert invoked.error.type == "ValueError"
    assert invoked.error.stack_trace[0] == "Traceback (most recent call last):"
    assert invoked.error.stack_trace[-1] == "ValueError: no orderId"
    assert not any("in_process.py" in line for line in invoked.error.stack_trace)
