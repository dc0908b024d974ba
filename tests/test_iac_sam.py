"""The SAM flavour (``iac=sam``): ``template.yaml`` passes cfn-lint and checkov, and every
checkov skip carries its reason. Its settings are compared with the answers and the other
flavours in tests/test_iac_contract.py.

The linters run through tests/iac_tools.py, once per render, in the session fixture.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import iac_tools
from tests.iac_expectations import renders_of
from tests.rendering import answers_file, render

#: Renders with iac=sam: the answer sets of tests/iac_expectations.py.
RENDERS = renders_of("sam")


class CfnLoader(yaml.SafeLoader):
    """A YAML loader that reads CloudFormation's short tags (``!Ref``, ``!GetAtt``, ...)."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


@dataclass(frozen=True)
class SamRender:
    name: str
    path: Path
    answers: dict[str, Any]
    template: dict[str, Any]
    cfn_lint: subprocess.CompletedProcess[str]
    checkov: subprocess.CompletedProcess[str]

    def resource(self, logical_id: str) -> dict[str, Any]:
        resource: dict[str, Any] = self.template["Resources"][logical_id]
        return resource

    def properties(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resource(logical_id)["Properties"]
        return properties


@pytest.fixture(scope="session", params=list(RENDERS))
def sam(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SamRender:
    name: str = request.param
    path = render(tmp_path_factory.mktemp(f"sam-{name}") / "svc", **RENDERS[name])
    text = (path / "template.yaml").read_text(encoding="utf-8")
    template = yaml.load(text, Loader=CfnLoader)
    cfn_lint = iac_tools.cfn_lint("template.yaml", path)
    checkov = iac_tools.checkov(["-f", "template.yaml"], "cloudformation", path)
    return SamRender(name, path, answers_file(path), template, cfn_lint, checkov)


def test_sam_files_rendered_only_for_sam(sam: SamRender) -> None:
    assert (sam.path / "template.yaml").is_file()
    assert (sam.path / "samconfig.toml").is_file()
    samconfig = (sam.path / "samconfig.toml").read_text(encoding="utf-8")
    assert f'region = "{sam.answers["aws_region"]}"' in samconfig


def test_cfn_lint_clean(sam: SamRender) -> None:
    output = sam.cfn_lint.stdout + sam.cfn_lint.stderr
    assert sam.cfn_lint.returncode == 0, output
    assert output.strip() == ""


def test_checkov_no_failed_checks(sam: SamRender) -> None:
    assert sam.checkov.returncode == 0, sam.checkov.stdout[-4000:] + sam.checkov.stderr[-4000:]
    report = json.loads(sam.checkov.stdout)
    summary = report["summary"]
    failed = [c["check_id"] for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 0


def test_every_checkov_skip_has_a_reason(sam: SamRender) -> None:
    skips = {
        (logical_id, skip["id"]): skip.get("comment", "")
        for logical_id, resource in sam.template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    assert skips
    assert all(len(comment) > 40 for comment in skips.values()), skips
    function_skips = {check for logical_id, check in skips if logical_id == "ConsumerFunction"}
    assert {"CKV_AWS_116", "CKV_AWS_117"} <= function_skips
    # CKV_AWS_115 (reserved concurrency) is skipped only when none is reserved.
    assert ("CKV_AWS_115" in function_skips) == (sam.answers["reserved_concurrency"] == 0)


@pytest.mark.parametrize("iac", ["terraform", "cdk", "none"])
def test_no_sam_files_for_other_flavours(tmp_path: Path, iac: str) -> None:
    rendered = render(tmp_path / "svc", iac=iac, skip_tasks=True)
    assert not (rendered / "template.yaml").exists()
    assert not (rendered / "samconfig.toml").exists()
