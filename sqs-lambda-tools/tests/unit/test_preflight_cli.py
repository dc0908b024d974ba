"""`preflight` as a developer or CI types it: exit status 0, 1 or 2, a table or JSON.

Without a source it checks the project's own IaC ([tool.sqsl.iac]) and compares it with
the project's [tool.sqsl] settings (SQSL013).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from sqs_lambda_tools import local_deploy, packaging
from sqs_lambda_tools.cli import app
from sqs_lambda_tools.project import Project

from .test_preflight_sources import BROKEN_SAM, TERRAFORM_WITH_VARIABLES, cdk_like_template

pytestmark = pytest.mark.unit
# A project for the commands that check another source: the CLI loads one before any
# command runs.
with_a_project = pytest.mark.usefixtures("sample_project")

FINDING_KEYS = {"rule", "severity", "resource", "message", "fix", "source"}


def preflight(*arguments: str) -> Result:
    return CliRunner().invoke(app, ["preflight", *arguments])


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@with_a_project
def test_an_error_level_finding_exits_1_and_json_lists_every_finding(tmp_path: Path) -> None:
    template = write(tmp_path / "template.yaml", BROKEN_SAM)

    result = preflight("--template", str(template), "--format", "json")

    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"sources", "findings", "notes", "errors", "warnings"}
    assert report["sources"] == [str(template)]
    assert all(set(finding) == FINDING_KEYS for finding in report["findings"])
    severities = [finding["severity"] for finding in report["findings"]]
    assert report["errors"] == severities.count("error") > 0
    assert report["warnings"] == severities.count("warning") > 0
    assert "SQSL008" in {finding["rule"] for finding in report["findings"]}


@with_a_project
def test_a_clean_deployment_exits_0(tmp_path: Path) -> None:
    (tmp_path / "Stack.template.json").write_text(json.dumps(cdk_like_template(window=1)))

    result = preflight("--cdk-out", str(tmp_path))

    assert result.exit_code == 0, result.output
    assert "no findings" in result.stdout
    assert "0 error(s), 0 warning(s)" in result.stdout


@with_a_project
def test_warnings_alone_exit_0_and_the_table_shows_them(tmp_path: Path) -> None:
    template = cdk_like_template(window=1)
    del template["Resources"]["DeadLetterQueueAlarm5D2E8E3B"]
    path = write(tmp_path / "stack.json", json.dumps(template))

    result = preflight("--template", str(path))

    assert result.exit_code == 0, result.output
    assert "SQSL012" in result.stdout
    assert "0 error(s), 1 warning(s)" in result.stdout


@with_a_project
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--template", "missing.yaml"], "missing.yaml: cannot read the template"),
        (["--terraform", "nowhere"], "nowhere: no .tf files here"),
        (["--template", "t.yaml", "--terraform", "infra"], "choose one source"),
        (["--function-name", "f"], "--function-name goes with --live"),
    ],
)
def test_unusable_input_exits_2_and_says_why(arguments: list[str], message: str) -> None:
    result = preflight(*arguments)

    assert result.exit_code == 2
    assert message in result.stderr


@with_a_project
def test_without_a_source_it_checks_the_projects_iac() -> None:
    result = preflight("--format", "json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["sources"][0].endswith("template.yaml")
    assert report["findings"] == []


def set_key(text: str, section: str, key: str, value: str) -> str:
    """``text`` (a pyproject.toml) with ``key = value`` in ``[section]`` (added or replaced)."""
    header = f"[{section}]\n"
    before, found, after = text.partition(header)
    assert found, f"no [{section}] in the sample project"
    body, next_header, rest = after.partition("\n[")
    lines = [line for line in body.splitlines() if not line.startswith(f"{key} =")]
    lines.append(f"{key} = {value}")
    return before + header + "\n".join(lines) + "\n" + next_header + rest


def test_a_setting_the_table_and_the_iac_disagree_on_is_an_error(
    make_sample_project: Callable[..., Project],
) -> None:
    make_sample_project(
        edit=lambda text: set_key(text, "tool.sqsl.mapping", "batch_size", "20").replace(
            "batching_window = 0", "batching_window = 1"
        )
    )

    result = preflight("--format", "json")

    assert result.exit_code == 1, result.output
    findings = json.loads(result.stdout)["findings"]
    assert [(finding["rule"], finding["message"].split(":")[0]) for finding in findings] == [
        ("SQSL013", "pyproject.toml [tool.sqsl.mapping] batch_size is 20, template.yaml says 10"),
        (
            "SQSL013",
            "pyproject.toml [tool.sqsl.mapping] batching_window is 1, template.yaml says 0",
        ),
    ]


def test_an_explicit_source_is_not_compared_with_the_settings(
    make_sample_project: Callable[..., Project],
) -> None:
    project = make_sample_project(
        edit=lambda text: set_key(text, "tool.sqsl.mapping", "batch_size", "5")
    )

    result = preflight("--template", str(project.root / "template.yaml"))

    assert result.exit_code == 0, result.output
    assert "SQSL013" not in result.stdout


def without_table(text: str) -> str:
    return text[: text.index("[tool.sqsl]")]


def test_settings_read_from_the_iac_are_not_compared_with_it(
    make_sample_project: Callable[..., Project],
) -> None:
    project = make_sample_project(edit=without_table)
    template = project.root / "template.yaml"
    template.write_text(
        template.read_text(encoding="utf-8").replace("MemorySize: 256", "MemorySize: 1024"),
        encoding="utf-8",
    )

    result = preflight("--format", "json")

    assert project.source == "template.yaml"
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["findings"] == []


def test_a_terraform_project_checks_its_folder(
    make_sample_project: Callable[..., Project],
) -> None:
    project = make_sample_project(
        edit=lambda text: text.replace('kind = "sam"', 'kind = "terraform"').replace(
            'path = "template.yaml"', 'path = "infra/tf"'
        )
    )
    (project.root / "infra" / "tf").mkdir(parents=True)
    (project.root / "infra" / "tf" / "main.tf").write_text(TERRAFORM_WITH_VARIABLES)

    result = preflight("--format", "json")

    report = json.loads(result.stdout)
    assert report["sources"] == [str(project.root / "infra" / "tf")]
    # The sample project's settings are not this configuration's: the table says so.
    assert result.exit_code == 1
    assert {finding["rule"] for finding in report["findings"]} == {"SQSL013"}


def test_without_iac_a_source_must_be_given(make_sample_project: Callable[..., Project]) -> None:
    make_sample_project(
        edit=lambda text: text.replace('kind = "sam"', 'kind = "none"').replace(
            'path = "template.yaml"', ""
        )
    )

    result = preflight()

    assert result.exit_code == 2
    assert "this project declares no IaC" in result.stderr
    assert "--live" in result.stderr


def sample_like_cdk_template() -> dict[str, Any]:
    """What `cdk synth` would write for the sample project's settings."""
    template = cdk_like_template()
    resources = template["Resources"]
    function = resources["ConsumerFunction3A4E9A18"]["Properties"]
    function.update(Architectures=["arm64"], MemorySize=256)
    mapping = resources["ConsumerFunctionSqsEventSourceA1B2C3D4"]["Properties"]
    mapping.update(BatchSize=10, ScalingConfig={"MaximumConcurrency": 5})
    resources["SourceQueue6E809DF0"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] = 3
    return template


