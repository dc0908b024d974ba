"""Deploy a CloudFormation stack to an emulator, the way AWS would receive it.

The most real path the emulators support: upload the code to S3, then CreateStack or
UpdateStack with the template, so the emulator's CloudFormation (and, for SAM, its SAM
transform) creates the queues, the mapping, the function and the tables from the IaC
itself, not from the local init script.

One deploy takes any template and the files it references (:class:`Stack`); the kinds
of IaC only say how to get there:

- SAM or CloudFormation (:func:`sam_stack`): the project's template, whose function's
  code (SAM ``CodeUri``, CloudFormation ``Code``) names the packaged tree
  ``build/lambda/`` or the project's code folder; it is rewritten to the uploaded
  ``build/lambda.zip``, as ``sam deploy`` / ``aws cloudformation package`` would.
- CDK (:func:`cdk_stack`): the synthesized cloud assembly (``build/cdk.out``); its asset
  manifest (``<stack>.assets.json``) names the bucket and key of each asset, and the
  template checks the bootstrap version in SSM, so that parameter is put on the emulator.
  :func:`synthesize` runs the CDK app (``python -m <iac.cdk_app>``) when the assembly is
  older than what the app reads.

Emulators only: real AWS is deployed with ``sam deploy`` / ``cdk deploy`` / Terraform.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from . import cfn_yaml, config, packaging
from .endpoint import CLIENT_CONFIG, Endpoint
from .packaging import sha256_of, write_zip
from .project import PYPROJECT, Project, current

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.type_defs import StackEventTypeDef
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient

Log = Callable[[str], None]

# IAM resources without names (CAPABILITY_IAM); AUTO_EXPAND for the SAM transform.
CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")
# The CDK's default bootstrap qualifier, and a bootstrap version recent enough for any
# template a current aws-cdk-lib synthesizes (its CheckBootstrapVersion rule refuses 1-5).
CDK_BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
CDK_BOOTSTRAP_VERSION = "30"
WAIT_TIMEOUT_SECONDS = 300.0
POLL_SECONDS = 0.5
_NO_UPDATES = "No updates are to be performed"
_DONE_STATES = ("_COMPLETE", "_FAILED")


class DeployError(RuntimeError):
    """The stack could not be deployed or deleted; the message says why."""


@dataclass(frozen=True)
class Upload:
    """A local file the template references at ``s3://bucket/key``."""

    path: Path
    bucket: str
    key: str


@dataclass(frozen=True)
class Stack:
    """What one deploy sends: a template body, and what must exist before it is sent."""

    name: str
    template_body: str
    uploads: tuple[Upload, ...] = ()
    parameters: Mapping[str, str] = field(default_factory=dict)
    # SSM parameters the template resolves (the CDK's bootstrap version).
    ssm_parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Deployed:
    stack_id: str
    status: str
    outputs: dict[str, str]
    changed: bool


# --- SAM -------------------------------------------------------------------------------


def sam_stack(
    artifact: Path,
    *,
    stack_name: str,
    template: Path | None = None,
    project: Project | None = None,
) -> Stack:
    """The template (default: the project's) with every function whose code is the
    packaged tree ``build/lambda/`` or the project's code folder pointed at ``artifact``,
    uploaded to S3 under its content hash (the same code, the same key).

    SAM functions' ``CodeUri`` and CloudFormation functions' ``Code`` (a local folder, as
    ``aws cloudformation package`` takes it) are rewritten.
    """
    project = project or current()
    template = template or project.iac_path
    if template is None or not template.is_file():
        raise DeployError(f"no template at {template or project.root / 'template.yaml'}")
    body = load_cloudformation_yaml(template.read_text(encoding="utf-8"))
    upload = Upload(
        path=artifact,
        bucket=artifact_bucket(stack_name),
        key=f"{stack_name}/{sha256_of(artifact)}.zip",
    )
    code_folders = _code_folders(project)
    rewritten = 0
    resources = body.get("Resources", {})
    for resource in resources.values():
        if not isinstance(resource, dict):
            continue
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function":
            code, location = "CodeUri", {"Bucket": upload.bucket, "Key": upload.key}
        elif resource.get("Type") == "AWS::Lambda::Function":
            code, location = "Code", {"S3Bucket": upload.bucket, "S3Key": upload.key}
        else:
            continue
        if _folder(properties.get(code), template) in code_folders:
            properties[code] = location
            rewritten += 1
    if rewritten == 0:
        shown = " or ".join(f"{_relative(folder, project.root)}/" for folder in code_folders)
        raise DeployError(
            f"no function in {template.name} has its code (CodeUri, Code) at {shown}: "
            "the artifact of `package` would not be deployed"
        )
    return Stack(name=stack_name, template_body=json.dumps(body), uploads=(upload,))


