"""The cross-flavour contract: for the same answers, every IaC flavour declares the same
effective settings, and they are the answers.

Each answer set is rendered once per flavour; :mod:`tests.iac_settings` reads every output into
the same flat mapping (SAM after the real SAM transform, CDK from its synthesized template,
Terraform from its HCL), and the test compares them key by key: a number that drifts in one
flavour fails here naming the key and both values. The local tools' settings table
(``[tool.sqsl]`` in pyproject.toml) is read the same way and must say the same, and the
tools' own preflight, which compares the table with the IaC, finds only what the answers
chose to accept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from sqs_lambda_tools import project as projects
from sqs_lambda_tools.preflight import cloudformation, terraform
from sqs_lambda_tools.preflight.model import Deployment
from sqs_lambda_tools.preflight.rules import evaluate

from tests.conftest import Probe
from tests.iac_expectations import ANSWER_SETS, expected_findings
from tests.iac_settings import (
    DEPLOY_ONLY_ENVIRONMENT,
    Settings,
    expected,
    from_cloudformation,
    from_sqsl_table,
    from_terraform,
    sam_to_cloudformation,
)
from tests.rendering import probe, render
from tests.test_iac_cdk import prepared
from tests.test_iac_sam import CfnLoader
from tests.test_iac_terraform import HCL_OPTIONS, TF_DIR


def _sam(path: Path, region: str) -> Settings:
    template = yaml.load((path / "template.yaml").read_text(encoding="utf-8"), Loader=CfnLoader)
    return from_cloudformation(sam_to_cloudformation(template, region))


def _terraform(path: Path) -> Settings:
    files: list[dict[str, Any]] = []
    for tf_file in sorted((path / TF_DIR).glob("*.tf")):
        with tf_file.open(encoding="utf-8") as handle:
            files.append(hcl2.load(handle, serialization_options=HCL_OPTIONS))
    return from_terraform(files)


FLAVOURS = ("sam", "terraform", "cdk")


@dataclass(frozen=True)
class Contract:
    values: dict[str, Any]
    by_flavour: dict[str, Settings]
    renders: dict[str, Path]


@pytest.fixture(scope="module", params=list(ANSWER_SETS))
def contract(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, probe_template: Path
) -> Contract:
    name: str = request.param
    answers = ANSWER_SETS[name]
    values = probe(probe_template, tmp_path_factory.mktemp("contract-probe") / "p", **answers)
    renders = {
        flavour: render(
            tmp_path_factory.mktemp(f"contract-{flavour}") / "svc", iac=flavour, **answers
        )
        for flavour in ("sam", "terraform")
    }
    # The synthesis test_iac_cdk.py makes (once per run, whichever test asks first).
    cdk = prepared(name, tmp_path_factory)
    by_flavour = {
        "sam": _sam(renders["sam"], values["aws_region"]),
        "terraform": _terraform(renders["terraform"]),
        "cdk": from_cloudformation(cdk.template),
    }
    return Contract(values, by_flavour, {**renders, "cdk": cdk.path})


def _differences(left: Settings, right: Settings) -> list[str]:
    return [
        f"{key}: {left.get(key, '<absent>')!r} != {right.get(key, '<absent>')!r}"
        for key in sorted(set(left) | set(right))
        if left.get(key, "<absent>") != right.get(key, "<absent>")
    ]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_flavour_declares_the_answers(contract: Contract, flavour: str) -> None:
    differences = _differences(contract.by_flavour[flavour], expected(contract.values))
    assert not differences, f"{flavour} (left) against the answers (right):\n" + "\n".join(
        differences
    )


def test_flavours_declare_the_same_settings(contract: Contract) -> None:
    (first, reference), *others = contract.by_flavour.items()
    assert others, "the contract needs at least two flavours"
    for flavour, settings in others:
        differences = _differences(settings, reference)
        assert not differences, f"{flavour} (left) against {first} (right):\n" + "\n".join(
            differences
        )


def test_reader_sees_a_drifted_number(contract: Contract, probe_values: Probe) -> None:
    """The comparison is not vacuous: one changed number is one reported difference."""
    settings = dict(contract.by_flavour["sam"])
    settings["source_queue.visibility_timeout"] += 1
    differences = _differences(settings, expected(contract.values))
    assert len(differences) == 1
    assert differences[0].startswith("source_queue.visibility_timeout:")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_tools_settings_table_declares_the_answers(contract: Contract, flavour: str) -> None:
    table = from_sqsl_table(projects.load(contract.renders[flavour]))
    answers = expected(contract.values)
    answers["function.environment"] = {
        name: value
        for name, value in answers["function.environment"].items()
        if name not in DEPLOY_ONLY_ENVIRONMENT
    }

    differences = _differences(table, {key: answers.get(key, "<absent>") for key in table})

    assert not differences, "[tool.sqsl] (left) against the answers (right):\n" + "\n".join(
        differences
    )


def _own_iac(flavour: str, root: Path) -> list[Deployment]:
    """The render's IaC as `sqsl preflight` reads it (CDK: the synthesized assembly)."""
    if flavour == "sam":
        return [cloudformation.load_template(root / "template.yaml")]
    if flavour == "terraform":
        return [terraform.load_directory(root / TF_DIR)]
    return cloudformation.load_cdk_out(root / "build" / "cdk.out")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_preflight_finds_only_what_the_answers_accept(contract: Contract, flavour: str) -> None:
    """The rules of the pattern, and SQSL013: the table and the IaC agree."""
    project = projects.load(contract.renders[flavour])
    # Checked against the table, as `sqsl preflight` checks the project's own IaC.
    deployments = [replace(d, settings=project) for d in _own_iac(flavour, project.root)]

    assert sum(len(deployment.mappings) for deployment in deployments) == 1
    findings = {
        (finding.rule, finding.severity, finding.message)
        for deployment in deployments
        for finding in evaluate(deployment)
    }
    assert {(rule, severity) for rule, severity, _ in findings} == expected_findings(
        contract.values
    ), findings
