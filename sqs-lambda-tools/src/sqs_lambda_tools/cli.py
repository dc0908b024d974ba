"""`sqsl`: the local loop's commands, one module per group.

- emulator_cli: up, down, status, endpoint (the embedded emulator or docker compose)
- queues_cli: send, dlq, redrive, purge
- run_cli: run (the local event source mapping), invoke (one event file)
- deploy_cli: package (the Lambda artifact), deploy-local, destroy-local (the IaC's stack)
- preflight: preflight (the deployment against the pattern's rules)
- bench_cli: bench (the handler alone), bench-local (the local loop on the emulator)
- events_cli: events (the sample events, from the project's sample function)

Every command works on one project: ``--project DIR``, else ``$SQSL_PROJECT``, else the
nearest folder up from the current one whose ``pyproject.toml`` has ``[tool.sqsl]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from . import bench_cli, deploy_cli, emulator_cli, events_cli, project, queues_cli, run_cli
from .preflight import cli as preflight_cli

#: Bad settings: the message names the file and the key, and nothing was started.
SETTINGS_EXIT_CODE = 2


class _Commands(TyperGroup):
    """The commands, with one answer to bad settings wherever they are found."""

    def invoke(self, ctx: Any) -> Any:  # ctx: a click Context (typer vendors click)
        try:
            return super().invoke(ctx)
        except project.SettingsError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(SETTINGS_EXIT_CODE) from None


app = typer.Typer(
    cls=_Commands,
    help=(
        "Local tools for a Python AWS Lambda function that consumes an SQS queue: an "
        "emulator with the project's queues and tables, the function behind a local event "
        "source mapping, queue commands, packaging, preflight checks and benchmarks. "
        # \\[: a bracket rich prints, not markup.
        "They read the project's settings from \\[tool.sqsl] in its pyproject.toml (or, "
        "without that table, from its IaC)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _select_project(
    folder: Annotated[
        Path | None,
        typer.Option(
            "--project",
            envvar=project.PROJECT_VARIABLE,
            metavar="DIR",
            exists=True,
            file_okay=False,
            help="The project's folder [default: the nearest folder up from here whose "
            "pyproject.toml has \\[tool.sqsl]]",
            show_default=False,
        ),
    ] = None,
) -> None:
    # Loaded before any command starts, so that bad settings stop it before anything runs.
    if folder is not None:
        project.use(project.load(folder))
    project.current()


for module in (
    emulator_cli,
    queues_cli,
    run_cli,
    deploy_cli,
    preflight_cli,
    bench_cli,
    events_cli,
):
    module.register(app)


def main() -> None:
    """The ``sqsl`` command."""
    app(prog_name="sqsl")