def _code_folders(project: Project) -> list[Path]:
    """What a template's code may name for the artifact: the packaged tree, or the code
    folder the package is built from."""
    return list(dict.fromkeys([packaging.tree_of(project).resolve(), project.code_dir.resolve()]))


def _folder(value: Any, template: Path) -> Path | None:
    """A local folder a template names (relative to the template), or None (S3, inline)."""
    if not isinstance(value, str) or "://" in value:
        return None
    return (template.parent / value).resolve()


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.resolve()))
    except ValueError:
        return str(path)


def load_cloudformation_yaml(text: str) -> dict[str, Any]:
    """A CloudFormation/SAM YAML template as the JSON structure CloudFormation reads."""
    loaded = cfn_yaml.load(text)
    if not isinstance(loaded, dict):
        raise DeployError("the template is not a YAML mapping")
    return loaded


# --- CDK -------------------------------------------------------------------------------


def cdk_stack(
    cdk_out: Path | None = None,
    *,
    stack_name: str | None = None,
    scratch: Path,
    region: str | None = None,
    project: Project | None = None,
) -> Stack:
    """The stack synthesized into ``cdk_out`` (``cdk synth``; default: the project's cloud
    assembly), with its file assets.

    ``stack_name`` selects one stack when the app has several. Directory assets are
    zipped into ``scratch`` (deterministically) as the CDK CLI would before uploading.
    ``region`` (default: the project's) fills the assets' ``${AWS::Region}``.
    """
    if cdk_out is None or region is None:
        project = project or current()
        cdk_out = cdk_out or project.iac_path or project.root / "build" / "cdk.out"
        region = region or project.region
    manifest_file = cdk_out / "manifest.json"
    if not manifest_file.is_file():
        raise DeployError(f"no {manifest_file}: synthesize the CDK app first")
    artifacts: dict[str, Any] = json.loads(manifest_file.read_text(encoding="utf-8"))["artifacts"]
    stacks = {
        name: artifact
        for name, artifact in artifacts.items()
        if artifact.get("type") == "aws:cloudformation:stack"
        and (stack_name is None or name == stack_name)
    }
    if len(stacks) != 1:
        raise DeployError(
            f"{manifest_file} has stacks {sorted(stacks) or 'none'}: "
            "name exactly one with --stack-name"
        )
    ((name, artifact),) = stacks.items()
    template = cdk_out / artifact["properties"]["templateFile"]
    uploads: list[Upload] = []
    for dependency in artifact.get("dependencies", []):
        if artifacts.get(dependency, {}).get("type") != "cdk:asset-manifest":
            continue
        assets_file = cdk_out / artifacts[dependency]["properties"]["file"]
        uploads.extend(_cdk_uploads(assets_file, scratch=scratch, region=region))
    return Stack(
        name=name,
        template_body=template.read_text(encoding="utf-8"),
        uploads=tuple(uploads),
        ssm_parameters={CDK_BOOTSTRAP_PARAMETER: CDK_BOOTSTRAP_VERSION},
    )


def _cdk_uploads(assets_file: Path, *, scratch: Path, region: str) -> Iterator[Upload]:
    manifest: dict[str, Any] = json.loads(assets_file.read_text(encoding="utf-8"))
    for asset_id, asset in manifest.get("files", {}).items():
        source = assets_file.parent / asset["source"]["path"]
        if asset["source"].get("packaging") == "zip" and source.is_dir():
            archive = scratch / f"{asset_id}.zip"
            write_zip(source, archive)
            source = archive
        for destination in asset["destinations"].values():
            yield Upload(
                path=source,
                bucket=_placeholders(destination["bucketName"], region),
                key=_placeholders(destination["objectKey"], region),
            )


