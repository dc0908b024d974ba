"""A stand-in for the Lambda context object, with a real deadline.

``get_remaining_time_in_millis`` counts down from the function timeout, as in Lambda,
so code that checks it (Powertools' idempotency, your own) behaves as deployed. An
execution environment's worker sets the invocation's deadline itself (``deadline_ms``,
as Lambda's runtime API gives it: milliseconds since the epoch), so the countdown starts
when the mapping invoked, not when the worker got round to it.
:func:`make_context` gives one with the project's function name, memory and timeout.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from .config import ACCOUNT_ID
from .project import Project, current

#: CreateFunction's defaults, for a context made without a project.
DEFAULT_FUNCTION_NAME = "local-function"
DEFAULT_REGION = "us-east-1"


@dataclass
class FakeLambdaContext:
    function_name: str = DEFAULT_FUNCTION_NAME
    function_version: str = "$LATEST"
    # Empty: derived from the function name and region, as Lambda names them.
    invoked_function_arn: str = ""
    memory_limit_in_mb: int = 128
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    timeout_seconds: float = 3
    region: str = DEFAULT_REGION
    started_at: float = field(default_factory=time.monotonic)
    # The invocation's deadline in ms since the epoch; None: ``timeout_seconds`` from
    # ``started_at``.
    deadline_ms: float | None = None

    def __post_init__(self) -> None:
        if not self.invoked_function_arn:
            self.invoked_function_arn = (
                f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"
            )
        if not self.log_group_name:
            self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        if self.deadline_ms is not None:
            return max(0, int(self.deadline_ms - time.time() * 1000))
        elapsed = time.monotonic() - self.started_at
        return max(0, int((self.timeout_seconds - elapsed) * 1000))

    def timed_out(self) -> bool:
        return self.get_remaining_time_in_millis() <= 0


def make_context(
    project: Project | None = None, *, timeout_seconds: float | None = None
) -> FakeLambdaContext:
    """A context for the project's function (default: the current project): its name,
    memory and region, and a deadline ``timeout_seconds`` (default: its timeout) from now."""
    project = project or current()
    function = project.function
    return FakeLambdaContext(
        function_name=function.name,
        memory_limit_in_mb=function.memory_mb,
        timeout_seconds=function.timeout_seconds if timeout_seconds is None else timeout_seconds,
        region=project.region,
    )
