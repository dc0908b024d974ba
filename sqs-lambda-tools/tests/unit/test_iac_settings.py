"""A project without a [tool.sqsl] table gets its settings from its IaC: a SAM template,
a Terraform folder or a CDK cloud assembly, through the preflight readers. What the IaC
does not say is named, with how to declare it, and only the commands that need it fail.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sqs_lambda_tools import iac_settings, project
from sqs_lambda_tools.cli import app
from sqs_lambda_tools.project import (
    DeadLetterSettings,
    FunctionSettings,
    IacSettings,
    MappingSettings,
    Project,
    QueueSettings,
    SettingsError,
    TableSettings,
)

from .test_preflight_sources import SETTINGS_TERRAFORM, cdk_like_template

pytestmark = pytest.mark.unit


def without_table(text: str) -> str:
    return text[: text.index("[tool.sqsl]")]


@pytest.fixture
def sam_project(make_sample_project: Callable[..., Project]) -> Path:
    """GIVEN the sample project without its [tool.sqsl] table: a pyproject.toml and a SAM
    template.yaml."""
    return make_sample_project(edit=without_table, use=False).root


def test_a_sam_project_gets_every_setting_from_its_template(sam_project: Path) -> None:
    settings = project.load(sam_project)

    assert settings == Project(
        root=sam_project,
        source="template.yaml",
        function=FunctionSettings(
            name="sample-orders",
            handler="sample_orders.handler.lambda_handler",
            # CodeUri is the packaged tree (build/lambda/): the handler imports from src/.
            code_path="src",
            runtime="python3.13",
            architecture="arm64",
            timeout_seconds=30,
            memory_mb=256,
            environment={
                "ORDERS_TABLE_NAME": "{tables.orders}",
                "DEAD_LETTER_QUEUE_URL": "{dlq.url}",
            },
        ),
        queue=QueueSettings(
            name="sample-orders", visibility_timeout_seconds=180, retention_seconds=345600
        ),
        dlq=DeadLetterSettings(
            name="sample-orders-dlq", max_receive_count=3, retention_seconds=1209600
        ),
        mapping=MappingSettings(batch_size=10, batching_window_seconds=0, maximum_concurrency=5),
        tables={"orders": TableSettings(name="sample-orders-orders", key="orderId")},
        iac=IacSettings(kind="sam", path="template.yaml"),
    )
    assert not iac_settings.from_table(settings)


def test_the_environment_placeholders_resolve_for_a_run(sam_project: Path) -> None:
    settings = project.load(sam_project)
    resources = settings.resources().with_suffix("-t1")
    urls = project.QueueUrls(dead_letter_url="http://emulator/000000000000/sample-orders-dlq-t1")

    environment = settings.environment(resources, urls)

    assert environment["ORDERS_TABLE_NAME"] == "sample-orders-orders-t1"
    assert environment["DEAD_LETTER_QUEUE_URL"] == urls.dead_letter_url


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_the_code_folder_is_the_one_that_holds_the_handlers_package(sam_project: Path) -> None:
    # The layout of `sam init`: CodeUri is the function's folder, the handler a module in it.
    (sam_project / "hello_world").mkdir()
    (sam_project / "hello_world" / "app.py").write_text("def lambda_handler(e, c): ...\n")
    template = sam_project / "template.yaml"
    replace_in(template, "CodeUri: build/lambda/", "CodeUri: hello_world/")
    replace_in(template, "sample_orders.handler.lambda_handler", "app.lambda_handler")

    function = project.load(sam_project).function

    assert (function.handler, function.code_path) == ("app.lambda_handler", "hello_world")


def test_what_the_template_does_not_say_is_named_with_how_to_declare_it(
    sam_project: Path,
) -> None:
    template = sam_project / "template.yaml"
    replace_in(template, "      Handler: sample_orders.handler.lambda_handler\n", "")
    replace_in(template, "FunctionName: sample-orders", "FunctionName: !Sub ${AWS::StackName}")
    replace_in(
        template, "DEAD_LETTER_QUEUE_URL: !Ref DeadLetterQueue", "STAGE: !Sub ${AWS::StackName}"
    )

    settings = project.load(sam_project)

    assert settings.missing == (
        "function.name: template.yaml gives ConsumerFunction no literal function name; "
        'declare it in pyproject.toml as [tool.sqsl.function] name = "my-function"',
        "function.handler: not found in template.yaml; declare it in pyproject.toml as "
        '[tool.sqsl.function] handler = "pkg.module.function"',
        "function.environment.STAGE: its value in template.yaml is one only a deploy knows; "
        'declare it in pyproject.toml as [tool.sqsl.function.environment] STAGE = "..."',
    )
    # What it could find is there all the same: a made-up name for what the deploy names.
    assert settings.function.name == "consumer-function"
    assert settings.function.environment == {"ORDERS_TABLE_NAME": "{tables.orders}"}
    with pytest.raises(SettingsError) as raised:
        iac_settings.require(settings, "function.handler", "function.runtime")
    assert str(raised.value).splitlines()[0] == settings.missing[1]
    iac_settings.require(settings, "function.runtime", "queue")  # found: no error


def test_a_command_that_needs_a_missing_setting_fails_with_its_message(
    sam_project: Path,
) -> None:
    replace_in(
        sam_project / "template.yaml", "      Handler: sample_orders.handler.lambda_handler\n", ""
    )
    project.use(None)
    try:
        result = CliRunner().invoke(app, ["--project", str(sam_project), "package"])
        checked = CliRunner().invoke(app, ["--project", str(sam_project), "preflight"])
    finally:
        project.use(None)

    assert result.exit_code == 2
    assert "error: function.handler: not found in template.yaml; declare it in" in result.stderr
    assert not (sam_project / "build").exists()  # nothing was started
    # A command that does not need the handler runs.
    assert checked.exit_code == 0, checked.output


def test_a_terraform_project_gets_its_settings_from_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "infra" / "terraform"
    folder.mkdir(parents=True)
    (folder / "main.tf").write_text(SETTINGS_TERRAFORM, encoding="utf-8")
    (tmp_path / "src" / "orders").mkdir(parents=True)
    (tmp_path / "src" / "orders" / "handler.py").write_text("def lambda_handler(e, c): ...\n")

    settings = iac_settings.from_iac(tmp_path)

    assert settings.source == "infra/terraform"
    assert settings.iac == IacSettings(kind="terraform", path="infra/terraform")
    assert settings.region == "eu-west-1"  # the aws provider's
    function = settings.function
    assert (function.name, function.handler, function.code_path, function.memory_mb) == (
        "orders-consumer",
        "orders.handler.lambda_handler",
        "src",
        512,
    )
    assert function.environment == {
        "ORDERS_TABLE_NAME": "{tables.orders}",
        "DEAD_LETTER_QUEUE_URL": "{dlq.url}",
        "REGION": "{region}",
        "LOG_LEVEL": "INFO",
    }
    assert (settings.queue.name, settings.dlq.name, settings.dlq.max_receive_count) == (
        "orders",
        "orders-dlq",
        5,
    )
    assert settings.tables == {
        "orders": TableSettings(name="orders-table", key="orderId", ttl_attribute="expires")
    }
    assert [entry.split(":")[0] for entry in settings.missing] == ["function.environment.COMPUTED"]


def test_terraform_files_at_the_root_are_found_too(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(SETTINGS_TERRAFORM, encoding="utf-8")

    found = iac_settings.find_iac(tmp_path)

    assert found == iac_settings.FoundIac("terraform", tmp_path)


def test_a_cdk_cloud_assembly_gives_the_settings_and_names_what_the_deploy_names(
    tmp_path: Path,
) -> None:
    template = cdk_like_template(window=1)
    resources = template["Resources"]
    function = resources["ConsumerFunction3A4E9A18"]["Properties"]
    function.update(
        Handler="orders.handler.lambda_handler",
        Environment={
            "Variables": {
                "ORDERS_TABLE_NAME": {"Ref": "OrdersTable1A2B3C4D"},
                "DEAD_LETTER_QUEUE_URL": {"Ref": "DeadLetterQueue9F481546"},
            }
        },
    )
    resources["OrdersTable1A2B3C4D"] = {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {"KeySchema": [{"AttributeName": "orderId", "KeyType": "HASH"}]},
    }
    cdk_out = tmp_path / "build" / "cdk.out"
    cdk_out.mkdir(parents=True)
    (cdk_out / "Orders.template.json").write_text(json.dumps(template), encoding="utf-8")
    (tmp_path / "orders").mkdir()
    (tmp_path / "orders" / "handler.py").write_text("def lambda_handler(e, c): ...\n")

    settings = iac_settings.from_iac(tmp_path)

    assert settings.iac == IacSettings(kind="cdk", path="build/cdk.out")
    # CloudFormation names these: the local copies are named after the construct.
    assert (settings.queue.name, settings.dlq.name) == ("source-queue", "dead-letter-queue")
    assert settings.tables == {"orders": TableSettings(name="orders-table", key="orderId")}
    assert settings.function.environment == {
        "ORDERS_TABLE_NAME": "{tables.orders}",
        "DEAD_LETTER_QUEUE_URL": "{dlq.url}",
    }
    assert settings.function.code_path == "."  # the root holds the package
    assert (settings.mapping.batch_size, settings.mapping.batching_window_seconds) == (100, 1)
    assert [entry.split(":")[0] for entry in settings.missing] == ["function.name"]


def test_cdk_json_names_the_cloud_assembly(tmp_path: Path) -> None:
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "x", "output": "out/assembly"}))
    (tmp_path / "out" / "assembly").mkdir(parents=True)
    (tmp_path / "out" / "assembly" / "S.template.json").write_text("{}")

    assert iac_settings.find_iac(tmp_path) == iac_settings.FoundIac(
        "cdk", tmp_path / "out" / "assembly"
    )


def test_samconfig_gives_the_region(sam_project: Path) -> None:
    (sam_project / "samconfig.toml").write_text(
        'version = 0.1\n[default.deploy.parameters]\nregion = "eu-central-1"\n'
    )

    assert project.load(sam_project).region == "eu-central-1"


def test_without_a_table_or_iac_it_says_how_to_declare_the_settings(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')

    with pytest.raises(SettingsError) as raised:
        project.load(tmp_path)

    message = str(raised.value)
    assert message.startswith(
        f"no [tool.sqsl] table in {tmp_path / 'pyproject.toml'} and no IaC found in {tmp_path}"
    )
    assert '[tool.sqsl.function] name and handler ("pkg.module.function")' in message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda text: text.replace("Type: SQS", "Type: SNS"),
            "template.yaml declares no event source mapping from an SQS queue to a function",
        ),
        (
            lambda text: text.replace(
                "        SourceQueue:\n          Type: SQS",
                "        Other:\n          Type: SQS\n          Properties:\n"
                "            Queue: !GetAtt DeadLetterQueue.Arn\n"
                "        SourceQueue:\n          Type: SQS",
            ),
            "template.yaml declares 2 SQS event source mappings "
            "(ConsumerFunction.Events.Other, ConsumerFunction.Events.SourceQueue)",
        ),
        (lambda text: "Resources: [", "its IaC cannot be read: "),
    ],
)
def test_iac_without_exactly_one_sqs_mapping_is_refused(
    sam_project: Path, change: Callable[[str], str], message: str
) -> None:
    template = sam_project / "template.yaml"
    template.write_text(change(template.read_text(encoding="utf-8")), encoding="utf-8")

    with pytest.raises(SettingsError, match=r"no \[tool\.sqsl\] table in") as raised:
        project.load(sam_project)

    assert message in str(raised.value)


def test_a_project_without_pyproject_is_found_by_its_template(
    sam_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sam_project / "pyproject.toml").unlink()
    shutil.rmtree(sam_project / "src" / "sample_orders" / "__pycache__", ignore_errors=True)
    monkeypatch.delenv(project.PROJECT_VARIABLE, raising=False)
    monkeypatch.chdir(sam_project / "src")

    assert project.load().source == "template.yaml"
