"""How deploy-local prepares a stack: the template it sends and the files it uploads.

SAM and CloudFormation: the function's code (the packaged tree, or the project's code
folder) becomes the uploaded zip. CDK: the asset manifest of a synthesized app says which
file goes to which bucket and key.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sqs_lambda_tools import config, local_deploy, packaging
from sqs_lambda_tools.cli import app
from sqs_lambda_tools.project import Project

pytestmark = pytest.mark.unit


def test_the_sam_template_deploys_the_uploaded_artifact(
    sample_project: Project, tmp_path: Path
) -> None:
    artifact = tmp_path / "lambda.zip"
    artifact.write_bytes(b"PK not really a zip")
    stack = local_deploy.sam_stack(artifact, stack_name="Orders-Test")

    (upload,) = stack.uploads
    assert upload.path == artifact
    assert upload.bucket == "orders-test-artifacts"
    # The key names the content, so unchanged code is neither uploaded nor redeployed.
    assert upload.key == f"Orders-Test/{packaging.sha256_of(artifact)}.zip"
    template = json.loads(stack.template_body)
    function = template["Resources"]["ConsumerFunction"]["Properties"]
    assert function["CodeUri"] == {"Bucket": upload.bucket, "Key": upload.key}
    # The short forms of the YAML are CloudFormation's long forms in the JSON sent.
    redrive = template["Resources"]["SourceQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert function["Environment"]["Variables"]["ORDERS_TABLE_NAME"] == {"Ref": "OrdersTable"}
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


def write_template(root: Path, code: str, *, sam: bool = True) -> Path:
    kind, key = (
        ("AWS::Serverless::Function", "CodeUri") if sam else ("AWS::Lambda::Function", "Code")
    )
    template = root / "template.yaml"
    template.write_text(
        f"Resources:\n  Fn:\n    Type: {kind}\n    Properties:\n      {key}: {code}\n",
        encoding="utf-8",
    )
    return template


def test_a_template_whose_code_is_not_the_artifact_is_refused(
    sample_project: Project, tmp_path: Path
) -> None:
    template = write_template(sample_project.root, "elsewhere/")
    artifact = tmp_path / "lambda.zip"
    artifact.write_bytes(b"zip")
    with pytest.raises(local_deploy.DeployError, match="at build/lambda/ or src/"):
        local_deploy.sam_stack(artifact, stack_name="s", template=template)


@pytest.mark.parametrize(
    ("code", "sam", "rewritten"),
    [
        # The code folder the artifact is built from means the artifact too.
        ("src/", True, {"Bucket": "s-artifacts"}),
        # A CloudFormation function's local Code, as `aws cloudformation package` takes it.
        ("build/lambda", False, {"S3Bucket": "s-artifacts"}),
    ],
)
def test_the_code_folder_or_a_cloudformation_function_deploys_the_artifact(
    sample_project: Project, tmp_path: Path, code: str, sam: bool, rewritten: dict[str, str]
) -> None:
    write_template(sample_project.root, code, sam=sam)
    artifact = tmp_path / "lambda.zip"
    artifact.write_bytes(b"zip")

    stack = local_deploy.sam_stack(artifact, stack_name="s")

    properties = json.loads(stack.template_body)["Resources"]["Fn"]["Properties"]
    assert rewritten.items() <= properties["CodeUri" if sam else "Code"].items()


def synthesized_app(cdk_out: Path) -> None:
    """A minimal ``cdk synth`` output: one stack, one directory asset (the function code)."""
    asset = cdk_out / "asset.abc123"
    asset.mkdir(parents=True)
    (asset / "handler.py").write_text("def lambda_handler(event, context): ...\n")
    (cdk_out / "Svc.template.json").write_text(json.dumps({"Resources": {}}))
    destination = {
        "bucketName": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}",
        "objectKey": "abc123.zip",
    }
    assets = {
        "version": "48.0.0",
        "files": {
            "abc123": {
                "source": {"path": "asset.abc123", "packaging": "zip"},
                "destinations": {"current_account-current_region": destination},
            }
        },
    }
    (cdk_out / "Svc.assets.json").write_text(json.dumps(assets))
    manifest = {
        "artifacts": {
            "Svc.assets": {"type": "cdk:asset-manifest", "properties": {"file": "Svc.assets.json"}},
            "Svc": {
                "type": "aws:cloudformation:stack",
                "properties": {"templateFile": "Svc.template.json"},
                "dependencies": ["Svc.assets"],
            },
        }
    }
    (cdk_out / "manifest.json").write_text(json.dumps(manifest))


def test_a_cdk_stack_uploads_its_assets_where_the_manifest_says(tmp_path: Path) -> None:
    synthesized_app(tmp_path / "cdk.out")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    stack = local_deploy.cdk_stack(tmp_path / "cdk.out", scratch=scratch, region="eu-west-1")

    assert stack.name == "Svc"
    assert json.loads(stack.template_body) == {"Resources": {}}
    (upload,) = stack.uploads
    assert upload.bucket == f"cdk-hnb659fds-assets-{config.ACCOUNT_ID}-eu-west-1"
    assert upload.key == "abc123.zip"
    # A directory asset with zip packaging is zipped, as the CDK CLI would.
    with zipfile.ZipFile(upload.path) as archive:
        assert archive.namelist() == ["handler.py"]
    # The synthesized template checks the bootstrap version in SSM.
    assert stack.ssm_parameters == {
        local_deploy.CDK_BOOTSTRAP_PARAMETER: local_deploy.CDK_BOOTSTRAP_VERSION
    }


def test_a_missing_cdk_synth_output_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(local_deploy.DeployError, match="synthesize the CDK app first"):
        local_deploy.cdk_stack(tmp_path / "cdk.out", scratch=tmp_path, region="us-east-1")


def test_the_project_s_cloud_assembly_and_region_are_the_defaults(
    make_sample_project: Callable[..., Project], tmp_path: Path
) -> None:
    project = make_sample_project(
        edit=lambda text: (
            text.replace('kind = "sam"', 'kind = "cdk"\ncdk_app = "infra.app"')
            .replace('path = "template.yaml"', 'path = "build/cdk.out"')
            .replace('region = "us-east-1"', 'region = "eu-west-1"')
        )
    )
    synthesized_app(project.root / "build" / "cdk.out")

    stack = local_deploy.cdk_stack(scratch=tmp_path)

    assert stack.uploads[0].bucket == f"cdk-hnb659fds-assets-{config.ACCOUNT_ID}-eu-west-1"


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("terraform", "this project's IaC is Terraform: apply it to the emulator with tflocal"),
        ("none", "this project declares no IaC"),
    ],
)
def test_deploy_local_says_what_to_use_instead_before_starting_anything(
    make_sample_project: Callable[..., Project], kind: str, message: str
) -> None:
    make_sample_project(
        edit=lambda text: text.replace('kind = "sam"', f'kind = "{kind}"').replace(
            'path = "template.yaml"', 'path = "infra/terraform"' if kind == "terraform" else ""
        )
    )

    result = CliRunner().invoke(app, ["deploy-local"])

    assert result.exit_code == 1
    assert message in " ".join(result.stderr.split())
    assert "MiniStack" not in result.output
