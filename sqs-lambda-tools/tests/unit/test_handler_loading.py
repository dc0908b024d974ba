"""`run` and `invoke` import the handler named by ``[tool.sqsl.function] handler``, afresh,
and refuse one that does not import, naming the setting and the file, before polling.

AWS is moto's: the commands reach it as real AWS (``--aws``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from sqs_lambda_tools import code_import, run_cli
from sqs_lambda_tools.cli import app
from sqs_lambda_tools.project import Project, SettingsError
from sqs_lambda_tools.testing import make_sqs_event

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.unit

HANDLER_MODULE = "sample_orders.handler"
SETTING = "[tool.sqsl.function] handler"


@pytest.fixture(autouse=True)
def fresh_imports() -> Iterator[None]:
    """The sample project's package and ``sys.path`` as they were, after each test."""
    path = list(sys.path)
    saved = code_import.purge("sample_orders")
    yield
    code_import.purge("sample_orders")
    sys.modules.update(saved)
    sys.path[:] = path


def with_handler(handler: str) -> Callable[[str], str]:
    """An edit of the sample project's settings: another handler path."""
    return lambda text: text.replace(
        'handler = "sample_orders.handler.lambda_handler"', f'handler = "{handler}"'
    )


def test_the_handler_is_imported_from_the_code_folder_afresh_each_time(
    sample_project: Project,
) -> None:
    # GIVEN the handler, loaded once, whose module state has changed since
    first = run_cli.load_handler(sample_project)
    module = sys.modules[HANDLER_MODULE]
    module.INVOCATIONS = 5  # type: ignore[attr-defined]

    # WHEN it is loaded again
    second = run_cli.load_handler(sample_project)

    # THEN it comes from the project's code folder, in a module of its own: state afresh
    again = sys.modules[HANDLER_MODULE]
    assert again is not module
    assert again.INVOCATIONS == 0
    assert Path(str(again.__file__)).is_relative_to(sample_project.code_dir)
    assert first is not second
    assert callable(second)


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        ("sample_orders.missing.lambda_handler", "no module 'sample_orders.missing' in"),
        ("no_such_package.handler.lambda_handler", "no module 'no_such_package' in"),
        ("sample_orders.handler.no_such_function", "has no function 'no_such_function'"),
        ("sample_orders.handler.INVOCATIONS", "has no function 'INVOCATIONS'"),
    ],
    ids=["no-module", "no-package", "no-function", "not-callable"],
)
def test_a_handler_that_does_not_import_is_refused_naming_the_setting_and_file(
    make_sample_project: Callable[..., Project], handler: str, expected: str
) -> None:
    project = make_sample_project(edit=with_handler(handler))

    with pytest.raises(SettingsError) as refused:
        run_cli.load_handler(project)

    message = str(refused.value)
    assert SETTING in message
    assert str(project.root / "pyproject.toml") in message
    assert repr(handler) in message
    assert expected in message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            'raise RuntimeError("ORDERS_TABLE_NAME is not set")\n',
            "does not import: RuntimeError: ORDERS_TABLE_NAME is not set",
        ),
        (
            "import a_dependency_not_installed\n",
            "does not import: ModuleNotFoundError: No module named 'a_dependency_not_installed' "
            "(is it installed in this environment?)",
        ),
    ],
    ids=["raises", "missing-dependency"],
)
def test_a_handler_module_that_fails_on_import_is_refused_with_its_error(
    make_sample_project: Callable[..., Project], source: str, expected: str
) -> None:
    project = make_sample_project(edit=with_handler("sample_orders.broken.lambda_handler"))
    broken = project.code_dir / "sample_orders" / "broken.py"
    broken.write_text(source, encoding="utf-8")

    with pytest.raises(SettingsError) as refused:
        run_cli.load_handler(project)

    assert SETTING in str(refused.value)
    assert f"sample_orders.broken {expected}" in str(refused.value)


@pytest.fixture
def aws(sample_project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[SQSClient]:
    """GIVEN the sample project's queues in moto, reached as real AWS, and one message."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", sample_project.region)
    with mock_aws():
        sqs: SQSClient = boto3.client("sqs", region_name=sample_project.region)
        url = sqs.create_queue(QueueName=sample_project.queue.name)["QueueUrl"]
        sqs.create_queue(QueueName=sample_project.dlq.name)
        sqs.send_message(QueueUrl=url, MessageBody='{"orderId": "o-1"}')
        yield sqs


@pytest.mark.parametrize("command", ["run", "invoke"])
def test_run_and_invoke_refuse_a_bad_handler_with_exit_status_2_and_poll_nothing(
    aws: SQSClient,
    make_sample_project: Callable[..., Project],
    tmp_path: Path,
    command: str,
) -> None:
    # GIVEN a project whose handler path names a module that is not there
    project = make_sample_project(
        name="misnamed", edit=with_handler("sample_orders.handlr.lambda_handler")
    )
    event = tmp_path / "event.json"
    event.write_text(json.dumps(make_sqs_event(['{"orderId": "o-1"}'])), encoding="utf-8")
    arguments = ["run", "--until-empty"] if command == "run" else ["invoke", str(event)]

    # WHEN the command starts
    result = CliRunner().invoke(app, [*arguments, "--aws"])

    # THEN it says what to fix, where, and stops with exit status 2
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert SETTING in result.stderr
    assert str(project.root / "pyproject.toml") in result.stderr
    assert "no module 'sample_orders.handlr'" in result.stderr
    assert "Polling" not in result.output
    # AND the message was not received: nothing polled
    url = aws.get_queue_url(QueueName=project.queue.name)["QueueUrl"]
    depths = aws.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert depths == {
        "ApproximateNumberOfMessages": "1",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
