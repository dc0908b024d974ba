"""Execution environments: the function's handler in worker processes, as Lambda runs it.

An environment is one worker process (``python -m sqs_lambda_tools.worker`` by default;
any program that speaks the worker protocol of the package README). It imports the
handler once (the init phase, timed), then serves one invocation at a time and stays warm
for the next. :class:`ExecutionEnvironments` keeps up to ``max_environments`` of them, one
per concurrent invocation, and enforces what Lambda enforces:

- the function timeout: an invocation still running at its deadline is killed with its
  environment (SIGKILL to the worker's process group), and only then reported timed out,
  so no code of it runs once its batch has failed;
- the function's memory: on Linux the worker's resident memory (``VmRSS``) is sampled
  while it runs, and past the memory setting the environment is killed
  (``Runtime.OutOfMemory``); Max Memory Used is the worker's peak (``VmHWM``). Elsewhere
  the worker's own figure (getrusage) is reported and the limit is not enforced;
- a worker that exits or dies mid-invocation fails it (``Runtime.ExitError``).

An environment that was killed or died is replaced by a new one (a cold start) when an
invocation needs it. An init that fails raises :class:`.invocations.InitError`.

The worker's stdout and stderr are the function's log: each line goes to ``on_output``
as it comes, and every line an invocation wrote is handed on before its invocation
returns. Between invocations nothing reads them, as Lambda freezes an idle environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .config import ACCOUNT_ID
from .invocations import (
    EXIT_ERROR,
    OUT_OF_MEMORY_ERROR,
    TIMEOUT_ERROR,
    ErrorInfo,
    InitError,
    Invocation,
    Outcome,
)
from .worker import REPLY_FD_VARIABLE, REQUEST_FD_VARIABLE

#: The Python worker; another runtime's worker is another command.
WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "sqs_lambda_tools.worker")
#: How often a running invocation's resident memory is read (Linux).
MEMORY_SAMPLE_SECONDS = 0.025
#: "The Init phase is limited to 10 seconds" (Lambda retries a longer one with the
#: function timeout: ``run`` gives the larger of the two).
INIT_LIMIT_SECONDS = 10.0
#: How long a worker has to exit once its requests end, before it is killed.
SHUTDOWN_GRACE_SECONDS = 0.5
_READ_SIZE = 1 << 16
_PROC = Path("/proc")

OutputSink = Callable[[str], None]


@dataclass(frozen=True)
class FunctionDefinition:
    """What an execution environment runs: the function's handler, code and memory, and
    the whole environment of its worker process (:func:`lambda_variables` included)."""

    name: str
    handler: str  # "package.module.function", the worker's _HANDLER
    code_dir: Path  # LAMBDA_TASK_ROOT, and the worker's working directory
    memory_mb: int
    region: str
    environment: Mapping[str, str]

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.name}"


def lambda_variables(
    *, function_name: str, handler: str, code_dir: Path, memory_mb: int, region: str
) -> dict[str, str]:
    """The variables Lambda defines in every execution environment that a handler may
    read ("Defined runtime environment variables"). ``AWS_LAMBDA_LOG_STREAM_NAME`` is
    each environment's own, set when it starts."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": str(code_dir),
    }


@dataclass(frozen=True)
class ColdStart:
    """An environment's start: its init phase as the worker timed it (the REPORT's Init
    Duration: the handler's import), and the time from spawning the process to its
    ``ready`` (the interpreter's own start included)."""

    init_duration_ms: float
    ready_ms: float


@dataclass(frozen=True)
class _Ended:
    """The worker will never reply: why."""

    reason: Literal["timeout", "out_of_memory", "exited", "protocol"]
    detail: str = ""


