"""What one invocation of the function did, told in Lambda's words, and what the mapping
needs from wherever the handler runs.

The handler runs in an execution environment: a worker process (:mod:`.environments`), or
this process under ``--debug`` (:mod:`.in_process`). Either gives back an
:class:`Invocation`: the mapping applies its response, ``run`` prints its REPORT line as
Lambda writes it to the function's log::

    REPORT RequestId: 8f5c3e0e-...\tDuration: 12.34 ms\tBilled Duration: 13 ms\t
    Memory Size: 256 MB\tMax Memory Used: 71 MB\tInit Duration: 412.50 ms

(one line; ``Init Duration`` on a cold start only, then ``Status: timeout`` or ``Status:
error\tError Type: Runtime.OutOfMemory`` / ``Runtime.ExitError`` when the environment
was killed or died).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol

#: How an invocation ended. ``function_error``: the handler raised (or returned what JSON
#: cannot encode), and its environment lives on; the others end the environment.
Outcome = Literal["success", "function_error", "timeout", "out_of_memory", "exit_error"]

# Lambda's error types for what ends an environment, as its logs and invoke errors name them.
TIMEOUT_ERROR = "Sandbox.Timedout"
OUT_OF_MEMORY_ERROR = "Runtime.OutOfMemory"
EXIT_ERROR = "Runtime.ExitError"
#: A response JSON cannot encode (the Python runtime's name for it).
MARSHAL_ERROR = "Runtime.MarshalError"
#: The ``_HANDLER`` names a module that is not there, or a function its module lacks.
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"


@dataclass(frozen=True)
class ErrorInfo:
    """An error as Lambda's runtimes report one: ``errorType``, ``errorMessage``,
    ``stackTrace`` (the traceback's lines)."""

    type: str
    message: str
    stack_trace: tuple[str, ...] = ()

    def document(self) -> dict[str, Any]:
        """The error payload an invoke returns (``aws lambda invoke`` writes it out)."""
        return {
            "errorMessage": self.message,
            "errorType": self.type,
            **({"stackTrace": list(self.stack_trace)} if self.stack_trace else {}),
        }


class InitError(Exception):
    """The function's init phase failed: its handler did not import, or its environment
    ended before it was ready. Every invocation would fail the same way."""

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__(f"{error.type}: {error.message}")
        self.error = error


@dataclass(frozen=True)
class Invocation:
    """One invocation: how it ended, its response or error, and its REPORT figures."""

    request_id: str
    outcome: Outcome
    duration_ms: float
    memory_size_mb: int
    max_memory_used_mb: int
    # The function timeout it ran under, in seconds.
    timeout_seconds: float
    # Set on a cold start (the first invocation of an environment): its init phase.
    init_duration_ms: float | None = None
    # outcome "success": the handler's response, as JSON decodes it.
    response: object = None
    # Any other outcome: what the handler raised, or what ended its environment.
    error: ErrorInfo | None = None
    # --debug only: it ran past the function timeout, which is reported, not enforced.
    past_timeout: bool = False

    @property
    def succeeded(self) -> bool:
        return self.outcome == "success"

    @property
    def cold_start(self) -> bool:
        return self.init_duration_ms is not None

    @property
    def billed_duration_ms(self) -> int:
        """Whole milliseconds, rounded up. Since August 2025 Lambda bills the init phase of
        on-demand functions too ("AWS Lambda standardizes billing for INIT Phase")."""
        return math.ceil(self.duration_ms + (self.init_duration_ms or 0.0))

    def report_line(self) -> str:
        """Lambda's REPORT line for this invocation, fields separated by tabs."""
        fields = [
            f"REPORT RequestId: {self.request_id}",
            f"Duration: {self.duration_ms:.2f} ms",
            f"Billed Duration: {self.billed_duration_ms} ms",
            f"Memory Size: {self.memory_size_mb} MB",
            f"Max Memory Used: {self.max_memory_used_mb} MB",
        ]
        if self.init_duration_ms is not None:
            fields.append(f"Init Duration: {self.init_duration_ms:.2f} ms")
        if self.outcome == "timeout":
            fields.append("Status: timeout")
        elif self.outcome in ("out_of_memory", "exit_error") and self.error is not None:
            fields += ["Status: error", f"Error Type: {self.error.type}"]
        return "\t".join(fields)

    def failure_reason(self) -> str:
        """Why the batch of this invocation failed whole, for ``run``'s output."""
        error = self.error or ErrorInfo("Unknown", "no error reported")
        if self.outcome == "timeout":
            return f"timed out after {self.timeout_seconds:g} s (the function timeout)"
        if self.outcome == "out_of_memory":
            return f"out of memory ({error.type}): {error.message}"
        if self.outcome == "exit_error":
            return f"the runtime exited ({error.type}): {error.message}"
        if error.type == MARSHAL_ERROR:
            return f"invalid response: {error.message}"
        return f"handler raised {error.type}: {error.message}"


class Environments(Protocol):
    """Where the mapping's invocations run: :class:`.environments.ExecutionEnvironments`
    (worker processes) or :class:`.in_process.InProcessEnvironment` (``--debug``)."""

    @property
    def in_process(self) -> bool:
        """The handler runs in this process: the timeout is reported but not enforced,
        and a single environment (concurrency 1) is allowed."""
        ...

    def start(self) -> object:
        """Get one environment through its init phase; raises :class:`InitError`."""
        ...

    def invoke(self, event: dict[str, Any], *, timeout_seconds: float) -> Invocation:
        """Run the handler on ``event`` in a free environment (a new one if none is
        warm); raises :class:`InitError` when a new environment's init fails."""
        ...
