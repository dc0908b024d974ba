"""The CDK flavour (``iac=cdk``): the app in ``src/<pkg>_infra`` synthesizes, its template
passes cfn-lint and checkov, and it declares the same resources, properties and checkov
skips as the SAM template of the same answers (its settings are compared with the answers
in tests/test_iac_contract.py).

A render is synthesized the way a user's ``make synth`` does it (``python -m
<pkg>_infra.app`` in the render), with ``build/lambda`` holding a copy of the runtime
package as ``make package`` would (without the runtime dependencies, which synthesis only
hashes). Synthesis starts Node.js through jsii (about 7 s), cfn-lint and checkov take as
long again: each render is prepared once per run, whichever xdist worker asks first, and
the others read the outcome from the run's shared folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import iac_tools
from tests.conftest import _exclusive_lock, shared_tmp
from tests.iac_expectations import renders_of
from tests.rendering import REPO_ROOT, answers_file, render
from tests.test_iac_sam import CfnLoader
from tests.test_pins import TOOLS, pins

#: Renders with iac=cdk: the answer sets of tests/iac_expectations.py.
RENDERS = renders_of("cdk")

#: CDK writes the account root principal as a join, SAM as a substitution: the same ARN.
CDK_ACCOUNT_ROOT = {
    "Fn::Join": [
        "",
        ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"],
    ]
}
SAM_ACCOUNT_ROOT = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}


@dataclass(frozen=True)
class CdkRender:
    name: str
    path: Path
    answers: dict[str, Any]
    #: The synthesized CloudFormation template (build/cdk.out/<stack>.template.json).
    template: dict[str, Any]
    #: template.yaml of a SAM render of the same answers.
    sam: dict[str, Any]
    outcome: dict[str, Any]

    @property
    def package(self) -> str:
        return str(self.answers["package_name"])

    def resource(self, logical_id: str) -> dict[str, Any]:
        resource: dict[str, Any] = self.template["Resources"][logical_id]
        return resource

    def properties(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resource(logical_id)["Properties"]
        return properties

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == resource_type
        }


def _result(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return {
        "returncode": completed.returncode,
        "stdout": completed.stdout,
        "stderr": completed.stderr,
    }


def _prepare(name: str, root: Path) -> dict[str, Any]:
    """Render, package as ``make package`` lays it out, synthesize, lint and scan one render."""
    path = render(root / "svc", **RENDERS[name])
    answers = answers_file(path)
    package = str(answers["package_name"])
    shutil.copytree(
        path / "src" / package,
        path / "build" / "lambda" / package,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    # The render is not installed: src/ on the path stands for the editable install.
    env = {**os.environ, "PYTHONPATH": str(path / "src")}
    env.pop("CDK_OUTDIR", None)
    synth = subprocess.run(
        [sys.executable, "-m", f"{package}_infra.app"],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    outcome: dict[str, Any] = {"synth": _result(synth)}
    template = path / "build" / "cdk.out" / f"{answers['project_slug']}.template.json"
    if synth.returncode == 0 and template.is_file():
        relative = str(template.relative_to(path))
        outcome["template"] = relative
        outcome["cfn_lint"] = _result(iac_tools.cfn_lint(relative, path))
        outcome["checkov"] = _result(iac_tools.checkov(["-f", relative], "cloudformation", path))
    sam = render(root / "sam", **{**RENDERS[name], "iac": "sam"}, skip_tasks=True)
    outcome["sam"] = yaml.load((sam / "template.yaml").read_text(encoding="utf-8"), CfnLoader)
    return outcome


def prepared(name: str, tmp_path_factory: pytest.TempPathFactory) -> CdkRender:
    """The render ``name`` of :data:`RENDERS`, synthesized, linted and scanned once per run.

    The xdist workers share it (a file lock, then a JSON file of the outcome); the contract
    test (tests/test_iac_contract.py) reads the same synthesized templates.
    """
    root = shared_tmp(tmp_path_factory, "cdk") / name
    outcome_file = root.with_suffix(".json")
    with _exclusive_lock(root.with_suffix(".lock")):
        if not outcome_file.exists():
            outcome_file.write_text(json.dumps(_prepare(name, root)), encoding="utf-8")
    outcome = json.loads(outcome_file.read_text(encoding="utf-8"))
    synth = outcome["synth"]
    if "template" not in outcome:
        pytest.fail(f"[{name}] synthesis failed:\n{synth['stdout']}\n{synth['stderr']}")
    path = root / "svc"
    template = json.loads((path / outcome["template"]).read_text(encoding="utf-8"))
    return CdkRender(name, path, answers_file(path), template, outcome["sam"], outcome)


@pytest.fixture(scope="session", params=list(RENDERS))
def cdk(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> CdkRender:
    return prepared(request.param, tmp_path_factory)


# -- the files ------------------------------------------------------------------------------


def test_cdk_files_rendered(cdk: CdkRender) -> None:
    cdk_json = json.loads((cdk.path / "cdk.json").read_text(encoding="utf-8"))
    assert cdk_json["app"] == f".venv/bin/python -m {cdk.package}_infra.app"
    assert cdk_json["output"] == "build/cdk.out"
    for module in ("__init__.py", "config.py", "stack.py", "app.py"):
        assert (cdk.path / "src" / f"{cdk.package}_infra" / module).is_file()
    assert (cdk.path / "tests" / "iac" / "test_cdk_stack.py").is_file()
    # Never shipped: the wheel (and the Lambda artifact) holds the runtime package only.
    pyproject = (cdk.path / "pyproject.toml").read_text(encoding="utf-8")
    assert f'packages = ["src/{cdk.package}"]' in pyproject
    assert "synth:" in (cdk.path / "Makefile").read_text(encoding="utf-8")


@pytest.mark.parametrize("iac", ["terraform", "sam", "none"])
def test_no_cdk_files_for_other_flavours(tmp_path: Path, iac: str) -> None:
    rendered = render(tmp_path / "svc", iac=iac, skip_tasks=True)
    assert not (rendered / "cdk.json").exists()
    assert not list((rendered / "src").glob("*_infra"))
    assert not (rendered / "tests" / "iac" / "test_cdk_stack.py").exists()
    assert "synth:" not in (rendered / "Makefile").read_text(encoding="utf-8")
    assert "aws-cdk-lib" not in (rendered / "pyproject.toml").read_text(encoding="utf-8")


def test_synthesis_is_quiet(cdk: CdkRender) -> None:
    # No Node.js version banner, no deprecation warning of a construct property.
    synth = cdk.outcome["synth"]
    assert synth["stderr"].strip() == "", synth["stderr"]
    assert synth["stdout"].startswith("synthesized to ")


def test_synthesis_without_the_artifact_says_to_package(
    tmp_path: Path,
) -> None:
    rendered = render(tmp_path / "svc", iac="cdk", skip_tasks=True)
    package = answers_file(rendered)["package_name"]
    env = {**os.environ, "PYTHONPATH": str(rendered / "src")}
    result = subprocess.run(
        [sys.executable, "-m", f"{package}_infra.app"],
        cwd=rendered,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "run `make package` first" in result.stderr
    assert not (rendered / "build" / "cdk.out").exists()


def test_cdk_pins_are_the_templates(tmp_path: Path) -> None:
    """The CDK libraries are dev pins of the render (never shipped) and the template's own,
    which type-checks and synthesizes every cdk render (tests/test_pins.py renders sam)."""
    template = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    # The tools are a member of this repository's uv workspace here, unpinned.
    template_pins = pins([name for name in template["dependency-groups"]["dev"] if name != TOOLS])
    rendered = render(tmp_path / "svc", iac="cdk", skip_tasks=True)
    project = tomllib.loads((rendered / "pyproject.toml").read_text(encoding="utf-8"))
    assert not {"aws-cdk-lib", "constructs"} & set(pins(project["project"]["dependencies"]))
    dev = pins(project["dependency-groups"]["dev"])
    for name in ("aws-cdk-lib", "constructs", "cfn-lint"):
        assert dev[name] == template_pins[name], name


# -- the checkers ---------------------------------------------------------------------------


def test_cfn_lint_clean(cdk: CdkRender) -> None:
    result = cdk.outcome["cfn_lint"]
    output = result["stdout"] + result["stderr"]
    assert result["returncode"] == 0, output
    assert output.strip() == ""


def test_checkov_no_failed_checks(cdk: CdkRender) -> None:
    result = cdk.outcome["checkov"]
    assert result["returncode"] == 0, result["stdout"][-4000:] + result["stderr"][-4000:]
    report = json.loads(result["stdout"])
    failed = [c["check_id"] for c in report["results"]["failed_checks"]]
    assert report["summary"]["failed"] == 0, failed
    assert report["summary"]["passed"] > 0
    # Every skip checkov applied is one the stack annotates, with its reason.
    skipped = {
        (c["resource"].split(".")[-1], c["check_id"]) for c in report["results"]["skipped_checks"]
    }
    assert skipped == set(_skips(cdk.template))


def _skips(template: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (logical_id, skip["id"]): skip.get("comment", "")
        for logical_id, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }


def test_every_checkov_skip_has_the_sam_reason(cdk: CdkRender) -> None:
    skips = _skips(cdk.template)
    assert skips
    assert all(len(comment) > 40 for comment in skips.values()), skips
    assert skips == _skips(cdk.sam)
    function_skips = {check for logical_id, check in skips if logical_id == "ConsumerFunction"}
    assert ("CKV_AWS_115" in function_skips) == (cdk.answers["reserved_concurrency"] == 0)


# -- the settings are the answers -----------------------------------------------------------


def test_the_code_asset_is_build_lambda(cdk: CdkRender) -> None:
    """The function's asset is what build/lambda holds: the runtime package, nothing of the
    local tools or of the CDK app."""
    out = cdk.path / "build" / "cdk.out"
    slug = cdk.answers["project_slug"]
    manifest = json.loads((out / f"{slug}.assets.json").read_text(encoding="utf-8"))
    key = cdk.properties("ConsumerFunction")["Code"]["S3Key"]
    (asset,) = (
        entry["source"]
        for entry in manifest["files"].values()
        if any(d["objectKey"] == key for d in entry["destinations"].values())
    )
    assert asset["packaging"] == "zip"
    staged = sorted(child.name for child in (out / asset["path"]).iterdir())
    assert staged == [cdk.package]
    assert (out / asset["path"] / cdk.package / "handler.py").is_file()


# -- the same stack as SAM's ----------------------------------------------------------------


def _comparable(value: Any) -> Any:
    """The value in one spelling where CDK and the SAM template write the same thing two
    ways: the account root principal (a join, a substitution), a statement's single action
    (a string, a list), the topic's key (its ARN, its id: SNS takes either)."""
    if value == CDK_ACCOUNT_ROOT:
        return SAM_ACCOUNT_ROOT
    if isinstance(value, dict):
        spelled = dict(value)
        if isinstance(spelled.get("Action"), str):
            spelled["Action"] = [spelled["Action"]]
        key_arn = spelled.get("KmsMasterKeyId", {})
        if isinstance(key_arn, dict) and key_arn.get("Fn::GetAtt", [None, None])[1] == "Arn":
            spelled["KmsMasterKeyId"] = {"Ref": key_arn["Fn::GetAtt"][0]}
        return {key: _comparable(item) for key, item in spelled.items()}
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    return value


def test_same_resources_as_sam(cdk: CdkRender) -> None:
    """Every resource of the SAM template, but the function SAM transforms, is declared by
    the CDK stack under the same logical id with the same type, properties and policies."""
    sam = cdk.sam["Resources"]
    ours = cdk.template["Resources"]
    expected_ids = (set(sam) - {"ConsumerFunction"}) | {
        "ConsumerFunction",
        "ConsumerEventSourceMapping",
    }
    assert set(ours) == expected_ids
    for logical_id, resource in sam.items():
        if logical_id == "ConsumerFunction":
            continue
        mine = ours[logical_id]
        assert mine["Type"] == resource["Type"], logical_id
        assert _comparable(mine["Properties"]) == _comparable(resource["Properties"]), logical_id
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            assert mine.get(policy) == resource.get(policy), (logical_id, policy)
    assert set(cdk.template["Outputs"]) == set(cdk.sam["Outputs"])
