"""`package`, `deploy-local`, `destroy-local`: the Lambda artifact, and the stack on an emulator.

`deploy-local` deploys the project's IaC (SAM, CloudFormation, or the CDK app's cloud
assembly: ``[tool.sqsl.iac]``) through the emulator's CloudFormation API
(:mod:`.local_deploy`), the path closest to a real deploy that the emulators offer.
Without an emulator it starts the embedded MiniStack but runs no init script: the
stack creates the queues and tables itself. Once deployed, the emulator runs the
function through its own event source mapping: messages sent to the queue are consumed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import emulator, iac_settings, local_deploy, packaging
from .endpoint import Endpoint, NoEndpointError, resolve_endpoint
from .project import Project, current

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

PANEL = "Package and deploy"
# Why there is no stack to deploy, by kind of IaC (the others deploy one).
NO_STACK = {
    "terraform": (
        "this project's IaC is Terraform: apply it to the emulator with tflocal "
        "(terraform-local, which needs the terraform binary), e.g. "
        "`AWS_ENDPOINT_URL=$(sqsl endpoint) tflocal -chdir={path} apply` (a rendered "
        "service: `make tflocal-apply`)"
    ),
    "none": (
        'this project declares no IaC ([tool.sqsl.iac] kind = "none"): there is no stack to deploy'
    ),
}

StackNameOption = Annotated[
    str | None,
    typer.Option(
        help="Name of the CloudFormation stack \\[default: the project's stack name]",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    group = typer.Typer()
    group.command(rich_help_panel=PANEL)(package)
    group.command("deploy-local", rich_help_panel=PANEL)(deploy_local)
    group.command("destroy-local", rich_help_panel=PANEL)(destroy_local)
    app.add_typer(group)


def package(
    build_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where to write lambda/ and lambda.zip \\[default: the project's build/]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Build the Lambda artifact: build/lambda/ and build/lambda.zip (runtime code only)."""
    project = current()
    iac_settings.require(project, "function.handler", "function.runtime")
    _package(project, build_dir)


def deploy_local(
    stack_name: StackNameOption = None,
    build: Annotated[
        bool, typer.Option(help="Package first (--no-build: deploy the existing build/)")
    ] = True,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the stack")
    ] = local_deploy.WAIT_TIMEOUT_SECONDS,
) -> None:
    """Deploy the stack to the emulator (CloudFormation API), starting one if none runs."""
    project = current()
    _require_stack(project)
    if build:
        iac_settings.require(project, "function.handler", "function.runtime")
    stack_name = stack_name or project.stack_name
    target = _emulator(project, start=True)
    artifact = _package(project, None) if build else None
    try:
        with local_deploy.scratch_directory() as scratch:
            stack = _stack(project, stack_name, artifact, scratch)
            if local_deploy.stack_status(target, stack_name) is None:
                _note_existing_queue(project, target, stack_name)
            deployed = local_deploy.deploy(target, stack, log=_log, timeout=timeout)
    except (local_deploy.DeployError, packaging.PackagingError) as error:
        _fail(str(error))
    except (BotoCoreError, ClientError) as error:
        _fail(f"deploying {stack_name} to {target.url} failed: {error}")
    table = Table(title=f"Stack {stack_name}: {deployed.status}", title_justify="left")
    table.add_column("output")
    table.add_column("value", overflow="fold")
    for key, value in sorted(deployed.outputs.items()):
        table.add_row(key, value)
    console.print(table)
    console.print(
        "The emulator now runs the function on each message sent to the queue "
        "(its own event source mapping). `sqsl destroy-local` deletes the stack."
    )


