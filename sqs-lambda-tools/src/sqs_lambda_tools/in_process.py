"""The ``--debug`` environment: the handler in this process, so a debugger's breakpoints
work in it.

The caller imports the handler (``run_cli.load_handler``, in the function's environment)
and times that import: the init phase of this one environment, reported on its first
invocation. Each invocation calls the handler in the invoking thread with a context whose
remaining time counts down from the function timeout. Nothing is killed: a breakpoint
would otherwise count as a timeout. An invocation that runs past the timeout is reported
(``past_timeout``) and its response applied as if it had not.

With a ``max_concurrency`` above 1 the mapping calls it from several threads at once,
sharing this process's module state: the mapping's own tests do that with handlers that
are closures; ``run --debug`` keeps to one invocation at a time.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from . import worker
from .invocations import MARSHAL_ERROR, ErrorInfo, Invocation, Outcome
from .lambda_context import DEFAULT_FUNCTION_NAME, DEFAULT_REGION, FakeLambdaContext

Handler = Callable[[dict[str, Any], Any], object]


class InProcessEnvironment:
    """``handler`` as the one execution environment, in this process."""

    def __init__(
        self,
        handler: Handler,
        *,
        function_name: str = DEFAULT_FUNCTION_NAME,
        memory_mb: int = 128,
        region: str = DEFAULT_REGION,
        init_duration_ms: float | None = None,
    ) -> None:
        self._handler = handler
        self._function_name = function_name
        self._memory_mb = memory_mb
        self._region = region
        self._init_duration_ms = init_duration_ms
        self._lock = threading.Lock()

    @property
    def in_process(self) -> bool:
        return True

    def start(self) -> None:
        """Nothing to start: the caller imported the handler."""

    def invoke(self, event: dict[str, Any], *, timeout_seconds: float) -> Invocation:
        with self._lock:  # the first invocation is the cold one
            init_duration_ms, self._init_duration_ms = self._init_duration_ms, None
        request_id = str(uuid.uuid4())
        context = FakeLambdaContext(
            function_name=self._function_name,
            memory_limit_in_mb=self._memory_mb,
            aws_request_id=request_id,
            region=self._region,
            timeout_seconds=timeout_seconds,
            deadline_ms=(time.time() + timeout_seconds) * 1000,
        )
        outcome: Outcome = "success"
        response: object = None
        error: ErrorInfo | None = None
        started = time.perf_counter()
        try:
            returned = self._handler(event, context)
        except Exception as raised:
            fields = worker.error_fields(raised, skip={__file__})
            outcome = "function_error"
            error = ErrorInfo(
                fields["errorType"], fields["errorMessage"], tuple(fields["stackTrace"])
            )
        else:
            try:  # what a worker would send: the response through JSON, or a marshal error
                response = json.loads(worker.encode({"response": returned}))["response"]
            except (TypeError, ValueError) as refused:
                outcome = "function_error"
                error = ErrorInfo(MARSHAL_ERROR, f"Unable to marshal response: {refused}")
        duration_ms = (time.perf_counter() - started) * 1000
        return Invocation(
            request_id=request_id,
            outcome=outcome,
            duration_ms=duration_ms,
            memory_size_mb=self._memory_mb,
            max_memory_used_mb=worker.peak_memory_mb(),
            timeout_seconds=timeout_seconds,
            init_duration_ms=init_duration_ms,
            response=response,
            error=error,
            past_timeout=duration_ms > timeout_seconds * 1000,
        )