class ExecutionEnvironments:
    """Up to ``max_environments`` execution environments of ``function``, one per
    concurrent invocation, each reused while warm. Use it as a context manager (or call
    :meth:`close`): the workers end with it.

    ``on_output`` gets each line the workers write to stdout or stderr (default: this
    process's stderr). ``command`` starts a worker (default :data:`WORKER_COMMAND`).
    """

    def __init__(
        self,
        function: FunctionDefinition,
        *,
        max_environments: int,
        command: Sequence[str] = WORKER_COMMAND,
        on_output: OutputSink | None = None,
        init_limit_seconds: float = INIT_LIMIT_SECONDS,
    ) -> None:
        if max_environments < 1:
            raise ValueError(f"max_environments must be at least 1, got {max_environments}")
        self._function = function
        self._max = max_environments
        self._command = tuple(command)
        self._on_output = on_output or _to_stderr
        self._init_limit_seconds = init_limit_seconds
        #: Whether the memory setting is enforced: where /proc tells a process's memory.
        self.memory_enforced = (_PROC / "self" / "status").is_file()
        self._memory_limit_kb = function.memory_mb * 1024 if self.memory_enforced else None
        self._condition = threading.Condition()
        self._live: set[_Environment] = set()
        self._idle: list[_Environment] = []  # warm, not in use; the last one used is last
        self._starting = 0  # environments in their init phase, counted against the cap
        self._closed = False

    @property
    def in_process(self) -> bool:
        return False

    def __enter__(self) -> ExecutionEnvironments:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()

    def start(self, count: int = 1) -> list[ColdStart]:
        """Bring environments through their init phase until ``count`` are warm (at most
        ``max_environments``); the cold starts of those started now. Raises
        :class:`.invocations.InitError` when an init fails."""
        with self._condition:
            if self._closed:
                raise RuntimeError("the execution environments are closed")
            missing = max(0, min(count, self._max) - len(self._live) - self._starting)
            self._starting += missing
        cold_starts: list[ColdStart] = []
        for started in range(missing):
            try:
                environment, cold_start = self._spawn()
            except BaseException:
                with self._condition:
                    self._starting -= missing - started
                    self._condition.notify_all()
                raise
            self._add(environment)
            self._give_back(environment)
            cold_starts.append(cold_start)
        return cold_starts

    def invoke(self, event: dict[str, Any], *, timeout_seconds: float) -> Invocation:
        """Run the handler on ``event`` in a warm environment, or in a new one when none
        is free; the environment stays warm unless the invocation ended it."""
        environment = self._take()
        try:
            return self._invoke_in(environment, event, timeout_seconds)
        except BaseException:
            environment.kill()
            raise
        finally:
            self._give_back(environment)

    def close(self) -> None:
        """End every environment: an idle worker is told (its requests end) and given
        ``SHUTDOWN_GRACE_SECONDS`` to exit, one still invoking is killed."""
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = self._live - set(idle)
            self._live.clear()
            self._condition.notify_all()
        for environment in busy:
            environment.kill()  # its invoking thread sees it end, and lets go of it
        for environment in idle:
            environment.end_requests()
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        for environment in idle:
            environment.shut_down(deadline, self._on_output)

    # -- the pool -----------------------------------------------------------------------

    def _take(self) -> _Environment:
        """The warm environment used last (Lambda reuses warm ones), else a new one."""
        with self._condition:
            while True:
                if self._closed:
                    raise RuntimeError("the execution environments are closed")
                if self._idle:
                    return self._idle.pop()
                if len(self._live) + self._starting < self._max:
                    self._starting += 1
                    break
                self._condition.wait()
        try:
            environment, _ = self._spawn()
        except BaseException:
            with self._condition:
                self._starting -= 1
                self._condition.notify_all()
            raise
        self._add(environment)
        return environment

    def _add(self, environment: _Environment) -> None:
        with self._condition:
            self._starting -= 1
            self._live.add(environment)

    def _give_back(self, environment: _Environment) -> None:
        """Warm again, or, once ended (or the pool closed), let go of for good."""
        with self._condition:
            keep = not environment.ended and not self._closed
            if keep:
                self._idle.append(environment)
            else:
                self._live.discard(environment)
            self._condition.notify_all()
        if not keep:
            environment.end_requests()
            environment.shut_down(time.monotonic() + SHUTDOWN_GRACE_SECONDS, self._on_output)

    # -- one environment ----------------------------------------------------------------

    def _spawn(self) -> tuple[_Environment, ColdStart]:
        """A new worker, through its init phase (raises InitError)."""
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        log_stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        spawned = time.monotonic()
        try:
            process = subprocess.Popen(
                self._command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(request_read, reply_write),
                env={
                    **self._function.environment,
                    REQUEST_FD_VARIABLE: str(request_read),
                    REPLY_FD_VARIABLE: str(reply_write),
                    "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
                },
                cwd=self._function.code_dir,
                # A process group of its own: a kill takes whatever the handler started
                # with it, and Ctrl-C in the terminal reaches `run`, not the workers.
                start_new_session=True,
            )
        except OSError as error:
            os.close(request_write)
            os.close(reply_read)
            raise InitError(
                ErrorInfo(
                    "Runtime.InvalidEntrypoint",
                    f"cannot start the worker ({' '.join(self._command)}): {error}",
                )
            ) from error
        finally:
            os.close(request_read)
            os.close(reply_write)
        environment = _Environment(process, request_write, reply_read, log_stream)
        message = environment.next_message(
            deadline=spawned + self._init_limit_seconds,
            memory_limit_kb=self._memory_limit_kb,
            on_output=self._on_output,
        )
        ready_ms = (time.monotonic() - spawned) * 1000
        failure = self._init_failure(environment, message)
        if failure is not None:
            environment.kill()
            environment.shut_down(time.monotonic(), self._on_output)
            raise InitError(failure)
        assert isinstance(message, dict)
        environment.init_duration_ms = float(message.get("initDurationMs", ready_ms))
        environment.drain_output(self._on_output)
        environment.sample_memory()
        return environment, ColdStart(environment.init_duration_ms, ready_ms)

    def _init_failure(
        self, environment: _Environment, message: dict[str, Any] | _Ended
    ) -> ErrorInfo | None:
        """What went wrong in the init phase, if anything."""
        if isinstance(message, _Ended):
            if message.reason == "timeout":
                return ErrorInfo(
                    TIMEOUT_ERROR,
                    f"the init phase did not finish within {self._init_limit_seconds:g} s",
                )
            if message.reason == "out_of_memory":
                return ErrorInfo(OUT_OF_MEMORY_ERROR, f"in the init phase: {message.detail}")
            if message.reason == "exited":
                return ErrorInfo(
                    EXIT_ERROR, f"Runtime exited before it was ready: {message.detail}"
                )
            return ErrorInfo(EXIT_ERROR, f"the worker broke the protocol: {message.detail}")
        if message.get("type") == "init_error":
            return ErrorInfo(
                str(message.get("errorType") or "Runtime.Unknown"),
                str(message.get("errorMessage") or ""),
                tuple(str(line) for line in message.get("stackTrace") or ()),
            )
        if message.get("type") != "ready":
            return ErrorInfo(EXIT_ERROR, f"the worker broke the protocol: {message!r:.200}")
        if (
            self._memory_limit_kb is not None
            and environment.sample_memory() > self._memory_limit_kb
        ):
            return ErrorInfo(
                OUT_OF_MEMORY_ERROR,
                f"in the init phase: {_over_memory(environment.peak_kb, self._function.memory_mb)}",
            )
        return None

    def _invoke_in(
        self, environment: _Environment, event: dict[str, Any], timeout_seconds: float
    ) -> Invocation:
        cold = environment.invocations == 0
        environment.invocations += 1
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        sent = environment.send(
            {
                "type": "invoke",
                "requestId": request_id,
                "deadlineMs": round((time.time() + timeout_seconds) * 1000),
                "functionName": self._function.name,
                "functionVersion": "$LATEST",
                "invokedFunctionArn": self._function.arn,
                "memoryMb": self._function.memory_mb,
                "event": event,
            }
        )
        reply = (
            environment.next_message(
                deadline=started + timeout_seconds,
                memory_limit_kb=self._memory_limit_kb,
                on_output=self._on_output,
            )
            if sent
            else environment.exited(self._on_output)
        )
        duration_ms = (time.monotonic() - started) * 1000
        outcome, response, error = self._outcome(environment, reply, request_id, timeout_seconds)
        if not environment.ended:
            environment.drain_output(self._on_output)
        peak_mb = -(-environment.peak_kb // 1024)
        if not self.memory_enforced and isinstance(reply, dict):
            peak_mb = int(reply.get("maxMemoryUsedMb") or 0)
        return Invocation(
            request_id=request_id,
            outcome=outcome,
            duration_ms=duration_ms,
            memory_size_mb=self._function.memory_mb,
            max_memory_used_mb=peak_mb,
            timeout_seconds=timeout_seconds,
            init_duration_ms=environment.init_duration_ms if cold else None,
            response=response,
            error=error,
        )

    def _outcome(
        self,
        environment: _Environment,
        reply: dict[str, Any] | _Ended,
        request_id: str,
        timeout_seconds: float,
    ) -> tuple[Outcome, object, ErrorInfo | None]:
        """How the invocation ended: its outcome, response and error."""
        if isinstance(reply, _Ended):
            if reply.reason == "timeout":
                message = f"Task timed out after {timeout_seconds:.2f} seconds"
                return "timeout", None, ErrorInfo(TIMEOUT_ERROR, message)
            if reply.reason == "out_of_memory":
                return "out_of_memory", None, ErrorInfo(OUT_OF_MEMORY_ERROR, reply.detail)
            if reply.reason == "exited":
                message = f"Runtime exited with error: {reply.detail}"
                return "exit_error", None, ErrorInfo(EXIT_ERROR, message)
            message = f"the worker broke the protocol: {reply.detail}"
            return "exit_error", None, ErrorInfo(EXIT_ERROR, message)
        kind = reply.get("type")
        if kind not in ("result", "error") or reply.get("requestId") != request_id:
            environment.kill()
            message = f"the worker broke the protocol: {reply!r:.200}"
            return "exit_error", None, ErrorInfo(EXIT_ERROR, message)
        # A peak past the memory between two samples: Lambda would have stopped it there.
        limit = self._memory_limit_kb
        if limit is not None and environment.sample_memory() > limit:
            environment.kill()
            detail = _over_memory(environment.peak_kb, self._function.memory_mb)
            return "out_of_memory", None, ErrorInfo(OUT_OF_MEMORY_ERROR, detail)
        if kind == "result":
            return "success", reply.get("response"), None
        error = ErrorInfo(
            str(reply.get("errorType") or "Error"),
            str(reply.get("errorMessage") or ""),
            tuple(str(line) for line in reply.get("stackTrace") or ()),
        )
        return "function_error", None, error


class _Environment:
    """One worker process: its pipes, what it has written so far, and its memory."""

    def __init__(
        self, process: subprocess.Popen[bytes], requests: int, replies: int, log_stream: str
    ) -> None:
        assert process.stdout is not None
        self.process = process
        self.log_stream = log_stream
        self.init_duration_ms = 0.0
        self.invocations = 0
        # Its resident memory and its peak (VmRSS, VmHWM) as last read, in KiB.
        self.resident_kb = 0
        self.peak_kb = 0
        # Killed, or exited: never used again.
        self.ended = False
        self._requests = requests
        self._replies = replies
        self._output = process.stdout.fileno()
        self._output_open = True
        self._reply_buffer = bytearray()
        self._output_buffer = bytearray()
        self._fds_open = True

    def send(self, message: dict[str, Any]) -> bool:
        """Write one request line; False when the worker is gone."""
        data = memoryview(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        try:
            while data:
                data = data[os.write(self._requests, data) :]
        except OSError:  # EPIPE: nobody reads the requests any more
            return False
        return True

    def next_message(
        self, *, deadline: float | None, memory_limit_kb: int | None, on_output: OutputSink
    ) -> dict[str, Any] | _Ended:
        """The worker's next message, or why none will come: the deadline passed or the
        memory ran over (the worker is killed before this returns), or it exited."""
        while True:
            line = self._take_line()
            if line is not None:
                return self._decode(line)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                self.kill()
                return _Ended("timeout")
            wait = MEMORY_SAMPLE_SECONDS if memory_limit_kb is not None else 0.25
            if deadline is not None:
                wait = min(wait, deadline - now)
            watched = [self._replies, self._output] if self._output_open else [self._replies]
            readable, _, _ = select.select(watched, [], [], wait)
            if self._output in readable:
                self._read_output(on_output)
            if self._replies in readable:
                chunk = os.read(self._replies, _READ_SIZE)
                if chunk:
                    self._reply_buffer += chunk
                    continue
                return self.exited(on_output)  # EOF: the worker closed its end, or died
            if memory_limit_kb is not None and self.sample_memory(current=True) > memory_limit_kb:
                self.kill()
                detail = _over_memory(self.resident_kb, memory_limit_kb // 1024)
                return _Ended("out_of_memory", detail)
            if self.process.poll() is not None:
                return self.exited(on_output)

    def exited(self, on_output: OutputSink) -> _Ended:
        """The worker is gone (or going): its exit status, once it has exited."""
        try:
            code = self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:  # it closed the protocol's pipe and lives on
            self.kill()
            code = self.process.returncode
        self._reap_group()
        self.ended = True
        self.drain_output(on_output, until_closed=True)
        if code is not None and code < 0:
            return _Ended("exited", f"signal: {_signal_name(-code)}")
        return _Ended("exited", f"exit status {code}")

    def kill(self) -> None:
        """SIGKILL to the worker's process group (the handler's children too), and wait
        until the worker is gone: nothing of it runs after this returns."""
        self._reap_group()
        with contextlib.suppress(ChildProcessError):
            self.process.wait()
        self.ended = True

    def end_requests(self) -> None:
        """Close the requests' pipe: an idle worker then exits of its own accord."""
        if self._requests >= 0:
            with contextlib.suppress(OSError):
                os.close(self._requests)
            self._requests = -1

    def shut_down(self, deadline: float, on_output: OutputSink) -> None:
        """Wait until ``deadline`` for the worker to exit, kill it then, close its pipes."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        self.kill()
        self.drain_output(on_output, until_closed=True)
        self.end_requests()
        if self._fds_open:
            self._fds_open = False
            with contextlib.suppress(OSError):
                os.close(self._replies)
            if self.process.stdout is not None:  # its file object owns the descriptor
                self.process.stdout.close()

    def drain_output(self, on_output: OutputSink, *, until_closed: bool = False) -> None:
        """Hand on what the worker has written; ``until_closed``: until its end of the
        pipe is closed (a child that escaped the kill may hold it: 0.1 s at most)."""
        while self._output_open:
            readable, _, _ = select.select([self._output], [], [], 0.1 if until_closed else 0)
            if not readable:
                break
            self._read_output(on_output)
        if not self._output_open or until_closed:
            self._flush_output(on_output)

    def sample_memory(self, *, current: bool = False) -> int:
        """Read the worker's memory from /proc: its peak (VmHWM), or with ``current`` its
        resident memory now (VmRSS), in KiB; 0 when it cannot be read."""
        figures = _proc_memory_kb(self.process.pid)
        if figures is None:
            return 0
        self.resident_kb, peak = figures
        self.peak_kb = max(self.peak_kb, peak, self.resident_kb)
        return self.resident_kb if current else self.peak_kb

    def _decode(self, line: bytes) -> dict[str, Any] | _Ended:
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self.kill()
            return _Ended("protocol", f"not a JSON object: {line[:200]!r}")
        return message

    def _take_line(self) -> bytes | None:
        end = self._reply_buffer.find(b"\n")
        if end < 0:
            return None
        line = bytes(self._reply_buffer[:end])
        del self._reply_buffer[: end + 1]
        return line

    def _read_output(self, on_output: OutputSink) -> None:
        try:
            chunk = os.read(self._output, _READ_SIZE)
        except OSError:
            chunk = b""
        if not chunk:
            self._output_open = False
            return
        self._output_buffer += chunk
        *lines, rest = self._output_buffer.split(b"\n")
        self._output_buffer = bytearray(rest)
        for line in lines:
            on_output(line.decode("utf-8", "replace").rstrip("\r"))

    def _flush_output(self, on_output: OutputSink) -> None:
        if self._output_buffer:
            on_output(self._output_buffer.decode("utf-8", "replace"))
            self._output_buffer.clear()

    def _reap_group(self) -> None:
        # The group outlives its leader while any of its processes live, so its id is
        # not reused meanwhile: killing it after the worker was reaped is safe.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _proc_memory_kb(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of ``pid`` in KiB, from /proc; None once it has exited."""
    resident = peak = None
    try:
        with open(_PROC / str(pid) / "status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    resident = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    if resident is None or peak is None:
        return None
    return resident, peak


def _over_memory(resident_kb: int, memory_mb: int) -> str:
    return (
        f"Runtime exited with error: signal: killed (resident memory {-(-resident_kb // 1024)} "
        f"MB, past the function's memory, {memory_mb} MB)"
    )


def _signal_name(number: int) -> str:
    """ "killed", "segmentation fault": as Lambda's runtime errors name a signal."""
    try:
        return (signal.strsignal(number) or f"signal {number}").lower()
    except ValueError:
        return f"signal {number}"


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
