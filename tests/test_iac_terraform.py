"""The Terraform flavour (``iac=terraform``): ``infra/terraform/*.tf`` parse (python-hcl2),
checkov reports no failed check, and every skip has a reason. The settings read from the
HCL are compared with the answers and the other flavours in tests/test_iac_contract.py.

checkov runs through tests/iac_tools.py, once per render in the session fixture.
``terraform fmt -check`` and ``terraform validate`` run where a terraform binary is
installed; validate also needs the provider registry, unreachable here (it says so).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tests import iac_tools
from tests.iac_expectations import renders_of
from tests.rendering import answers_file, render

TF_DIR = Path("infra") / "terraform"
TF_FILES = ("versions.tf", "variables.tf", "main.tf", "outputs.tf")
HCL_OPTIONS = hcl2.SerializationOptions(with_comments=False, strip_string_quotes=True)
SKIP_COMMENT = re.compile(r"^\s*#\s*checkov:skip=(?P<check>[A-Z0-9_]+)(?::(?P<reason>.*))?$")

#: Renders with iac=terraform: the answer sets of tests/iac_expectations.py.
RENDERS = renders_of("terraform")


@dataclass(frozen=True)
class TerraformRender:
    name: str
    path: Path
    answers: dict[str, Any]
    #: Parsed HCL of each file of ``infra/terraform``, by file name.
    files: dict[str, dict[str, Any]]
    checkov: dict[str, Any]
    checkov_output: str

    @property
    def directory(self) -> Path:
        return self.path / TF_DIR

    def blocks(self, kind: str) -> dict[str, dict[str, Any]]:
        """Every ``resource`` (or ``data``) block of every file, by ``type.name``."""
        found: dict[str, dict[str, Any]] = {}
        for parsed in self.files.values():
            for entry in parsed.get(kind, []):
                for block_type, named in entry.items():
                    for name, body in named.items():
                        found[f"{block_type}.{name}"] = body
        return found

    def resource(self, address: str) -> dict[str, Any]:
        return self.blocks("resource")[address]

    def resources_of(self, block_type: str) -> dict[str, dict[str, Any]]:
        return {
            address.split(".", 1)[1]: body
            for address, body in self.blocks("resource").items()
            if address.split(".", 1)[0] == block_type
        }


def _block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block ``name`` of a parsed block (python-hcl2 gives a list)."""
    nested = body[name]
    assert isinstance(nested, list), nested
    assert len(nested) == 1, nested
    block: dict[str, Any] = nested[0]
    return block