def _placeholders(value: str, region: str) -> str:
    return (
        value.replace("${AWS::AccountId}", config.ACCOUNT_ID)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )


def stale_synth(project: Project | None = None) -> str | None:
    """Why the project's cloud assembly must be synthesized; None if it is current.

    It is stale when missing, or older than any file the app reads: the app's package
    (``<cdk_app>``'s top-level package, in the code folder, ``src/`` or the root),
    ``cdk.json`` and ``pyproject.toml``.
    """
    project = project or current()
    cdk_out = project.iac_path or project.root / "build" / "cdk.out"
    manifest = cdk_out / "manifest.json"
    if not manifest.is_file():
        return f"no {_relative(cdk_out, project.root)} yet"
    synthesized = manifest.stat().st_mtime
    for path in sorted(_files(cdk_inputs(project))):
        if path.stat().st_mtime > synthesized:
            shown = _relative(path.resolve(), project.root)
            return f"{shown} changed since {_relative(cdk_out, project.root)} was synthesized"
    return None


def cdk_inputs(project: Project) -> tuple[Path, ...]:
    """What the CDK app reads: a cloud assembly older than any of them is stale."""
    inputs = [project.root / "cdk.json", project.root / PYPROJECT]
    if project.iac.cdk_app:
        package = project.iac.cdk_app.split(".", 1)[0]
        for folder in (project.code_dir, project.root / "src", project.root):
            if (folder / package).is_dir():
                inputs.append(folder / package)
                break
    return tuple(inputs)


def _files(paths: tuple[Path, ...]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                file
                for file in path.rglob("*")
                if file.is_file() and "__pycache__" not in file.parts
            )
        elif path.is_file():
            found.append(path)
    return found


def synthesize(project: Project | None = None, *, log: Log = print) -> None:
    """Synthesize the project's CDK app into its cloud assembly, as ``cdk synth`` would:
    the Lambda artifact first when there is none (the app deploys ``build/lambda/``),
    then ``python -m <iac.cdk_app>`` with ``CDK_OUTDIR`` set."""
    project = project or current()
    if not project.iac.cdk_app:
        raise DeployError(
            f"{project.source}: no CDK app to synthesize; set [tool.sqsl.iac] cdk_app "
            '(the module run with `python -m`, e.g. "my_service_infra.app")'
        )
    if not (packaging.tree_of(project) / project.function.package).exists():
        try:
            packaging.build(project=project, log=log)
        except packaging.PackagingError as error:
            raise DeployError(
                f"packaging the Lambda artifact for the synth failed: {error}"
            ) from error
    result = run_cdk_app(project)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-20:]
        raise DeployError(
            f"the CDK app failed (exit {result.returncode}); `python -m "
            f"{project.iac.cdk_app}` runs it too:\n" + "\n".join(output)
        )


def run_cdk_app(project: Project) -> subprocess.CompletedProcess[str]:
    """``python -m <iac.cdk_app>`` from the project's root, writing to its cloud assembly."""
    cdk_out = project.iac_path or project.root / "build" / "cdk.out"
    return subprocess.run(
        [sys.executable, "-m", str(project.iac.cdk_app)],
        cwd=project.root,
        env={**os.environ, "CDK_OUTDIR": str(cdk_out)},
        capture_output=True,
        text=True,
        check=False,
    )


# --- Deploy and destroy ----------------------------------------------------------------


def stack_status(endpoint: Endpoint, stack_name: str) -> str | None:
    """The stack's status on the emulator, or None when it has no such stack."""
    return _status(_cloudformation(endpoint), stack_name)


def artifact_bucket(stack_name: str) -> str:
    """The bucket of the stack's artifacts: a valid S3 name derived from the stack's."""
    name = re.sub(r"[^a-z0-9-]+", "-", stack_name.lower()).strip("-")
    return f"{name[:50]}-artifacts"


