"""A function for the tests of execution environments: each record's body says what its
invocation does.

- ``{"respond": value}``: return ``value`` (the last such record's); ``{"unencodable":
  true}``: return what JSON cannot encode;
- ``{"busy_seconds": s}``: stay busy ``s`` seconds, writing a ``beat`` event every 20 ms;
- ``{"allocate_mb": n}``: hold ``n`` MB (touched, so that they are resident);
- ``{"exit": code}``: end the process (``os._exit``); ``{"signal": "SIGKILL"}``: kill it;
- ``{"raise": text}``: raise RuntimeError(text).

Every invocation writes a ``start`` event, and an ``end`` event when it returns, to the
file named by ``PROBE_LOG`` (when it is set): one JSON line each (event, request id, pid,
the module's INVOCATIONS, time), written through at once, so a killed worker loses
nothing it wrote.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

INVOCATIONS = 0  # module state: per execution environment, as in Lambda
_held: list[bytes] = []


def handler(event: dict[str, Any], context: Any) -> object:
    global INVOCATIONS
    INVOCATIONS += 1
    _log("start", context)
    response: object = None
    for record in event["Records"]:
        body = json.loads(record["body"])
        if "respond" in body:
            response = body["respond"]
        if body.get("unencodable"):
            response = {"batchItemFailures": {"not", "json"}}
        if "allocate_mb" in body:
            _held.append(b"\x01" * (int(body["allocate_mb"]) << 20))
        if "busy_seconds" in body:
            until = time.monotonic() + float(body["busy_seconds"])
            while time.monotonic() < until:
                _log("beat", context)
                time.sleep(0.02)
        if "exit" in body:
            os._exit(int(body["exit"]))
        if "signal" in body:
            os.kill(os.getpid(), getattr(signal, body["signal"]))
        if "raise" in body:
            raise RuntimeError(body["raise"])
    _log("end", context)
    return response


def _log(kind: str, context: Any) -> None:
    path = os.environ.get("PROBE_LOG")
    if not path:
        return
    line = json.dumps(
        {
            "event": kind,
            "requestId": context.aws_request_id,
            "pid": os.getpid(),
            "invocations": INVOCATIONS,
            "at": time.time(),
        }
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, f"{line}\n".encode())
    finally:
        os.close(descriptor)
