"""The worker of an execution environment, for a Python handler:
``python -m sqs_lambda_tools.worker``.

It does what Lambda's Python runtime does in an execution environment, over the worker
protocol (the package README, "The worker protocol"): import the handler named by
``_HANDLER`` from ``LAMBDA_TASK_ROOT`` once (the init phase, timed), say ``ready`` (or
``init_error``), then answer each ``invoke`` with a ``result`` or an ``error``, one at a
time, until the requests end. The protocol has pipes of its own (their numbers are in
``SQSL_REQUEST_FD`` and ``SQSL_REPLY_FD``): stdout and stderr stay the function's log.

The parent (:mod:`.environments`) enforces the timeout and the memory by killing this
process; nothing here watches the clock.
"""

from __future__ import annotations

import decimal
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, BinaryIO

from . import code_import, lambda_logging
from .invocations import HANDLER_NOT_FOUND, IMPORT_MODULE_ERROR, MARSHAL_ERROR
from .lambda_context import FakeLambdaContext

REQUEST_FD_VARIABLE = "SQSL_REQUEST_FD"
REPLY_FD_VARIABLE = "SQSL_REPLY_FD"

Handler = Callable[[Any, Any], Any]


class HandlerNotImportedError(Exception):
    """``_HANDLER`` names a module that is not there, or a function its module lacks."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def main() -> int:
    requests = os.fdopen(_protocol_fd(REQUEST_FD_VARIABLE), "rb")
    replies = os.fdopen(_protocol_fd(REPLY_FD_VARIABLE), "wb")
    # Log lines reach the parent as they are written, stdout's and stderr's in their order.
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    lambda_logging.install()

    started = time.perf_counter()
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""), os.environ["LAMBDA_TASK_ROOT"])
    except HandlerNotImportedError as error:
        send(
            replies,
            {"type": "init_error", "errorType": error.error_type, "errorMessage": str(error)},
        )
        return 1
    except BaseException as error:  # the handler's module raised (SystemExit included)
        send(replies, {"type": "init_error", **error_fields(error)})
        return 1
    send(replies, {"type": "ready", "initDurationMs": (time.perf_counter() - started) * 1000})

    for line in requests:  # one request a line, until the parent closes the pipe
        message = json.loads(line)
        if message.get("type") == "invoke":
            send(replies, invoke(handler, message))
    return 0


def _protocol_fd(variable: str) -> int:
    """A protocol pipe, kept from the handler's own child processes."""
    fd = int(os.environ[variable])
    os.set_inheritable(fd, False)
    return fd


def load_handler(handler: str, task_root: str) -> Handler:
    """The function ``handler`` ("package.module.function") names, imported from
    ``task_root`` as Lambda imports it from ``/var/task``."""
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise HandlerNotImportedError(
            IMPORT_MODULE_ERROR, f"Bad handler {handler!r}: expected module.function"
        )
    try:
        module = code_import.import_from_folder(Path(task_root), module_name)
    except ModuleNotFoundError as error:
        parts = module_name.split(".")
        if error.name not in {".".join(parts[:end]) for end in range(1, len(parts) + 1)}:
            raise  # the handler's own import of something else: its code's error
        raise HandlerNotImportedError(
            IMPORT_MODULE_ERROR,
            f"Unable to import module {module_name!r}: no module {error.name!r} in "
            f"{task_root} or on the Python path",
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise HandlerNotImportedError(
            HANDLER_NOT_FOUND, f"Handler {function_name!r} missing on module {module_name!r}"
        )
    loaded: Handler = function
    return loaded


def invoke(handler: Handler, message: dict[str, Any]) -> dict[str, Any]:
    """Run ``handler`` on an ``invoke`` message; the ``result`` or ``error`` to send."""
    request_id = message["requestId"]
    deadline_ms = float(message["deadlineMs"])
    context = FakeLambdaContext(
        function_name=message.get("functionName", ""),
        function_version=message.get("functionVersion", "$LATEST"),
        invoked_function_arn=message.get("invokedFunctionArn", ""),
        memory_limit_in_mb=int(message.get("memoryMb", 128)),
        aws_request_id=request_id,
        log_group_name=os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
        log_stream_name=os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
        region=os.environ.get("AWS_REGION", "us-east-1"),
        timeout_seconds=max(0.0, deadline_ms / 1000 - time.time()),
        deadline_ms=deadline_ms,
    )
    try:
        response = handler(message["event"], context)
    except Exception as error:
        return {"type": "error", "requestId": request_id, **error_fields(error), **_memory()}
    reply = {"type": "result", "requestId": request_id, "response": response, **_memory()}
    try:
        encode(reply)
    except (TypeError, ValueError) as error:
        return {
            "type": "error",
            "requestId": request_id,
            "errorType": MARSHAL_ERROR,
            "errorMessage": f"Unable to marshal response: {error}",
            **_memory(),
        }
    return reply


def send(replies: BinaryIO, message: dict[str, Any]) -> None:
    """One message, one line. The handler's output is flushed first, so the parent has
    every log line of an invocation before its reply."""
    sys.stdout.flush()
    sys.stderr.flush()
    replies.write(encode(message))
    replies.flush()


def encode(message: dict[str, Any]) -> bytes:
    """``message`` as one line of JSON. Decimal is a number, as Lambda's Python runtime
    encodes it (DynamoDB's numbers are Decimals)."""
    return json.dumps(message, default=_decimal, separators=(",", ":")).encode() + b"\n"


def _decimal(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def error_fields(error: BaseException, *, skip: Collection[str] = ()) -> dict[str, Any]:
    """``errorType``, ``errorMessage``, ``stackTrace`` of ``error``, without the frames of
    this worker, of the import machinery and of the files in ``skip``."""
    report = traceback.TracebackException.from_exception(error)
    report.stack = traceback.StackSummary.from_list(
        [
            frame
            for frame in report.stack
            if not _machinery(frame.filename) and frame.filename not in skip
        ]
    )
    return {
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": "".join(report.format()).splitlines(),
    }


def _machinery(filename: str) -> bool:
    return (
        filename == __file__
        or filename == importlib.__file__
        or filename.startswith("<frozen importlib")
        or filename == code_import.__file__
    )


def _memory() -> dict[str, int]:
    return {"maxMemoryUsedMb": peak_memory_mb()}


def peak_memory_mb() -> int:
    """This process's peak resident memory, in MB: the parent's figure where it cannot
    read ``/proc`` (ru_maxrss is in KiB on Linux, in bytes on macOS)."""
    try:
        import resource  # POSIX only: the tools import this module elsewhere too
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return -(-peak // (1 << 20 if sys.platform == "darwin" else 1 << 10))


if __name__ == "__main__":
    sys.exit(main())
