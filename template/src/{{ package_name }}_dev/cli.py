"""`python -m <package>_dev`: the local loop's commands, one module per group.

- emulator_cli: up, down, status (the embedded emulator or docker compose)
- queues_cli: send, dlq, redrive, purge
- run_cli: run (the local event source mapping), invoke (one event file)
- deploy_cli: package (the Lambda artifact), deploy-local, destroy-local (the IaC's stack)
- preflight: preflight (the deployment against the pattern's rules)
"""

from __future__ import annotations

import typer

from . import deploy_cli, emulator_cli, queues_cli, run_cli
from .preflight import cli as preflight_cli

app = typer.Typer(
    help="Run this service locally: an emulator, its queues, and the handler behind them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (emulator_cli, queues_cli, run_cli, deploy_cli, preflight_cli):
    module.register(app)
