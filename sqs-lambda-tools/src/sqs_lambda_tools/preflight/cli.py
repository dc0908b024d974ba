"""``preflight``: check a deployment against the rules this pattern depends on.

Without a source it checks the project's own IaC (``[tool.sqsl.iac]``: a SAM or
CloudFormation template, the CDK app's cloud assembly, synthesized first when stale, or a
Terraform folder) and compares it with the project's ``[tool.sqsl]`` settings;
``--template``, ``--cdk-out`` and ``--terraform`` check any other, ``--live`` what is
deployed. Exit status: 0 clean or warnings only, 1 an error-level finding, 2 the input
cannot be used.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from .. import iac_settings, local_deploy
from ..endpoint import Endpoint, NoEndpointError, resolve_endpoint
from ..project import Project, SettingsError, current
from . import cloudformation, live, report, terraform
from .model import Deployment, SourceError
from .rules import evaluate

UNUSABLE = 2
DEFAULT_REGION = "us-east-1"
# How the project's function reaches the emulator, by kind of IaC, for `--live` when it is
# not there.
DEPLOY_LOCAL = {
    "sam": "`sqsl deploy-local` deploys this project's SAM stack to the emulator",
    "cloudformation": (
        "`sqsl deploy-local` deploys this project's CloudFormation stack to the emulator"
    ),
    "cdk": (
        "`sqsl deploy-local` synthesizes this project's CDK app and deploys the stack to the "
        "emulator"
    ),
    # The stack creates the queues and tables itself: it needs an emulator where `up` has
    # not created them (DynamoDB refuses to create a table twice).
    "terraform": (
        "`sqsl down`, `sqsl up --bare` (an emulator with nothing in it), `sqsl package`, then "
        "apply {path} there with tflocal (terraform-local; it needs the terraform binary; a "
        "rendered service: `make tflocal-apply`)"
    ),
    "none": (
        "This project declares no IaC: deploy the function to the emulator yourself, "
        "or name one deployed there with --function-name"
    ),
}

Format = Literal["table", "json"]

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("preflight", rich_help_panel="Checks")(preflight)


def preflight(
    template: Annotated[
        Path | None,
        typer.Option(
            "--template",
            help="A CloudFormation or SAM template (YAML or JSON) to check.",
            show_default=False,
        ),
    ] = None,
    cdk_out: Annotated[
        Path | None,
        typer.Option(
            "--cdk-out",
            help="A CDK cloud assembly (cdk synth's output folder): every *.template.json.",
            show_default=False,
        ),
    ] = None,
    terraform_dir: Annotated[
        Path | None,
        typer.Option(
            "--terraform", help="A folder of Terraform .tf files to check.", show_default=False
        ),
    ] = None,
    use_live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Check what is deployed: the function, its SQS mappings, queues, DLQs and "
            "alarms, at AWS_ENDPOINT_URL, the emulator `sqsl up` started, or (--aws) AWS.",
        ),
    ] = False,
    function_name: Annotated[
        str | None,
        typer.Option(
            "--function-name",
            help="With --live: the function to check \\[default: the project's function].",
            show_default=False,
        ),
    ] = None,
    aws: Annotated[
        bool,
        typer.Option(
            "--aws",
            help="With --live: use real AWS (your usual credentials) when no emulator runs "
            "and AWS_ENDPOINT_URL is unset.",
        ),
    ] = False,
    output: Annotated[
        Format, typer.Option("--format", help="table for people, json for programs.")
    ] = "table",
) -> None:
    """Check a deployment against the SQS/Lambda rules (SQSL001-SQSL013).

    Reads the queues, function, event source mapping, tables and alarms; without a source,
    from the project's own IaC (\\[tool.sqsl.iac]), and then also compares it with the
    project's \\[tool.sqsl] settings (SQSL013). Exit status: 0 no error (warnings
    allowed), 1 an error-level finding, 2 unusable input.
    """
    chosen = [
        option
        for option, value in (
            ("--template", template),
            ("--cdk-out", cdk_out),
            ("--terraform", terraform_dir),
            ("--live", use_live or None),
        )
        if value is not None
    ]
    if len(chosen) > 1:
        _unusable(f"choose one source, got {' and '.join(chosen)}")
    if function_name is not None and not use_live:
        _unusable("--function-name goes with --live")
    try:
        deployments = _read(template, cdk_out, terraform_dir, use_live, function_name, aws)
        _require_mappings(deployments)
    except (SourceError, local_deploy.DeployError) as error:
        _unusable(str(error))
    results = [
        report.Checked(deployment.source, evaluate(deployment), deployment.notes)
        for deployment in deployments
    ]
    if output == "json":
        typer.echo(report.as_json(results))
    else:
        report.print_table(console, results)
    if report.counts(results)["errors"]:
        raise typer.Exit(1)


def _read(
    template: Path | None,
    cdk_out: Path | None,
    terraform_dir: Path | None,
    use_live: bool,
    function_name: str | None,
    aws: bool,
) -> list[Deployment]:
    if template is not None:
        return [cloudformation.load_template(template)]
    if cdk_out is not None:
        return cloudformation.load_cdk_out(cdk_out)
    if terraform_dir is not None:
        return [terraform.load_directory(terraform_dir)]
    if use_live:
        return [_live(function_name, aws=aws)]
    project = current()
    return [_against_settings(deployment, project) for deployment in own_iac(project)]


def _against_settings(deployment: Deployment, project: Project) -> Deployment:
    """The project's own deployment, to be compared with its [tool.sqsl] table (SQSL013):
    not when the settings were read from that same IaC."""
    if not iac_settings.from_table(project):
        return deployment
    return replace(deployment, settings=project)


def _require_mappings(deployments: list[Deployment]) -> None:
    for deployment in deployments:
        if not deployment.mappings:
            raise SourceError(
                f"{deployment.source}: no event source mapping from an SQS queue: nothing to check"
            )


def own_iac(project: Project | None = None) -> list[Deployment]:
    """The project's IaC, as ``[tool.sqsl.iac]`` names it."""
    project = project or current()
    path = project.iac_path
    kind = project.iac.kind
    if kind in ("sam", "cloudformation") and path is not None:
        return [cloudformation.load_template(path)]
    if kind == "cdk" and path is not None:
        if project.iac.cdk_app:
            stale = local_deploy.stale_synth(project)
            if stale is not None:
                _synthesize(project, stale)
        return cloudformation.load_cdk_out(path)
    if kind == "terraform" and path is not None:
        return [terraform.load_directory(path)]
    raise SourceError(
        "this project declares no IaC ([tool.sqsl.iac] kind): pass --live to check a "
        "deployment, or --template, --cdk-out or --terraform to check one elsewhere"
    )