def destroy_local(
    stack_name: StackNameOption = None,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the deletion")
    ] = local_deploy.WAIT_TIMEOUT_SECONDS,
) -> None:
    """Delete the stack that deploy-local created on the emulator."""
    project = current()
    _require_stack(project)
    stack_name = stack_name or project.stack_name
    target = _emulator(project, start=False)
    try:
        retained = local_deploy.destroy(target, stack_name, log=_log, timeout=timeout)
    except local_deploy.DeployError as error:
        _fail(str(error))
    except (BotoCoreError, ClientError) as error:
        _fail(f"deleting {stack_name} at {target.url} failed: {error}")
    if retained:
        console.print(
            "Kept by DeletionPolicy: Retain, as AWS would: "
            f"{', '.join(retained)}. AWS would refuse to create them again while they "
            "exist; `sqsl down` discards the emulator and them."
        )


def _stack(
    project: Project, stack_name: str, artifact: packaging.Artifact | None, scratch: Path
) -> local_deploy.Stack:
    if project.iac.kind in ("sam", "cloudformation"):
        zip_file = (
            artifact.zip_file if artifact else packaging.build_dir_of(project) / packaging.ZIP_NAME
        )
        if not zip_file.is_file():
            _fail(f"no {emulator.display_path(zip_file, project)}: run `sqsl package` first")
        return local_deploy.sam_stack(zip_file, stack_name=stack_name, project=project)
    # cdk: the synthesized template references build/lambda/ as a CDK asset; the deploy
    # zips and uploads it where the asset manifest says. A new artifact is a new asset:
    # synthesize again after packaging, else only when the assembly is stale.
    if project.iac.cdk_app and (artifact is not None or local_deploy.stale_synth(project)):
        console.print(f"synthesizing the CDK app (python -m {project.iac.cdk_app})")
        local_deploy.synthesize(project, log=_log)
    return local_deploy.cdk_stack(stack_name=stack_name, scratch=scratch, project=project)


def _require_stack(project: Project) -> None:
    """Fail before anything starts when this project's IaC is no CloudFormation stack."""
    reason = NO_STACK.get(project.iac.kind)
    if reason is not None:
        path = project.iac.path or "infra/terraform"
        _fail(reason.format(path=path))


def _package(project: Project, build_dir: Path | None) -> packaging.Artifact:
    try:
        return packaging.build(build_dir, project=project, log=_log)
    except packaging.PackagingError as error:
        _fail(str(error))


def _emulator(project: Project, *, start: bool) -> Endpoint:
    """AWS_ENDPOINT_URL or the recorded emulator; else (``start``) a new embedded one,
    without the init script's resources: the stack creates its own."""
    try:
        target = resolve_endpoint(project=project)
    except NoEndpointError as error:
        if not start:
            _fail(str(error))
        console.print("No emulator runs: starting the embedded MiniStack (no init script).")
        try:
            record = emulator.start_embedded(
                emulator.Layout.default(project), log=_log, region=project.region
            )
        except emulator.EmulatorError as failure:
            _fail(str(failure))
        return Endpoint(url=record.endpoint, source=record.mode, region=project.region)
    if target.url is not None and not emulator.is_healthy(target.url):
        _fail(f"the emulator at {target.url} does not answer: `sqsl up`, or `sqsl down` first")
    return target


def _note_existing_queue(project: Project, target: Endpoint, stack_name: str) -> None:
    """Say so when the queue a new stack declares exists already (`up` created it): the
    emulator's stack then adopts it, and destroy-local deletes it."""
    source_queue = project.resources().source_queue
    try:
        target.sqs().get_queue_url(QueueName=source_queue)
    except ClientError:
        return
    if os.environ.get("AWS_ENDPOINT_URL"):
        where = "AWS_ENDPOINT_URL's emulator"
    else:
        where = "this emulator (from `sqsl up`?)"
    console.print(
        f"[yellow]note:[/] queue {escape(source_queue)} already exists on {where}; the stack "
        f"{escape(stack_name)} declares the same name. For a clean deploy: `sqsl down`, then "
        "`sqsl deploy-local`."
    )


def _log(line: str) -> None:
    console.print(f"  {escape(line)}")


def _fail(message: str) -> NoReturn:
    errors.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(1)