@pytest.fixture(scope="session", params=list(RENDERS))
def tf(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TerraformRender:
    name: str = request.param
    path = render(tmp_path_factory.mktemp(f"tf-{name}") / "svc", **RENDERS[name])
    files: dict[str, dict[str, Any]] = {}
    for tf_file in sorted((path / TF_DIR).glob("*.tf")):
        with tf_file.open(encoding="utf-8") as handle:
            files[tf_file.name] = hcl2.load(handle, serialization_options=HCL_OPTIONS)
    checkov = iac_tools.checkov(["-d", str(TF_DIR)], "terraform", path)
    output = checkov.stdout[-4000:] + checkov.stderr[-4000:]
    assert checkov.returncode == 0, output
    report = json.loads(checkov.stdout)
    assert isinstance(report, dict), output  # one framework: one report
    return TerraformRender(name, path, answers_file(path), files, report, output)


def test_terraform_files_rendered(tf: TerraformRender) -> None:
    assert sorted(p.name for p in tf.directory.iterdir()) == sorted(TF_FILES)
    assert set(tf.files) == set(TF_FILES)
    assert all(tf.files.values())


def test_no_terraform_files_for_other_flavours(tmp_path: Path) -> None:
    rendered = render(tmp_path / "svc", iac="sam", skip_tasks=True)
    assert (rendered / "infra").is_dir()
    assert not (rendered / TF_DIR).exists()
    assert not list(rendered.rglob("*.tf"))


def test_versions_pinned(tf: TerraformRender) -> None:
    terraform = _block(tf.files["versions.tf"], "terraform")
    assert terraform["required_version"].startswith(">=")
    providers = _block(terraform, "required_providers")
    assert providers["aws"]["source"] == "hashicorp/aws"
    assert providers["aws"]["version"] == "~> 6.0"
    assert providers["archive"]["source"] == "hashicorp/archive"
    assert providers["archive"]["version"].startswith("~> ")


def test_variables(tf: TerraformRender) -> None:
    variables = {
        name: body for entry in tf.files["variables.tf"]["variable"] for name, body in entry.items()
    }
    expected = {"aws_region", "environment", "log_retention_days"}
    if tf.answers["dlq_alarm"]:
        expected.add("alarm_email")
    assert set(variables) == expected
    assert variables["aws_region"]["default"] == tf.answers["aws_region"]
    assert variables["log_retention_days"]["default"] >= 365
    if "alarm_email" in variables:
        assert variables["alarm_email"]["default"] is None


def test_outputs(tf: TerraformRender) -> None:
    outputs = {
        name: body["value"]
        for entry in tf.files["outputs.tf"]["output"]
        for name, body in entry.items()
    }
    assert outputs["source_queue_url"] == "${aws_sqs_queue.source.url}"
    assert outputs["source_queue_arn"] == "${aws_sqs_queue.source.arn}"
    assert outputs["function_name"] == "${aws_lambda_function.consumer.function_name}"
    assert ("alarm_topic_arn" in outputs) is tf.answers["dlq_alarm"]


def test_checkov_no_failed_checks(tf: TerraformRender) -> None:
    summary = tf.checkov["summary"]
    failed = [c["check_id"] for c in tf.checkov["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["parsing_errors"] == 0, tf.checkov_output
    assert summary["passed"] > 0


def test_every_checkov_skip_has_a_reason(tf: TerraformRender) -> None:
    # In the source: every `#checkov:skip=ID:reason` comment has a one-line reason.
    written: list[tuple[str, str]] = []
    for tf_file in tf.directory.glob("*.tf"):
        for line in tf_file.read_text(encoding="utf-8").splitlines():
            match = SKIP_COMMENT.match(line)
            if match:
                written.append((match["check"], match["reason"] or ""))
    assert written
    assert all(len(reason.strip()) > 40 for _, reason in written), written
    # In checkov's report: each of them suppressed a check of a resource, with that reason.
    skipped = {
        (c["resource"], c["check_id"]): c["check_result"].get("suppress_comment", "")
        for c in tf.checkov["results"]["skipped_checks"]
    }
    assert len(skipped) == len(written)
    assert all(len(reason) > 40 for reason in skipped.values()), skipped
    function_skips = {
        check for address, check in skipped if address == "aws_lambda_function.consumer"
    }
    assert {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"} <= function_skips
    # CKV_AWS_115 (reserved concurrency) is skipped only when none is reserved.
    assert ("CKV_AWS_115" in function_skips) == (tf.answers["reserved_concurrency"] == 0)


def test_package_is_the_packaged_tree(tf: TerraformRender) -> None:
    # `make package` builds build/lambda/ (runtime package + runtime dependencies, so
    # Powertools too): the archive zips that tree as it is, and no layer is attached.
    archive = tf.blocks("data")["archive_file.package"]
    assert archive["source_dir"] == "${path.module}/../../build/lambda"
    assert "excludes" not in archive
    assert "layers" not in tf.resource("aws_lambda_function.consumer")


NO_TERRAFORM = pytest.mark.skipif(
    shutil.which("terraform") is None,
    reason=(
        "no terraform binary on this machine: its downloads are unreachable; "
        "the generated CI runs terraform fmt -check and validate"
    ),
)


@NO_TERRAFORM
def test_terraform_fmt(tf: TerraformRender) -> None:
    terraform = shutil.which("terraform")
    assert terraform is not None
    fmt = iac_tools.run(
        [terraform, "fmt", "-check", "-diff", "-recursive", "-no-color"], tf.directory
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@NO_TERRAFORM
def test_terraform_validate(tf: TerraformRender, tmp_path_factory: pytest.TempPathFactory) -> None:
    terraform = shutil.which("terraform")
    assert terraform is not None
    work = tmp_path_factory.mktemp("tf-validate") / "terraform"
    shutil.copytree(tf.directory, work)
    init = iac_tools.run([terraform, "init", "-backend=false", "-input=false", "-no-color"], work)
    if init.returncode != 0 and "could not connect to registry.terraform.io" in init.stderr:
        pytest.skip(
            "terraform init cannot download the pinned providers: registry.terraform.io is "
            "unreachable from this machine; the generated CI runs terraform validate"
        )
    assert init.returncode == 0, init.stdout + init.stderr
    validate = iac_tools.run([terraform, "validate", "-no-color"], work)
    assert validate.returncode == 0, validate.stdout + validate.stderr