def _synthesize(project: Project, reason: str) -> None:
    """What ``cdk synth`` does, before the check: the artifact if there is none, then the
    CDK app. Progress goes to stderr, so that ``--format json`` prints nothing but the
    report."""
    errors.print(
        f"preflight: {escape(reason)}: synthesizing the CDK app first "
        f"(python -m {escape(str(project.iac.cdk_app))})"
    )
    local_deploy.synthesize(project, log=lambda line: errors.print(f"  {escape(line)}"))


def _live(function_name: str | None, *, aws: bool) -> Deployment:
    project = _project() if function_name is not None else current()
    if function_name is None and project is not None:
        iac_settings.require(project, "function.name")
    try:
        endpoint = resolve_endpoint(aws=aws, project=project)
    except NoEndpointError as error:
        raise SourceError(str(error)) from error
    region = project.region if project is not None else DEFAULT_REGION
    where = endpoint.url or f"AWS ({region})"
    clients = live.Clients.for_endpoint(endpoint, region)
    name = function_name or (project.function.name if project is not None else "")
    try:
        deployment = live.load(name, clients, where)
    except live.FunctionNotFoundError as error:
        raise SourceError(
            _not_deployed(error, named=function_name is not None, at=endpoint, project=project)
        ) from error
    if function_name is None and project is not None:
        return _against_settings(deployment, project)
    return deployment


def _project() -> Project | None:
    """The current project, or None when there is none: an explicit source needs none."""
    try:
        return current()
    except SettingsError:
        return None


def _not_deployed(
    error: live.FunctionNotFoundError, *, named: bool, at: Endpoint, project: Project | None
) -> str:
    """What to do when the function is not there: deploy it, or name another."""
    if named:
        return f"{error}: check the name given to --function-name"
    if at.url is None:
        return (
            f"{error}: this service is not deployed there; deploy it first, or name the "
            "deployed function with --function-name"
        )
    kind = project.iac.kind if project is not None else "none"
    path = (project.iac.path if project is not None else None) or "the Terraform folder"
    advice = DEPLOY_LOCAL[kind].format(path=path)
    return (
        f"{error}: nothing is deployed there yet (`sqsl up` creates the queues and tables, "
        f"not the function). {advice}; then run `sqsl preflight --live` again"
    )


def _unusable(message: str) -> NoReturn:
    errors.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(UNUSABLE)