def deploy(
    endpoint: Endpoint,
    stack: Stack,
    *,
    log: Log = print,
    timeout: float = WAIT_TIMEOUT_SECONDS,
) -> Deployed:
    """Upload, then create or update ``stack`` and wait for it; raise with the failing
    resources' reasons when it does not complete."""
    _require_emulator(endpoint)
    cloudformation = _cloudformation(endpoint)
    s3 = _s3(endpoint)
    for upload in stack.uploads:
        _ensure_bucket(s3, upload.bucket, endpoint.region_name)
        where = f"s3://{upload.bucket}/{upload.key}"
        size = upload.path.stat().st_size
        if _object_size(s3, upload.bucket, upload.key) == size:
            # Keys name the content (a hash): the same key and size is the same file.
            log(f"{upload.path.name} is already at {where}")
            continue
        log(f"uploading {upload.path.name} ({size / 1_048_576:.1f} MiB) to {where}")
        s3.upload_file(str(upload.path), upload.bucket, upload.key)
    if stack.ssm_parameters:
        ssm = _ssm(endpoint)
        for name, value in stack.ssm_parameters.items():
            log(f"SSM parameter {name} = {value}")
            ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)

    existing = _status(cloudformation, stack.name)
    if existing == "ROLLBACK_COMPLETE":
        # A stack whose creation failed can only be deleted (as in AWS).
        log(f"stack {stack.name} is ROLLBACK_COMPLETE (its creation failed): deleting it first")
        destroy(endpoint, stack.name, log=log, timeout=timeout)
        existing = None
    parameters = [
        {"ParameterKey": key, "ParameterValue": value} for key, value in stack.parameters.items()
    ]
    # Only the events of this operation are printed, not those of earlier deploys.
    earlier = (
        {event["EventId"] for event in _events(cloudformation, stack.name)} if existing else set()
    )
    started = time.monotonic()
    if existing is None:
        log(f"creating stack {stack.name} at {endpoint.url}")
        stack_id = cloudformation.create_stack(
            StackName=stack.name,
            TemplateBody=stack.template_body,
            Parameters=parameters,  # type: ignore[arg-type]
            Capabilities=list(CAPABILITIES),  # type: ignore[arg-type]
        )["StackId"]
    else:
        log(f"updating stack {stack.name} ({existing}) at {endpoint.url}")
        try:
            stack_id = cloudformation.update_stack(
                StackName=stack.name,
                TemplateBody=stack.template_body,
                Parameters=parameters,  # type: ignore[arg-type]
                Capabilities=list(CAPABILITIES),  # type: ignore[arg-type]
            )["StackId"]
        except ClientError as error:
            if _NO_UPDATES not in str(error):
                raise
            log("no changes: the deployed stack already matches")
            described = cloudformation.describe_stacks(StackName=stack.name)["Stacks"][0]
            return Deployed(
                stack_id=described["StackId"],
                status=described["StackStatus"],
                outputs=_outputs(described),
                changed=False,
            )
    status = _wait(cloudformation, stack_id, log=log, timeout=timeout, seen=earlier)
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        failures = "\n".join(_failures(cloudformation, stack_id)) or "(no failure event)"
        raise DeployError(f"stack {stack.name} ended {status}; failing resources:\n{failures}")
    described = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]
    log(f"stack {stack.name}: {status} in {time.monotonic() - started:.1f} s")
    return Deployed(stack_id=stack_id, status=status, outputs=_outputs(described), changed=True)


def destroy(
    endpoint: Endpoint,
    stack_name: str,
    *,
    log: Log = print,
    timeout: float = WAIT_TIMEOUT_SECONDS,
) -> list[str]:
    """Delete the stack and wait; the resources it kept (``DeletionPolicy: Retain``)."""
    _require_emulator(endpoint)
    cloudformation = _cloudformation(endpoint)
    if _status(cloudformation, stack_name) is None:
        log(f"no stack {stack_name} at {endpoint.url}: nothing to delete")
        return []
    stack_id = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackId"]
    earlier = {event["EventId"] for event in _events(cloudformation, stack_id)}
    log(f"deleting stack {stack_name} at {endpoint.url}")
    cloudformation.delete_stack(StackName=stack_id)
    status = _wait(cloudformation, stack_id, log=log, timeout=timeout, seen=earlier)
    if status != "DELETE_COMPLETE":
        failures = "\n".join(_failures(cloudformation, stack_id)) or "(no failure event)"
        raise DeployError(f"stack {stack_name} ended {status}; failing resources:\n{failures}")
    return sorted(
        {
            f"{event['LogicalResourceId']} ({event.get('PhysicalResourceId', '?')})"
            for event in _events(cloudformation, stack_id)
            if event.get("ResourceStatus") == "DELETE_SKIPPED"
        }
    )