@dataclass
class CdkApp:
    """The app's inputs and output in a folder of the test's own; runs of a fake app."""

    stack: Path
    out: Path
    runs: int = 0

    def run(self) -> subprocess.CompletedProcess[str]:
        """What `python -m <package>_infra.app` leaves: a cloud assembly, freshly written."""
        self.runs += 1
        self.out.mkdir(exist_ok=True)
        write(self.out / "Consumer.template.json", json.dumps(sample_like_cdk_template()))
        write(self.out / "manifest.json", "{}")
        return subprocess.CompletedProcess([], 0, "synthesized\n", "")


@pytest.fixture
def cdk_app(make_sample_project: Callable[..., Project], monkeypatch: pytest.MonkeyPatch) -> CdkApp:
    """GIVEN a CDK project: the app's package (src/sample_infra/), its cloud assembly at
    build/cdk.out, and a Lambda artifact already packaged; the app itself is a fake."""
    project = make_sample_project(
        edit=lambda text: text.replace(
            'kind = "sam"', 'kind = "cdk"\ncdk_app = "sample_infra.app"'
        ).replace('path = "template.yaml"', 'path = "build/cdk.out"')
    )
    (project.root / "src" / "sample_infra").mkdir()
    stack = write(project.root / "src" / "sample_infra" / "stack.py", "# the stack\n")
    fake = CdkApp(stack=stack, out=project.root / "build" / "cdk.out")
    (packaging.tree_of(project) / "sample_orders").mkdir(parents=True)
    monkeypatch.setattr(local_deploy, "run_cdk_app", lambda _project: fake.run())
    return fake


def test_without_a_synth_output_it_synthesizes_first(cdk_app: CdkApp) -> None:
    result = preflight("--format", "json")

    assert result.exit_code == 0, result.output
    assert cdk_app.runs == 1
    assert "synthesizing the CDK app first" in result.stderr
    report = json.loads(result.stdout)  # progress went to stderr: stdout is the report
    assert report["sources"][0].endswith("Consumer.template.json")


def test_a_current_synth_output_is_checked_as_it_is(cdk_app: CdkApp) -> None:
    cdk_app.run()

    result = preflight()

    assert result.exit_code == 0, result.output
    assert cdk_app.runs == 1
    assert "synthesizing" not in result.stderr


def test_a_synth_output_older_than_the_stack_is_synthesized_again(cdk_app: CdkApp) -> None:
    cdk_app.run()
    later = (cdk_app.out / "manifest.json").stat().st_mtime + 10
    os.utime(cdk_app.stack, (later, later))

    result = preflight()

    assert result.exit_code == 0, result.output
    assert cdk_app.runs == 2
    assert "src/sample_infra/stack.py changed since build/cdk.out was synthesized" in (
        " ".join(result.stderr.split())
    )


def test_a_failing_synth_is_unusable_input_with_the_apps_output(
    cdk_app: CdkApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        local_deploy,
        "run_cdk_app",
        lambda _project: subprocess.CompletedProcess(
            [], 1, "", "error: Node.js is not installed\n"
        ),
    )

    result = preflight()

    assert result.exit_code == 2
    assert "the CDK app failed (exit 1)" in result.stderr
    assert "Node.js is not installed" in result.stderr
