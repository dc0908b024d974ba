"""The cross-flavour contract: for the same answers, every IaC flavour declares the same
effective settings, and they are the answers.

Each answer set is rendered once per flavour; :mod:`tests.iac_settings` reads every output into
the same flat mapping (SAM after the real SAM transform, CDK from its synthesized template,
Terraform from its HCL), and the test compares them key by key: a number that drifts in one
flavour fails here naming the key and both values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from tests.conftest import Probe
from tests.iac_expectations import ANSWER_SETS
from tests.iac_settings import (
    Settings,
    expected,
    from_cloudformation,
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
    by_flavour = {
        "sam": _sam(renders["sam"], values["aws_region"]),
        "terraform": _terraform(renders["terraform"]),
        # The synthesis test_iac_cdk.py makes (once per run, whichever test asks first).
        "cdk": from_cloudformation(prepared(name, tmp_path_factory).template),
    }
    return Contract(values, by_flavour)


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