def _wait(
    cloudformation: CloudFormationClient,
    stack_id: str,
    *,
    log: Log,
    timeout: float,
    seen: set[str],
) -> str:
    """Poll until the stack leaves IN_PROGRESS, logging each resource event not in
    ``seen`` once."""
    seen = set(seen)
    deadline = time.monotonic() + timeout
    while True:
        for event in reversed(_events(cloudformation, stack_id)):  # oldest first
            if event["EventId"] in seen:
                continue
            seen.add(event["EventId"])
            reason = event.get("ResourceStatusReason")
            log(
                f"  {event['LogicalResourceId']} ({event.get('ResourceType', '?')}): "
                f"{event.get('ResourceStatus', '?')}{f' - {reason}' if reason else ''}"
            )
        status = _status(cloudformation, stack_id)
        if status is None:  # deleted stacks vanish by name on some emulators
            return "DELETE_COMPLETE"
        if status.endswith(_DONE_STATES) and "IN_PROGRESS" not in status:
            return status
        if time.monotonic() >= deadline:
            raise DeployError(f"stack {stack_id} still {status} after {timeout:g} s")
        time.sleep(POLL_SECONDS)


def _status(cloudformation: CloudFormationClient, stack: str) -> str | None:
    """The stack's status, or None when there is no such stack (or it was deleted)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    if not stacks or stacks[0]["StackStatus"] == "DELETE_COMPLETE":
        return None
    return stacks[0]["StackStatus"]


def _events(cloudformation: CloudFormationClient, stack_id: str) -> list[StackEventTypeDef]:
    """The stack's events, newest first (as the API returns them)."""
    try:
        pages = cloudformation.get_paginator("describe_stack_events").paginate(StackName=stack_id)
        return [event for page in pages for event in page["StackEvents"]]
    except ClientError as error:
        if "does not exist" in str(error):
            return []
        raise


def _failures(cloudformation: CloudFormationClient, stack_id: str) -> list[str]:
    return [
        f"  {event['LogicalResourceId']} ({event.get('ResourceType', '?')}): "
        f"{event.get('ResourceStatus')} - {event.get('ResourceStatusReason', 'no reason given')}"
        for event in reversed(_events(cloudformation, stack_id))
        if str(event.get("ResourceStatus", "")).endswith("_FAILED")
    ]


def _outputs(described: Any) -> dict[str, str]:
    return {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}


def _ensure_bucket(s3: S3Client, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(
                Bucket=bucket,
                CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
            )


def _object_size(s3: S3Client, bucket: str, key: str) -> int | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    except ClientError:
        return None


def _require_emulator(endpoint: Endpoint) -> None:
    if not endpoint.is_emulator:
        raise DeployError(
            "deploy-local deploys to an emulator only: for AWS use the IaC's own tool "
            "(sam deploy, cdk deploy, terraform apply)"
        )


def _session_kwargs(endpoint: Endpoint) -> dict[str, Any]:
    environment = endpoint.environment()
    return {
        "region_name": environment["AWS_DEFAULT_REGION"],
        "endpoint_url": endpoint.url,
        "aws_access_key_id": environment["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": environment["AWS_SECRET_ACCESS_KEY"],
        "config": CLIENT_CONFIG,
    }


def _cloudformation(endpoint: Endpoint) -> CloudFormationClient:
    return boto3.client("cloudformation", **_session_kwargs(endpoint))


def _s3(endpoint: Endpoint) -> S3Client:
    return boto3.client("s3", **_session_kwargs(endpoint))


def _ssm(endpoint: Endpoint) -> SSMClient:
    return boto3.client("ssm", **_session_kwargs(endpoint))


@contextmanager
def scratch_directory() -> Iterator[Path]:
    """A temporary folder for zipped CDK assets, removed after the deploy."""
    with tempfile.TemporaryDirectory(prefix="deploy-local-") as directory:
        yield Path(directory)
