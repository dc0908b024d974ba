"""The service's queues and tables on an emulator, created by the init script itself.

``infra/localstack/ready.d/provision.py`` is the hook LocalStack and MiniStack run inside
their containers. The embedded emulator runs no hooks, so ``dev up`` and the integration
tests load that same file and call its ``provision()``: one definition of the resources,
whichever way the emulator was started, and a second run changes nothing.

Real AWS is not provisioned here: the IaC owns those resources.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Protocol, TypedDict, cast

from .config import PROVISION_SCRIPT, Resources
from .endpoint import Endpoint

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

Log = Callable[[str], None]

# Not importable by its path (``ready.d`` is no package name): loaded under this one.
SCRIPT_MODULE = f"{__package__}._provision_script"


class ProvisioningError(RuntimeError):
    """The init script could not be loaded, or was asked to touch real AWS."""


class Provisioned(TypedDict):
    """What the init script returns: the queues' URLs and ARNs (tables go by name)."""

    source_queue_url: str
    source_queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str


class _Provision(Protocol):
    """The signature of ``provision()`` in the init script."""

    def __call__(
        self,
        sqs: SQSClient,
        dynamodb: DynamoDBClient,
        *,
        source_queue: str,
        dead_letter_queue: str,
        orders_table: str,
        idempotency_table: str | None,
        log: Log,
    ) -> Mapping[str, str]: ...


@functools.cache
def load_provision_script(path: Path = PROVISION_SCRIPT) -> ModuleType:
    """The init script as a module, loaded once per process."""
    spec = importlib.util.spec_from_file_location(SCRIPT_MODULE, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise ProvisioningError(f"no init script at {path}: restore it with `copier update`")
    module = importlib.util.module_from_spec(spec)
    sys.modules[SCRIPT_MODULE] = module  # typing.get_type_hints looks modules up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[SCRIPT_MODULE]
        raise
    return module


def provision_resources(endpoint: Endpoint, resources: Resources, log: Log = print) -> Provisioned:
    """Create or converge ``resources`` on the emulator at ``endpoint``.

    Each line of ``log`` names a resource and what happened to it: "created queue ...",
    "queue ...: updated VisibilityTimeout", "table ...: unchanged".
    """
    if not endpoint.is_emulator:
        raise ProvisioningError(
            "resources in real AWS come from the IaC, not from the local init script: "
            "deploy the stack, or point AWS_ENDPOINT_URL at an emulator"
        )
    provision = cast(_Provision, load_provision_script().provision)
    result = provision(
        endpoint.sqs(),
        endpoint.dynamodb(),
        source_queue=resources.source_queue,
        dead_letter_queue=resources.dead_letter_queue,
        orders_table=resources.orders_table,
        idempotency_table=resources.idempotency_table,
        log=log,
    )
    return Provisioned(
        source_queue_url=result["source_queue_url"],
        source_queue_arn=result["source_queue_arn"],
        dead_letter_queue_url=result["dead_letter_queue_url"],
        dead_letter_queue_arn=result["dead_letter_queue_arn"],
    )
