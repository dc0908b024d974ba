"""Which AWS endpoint the local tools talk to, and clients for it.

In order: ``AWS_ENDPOINT_URL`` when set (any emulator, used as is); else the emulator
that ``sqsl up`` started (recorded in the project's ``.local/emulator.json``), while its
process runs and holds its port, so that a command never reaches another service's
emulator that took the port over; else, only when asked with ``--aws``, real AWS with the
usual credential chain. Without any of them a command fails and says how to get an
endpoint, so nothing reaches AWS by accident.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from .project import Project, current

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

#: The record of the emulator that ``up`` started, in the project's state folder.
STATE_FILE_NAME = "emulator.json"
#: The command, for messages that say what to run.
DEV_COMMAND = "sqsl"
# Emulators accept any credentials; these keep boto3 from looking for real ones.
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


# Long polls hold a connection for up to 20 s: one pool slot per concurrent batch.
CLIENT_CONFIG = Config(retries={"mode": "standard"}, max_pool_connections=50)


class NoEndpointError(RuntimeError):
    """No emulator is known and real AWS was not asked for."""


@dataclass(frozen=True)
class Endpoint:
    url: str | None  # None: real AWS
    source: str  # "AWS_ENDPOINT_URL", "embedded", "docker" or "aws"
    # None: AWS_DEFAULT_REGION, else the current project's region (read when a client is made).
    region: str | None = None

    @property
    def is_emulator(self) -> bool:
        return self.url is not None

    def environment(self) -> dict[str, str]:
        """Variables that point boto3 (in this process or a child) at this endpoint."""
        if self.url is None:
            return {}
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_DEFAULT_REGION": self.region_name,
            **{name: os.environ.get(name, value) for name, value in EMULATOR_CREDENTIALS.items()},
        }

    def sqs(self) -> SQSClient:
        return boto3.client(
            "sqs",
            region_name=self.region_name,
            endpoint_url=self.url,
            aws_access_key_id=self._credential("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=self._credential("AWS_SECRET_ACCESS_KEY"),
            config=CLIENT_CONFIG,
        )

    def dynamodb(self) -> DynamoDBClient:
        return boto3.client(
            "dynamodb",
            region_name=self.region_name,
            endpoint_url=self.url,
            aws_access_key_id=self._credential("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=self._credential("AWS_SECRET_ACCESS_KEY"),
            config=CLIENT_CONFIG,
        )

    @property
    def region_name(self) -> str:
        if self.region is not None:
            return self.region
        return os.environ.get("AWS_DEFAULT_REGION") or current().region

    def _credential(self, name: str) -> str | None:
        """Emulators take any credentials; real AWS gets boto3's own credential chain."""
        if self.url is None:
            return None
        return os.environ.get(name, EMULATOR_CREDENTIALS[name])


def state_file(project: Project | None = None) -> Path:
    """Where ``up`` records the emulator it started: ``<project>/.local/emulator.json``."""
    return (project or current()).state_dir / STATE_FILE_NAME


def recorded_emulator(project: Project | None = None) -> dict[str, object] | None:
    """What ``up`` recorded about the emulator it started, if anything."""
    try:
        state = json.loads(state_file(project).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def resolve_endpoint(*, aws: bool = False, project: Project | None = None) -> Endpoint:
    configured = os.environ.get("AWS_ENDPOINT_URL", "").strip()
    if configured:
        return Endpoint(url=configured, source="AWS_ENDPOINT_URL")
    state = recorded_emulator(project)
    if state and isinstance(state.get("endpoint"), str):
        problem = _recorded_emulator_problem(project)
        if problem is not None:
            raise NoEndpointError(problem)
        return Endpoint(url=str(state["endpoint"]), source=str(state.get("mode", "embedded")))
    if aws:
        return Endpoint(url=None, source="aws")
    raise NoEndpointError(
        f"no emulator endpoint: run `{DEV_COMMAND} up`, "
        "set AWS_ENDPOINT_URL, or pass --aws to use real AWS"
    )


def _recorded_emulator_problem(project: Project | None = None) -> str | None:
    """Why the recorded embedded emulator must not be used, or None when it may."""
    from . import emulator  # here: emulator imports this module

    path = state_file(project)
    record = emulator.Record.read(path)
    if record is None or record.mode != "embedded" or record.pid is None:
        return None  # docker: the compose stack publishes its port, nothing to verify
    pid, port = record.pid, record.port
    where = f"the emulator recorded in {emulator.display_path(path, project)} (pid {pid})"
    state = emulator.standing(record)
    if state == "gone":
        return f"{where} is not running: run `{DEV_COMMAND} up` to start it again"
    if state == "displaced" and port is not None:
        holder = emulator.port_holder(port)
        what = holder.describe() if holder is not None else "no process"
        return (
            f"{where} does not hold its port {port}, {what} does: "
            f"run `{DEV_COMMAND} down`, then `{DEV_COMMAND} up`"
        )
    return None
