"""The project's settings: every refusal names the file and the key, placeholders resolve
to the resources of a run, and suffixed copies keep SQS's rules.

Each test edits a copy of the sample project's ``pyproject.toml`` (``[tool.sqsl]``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sqs_lambda_tools import project
from sqs_lambda_tools.cli import app
from sqs_lambda_tools.project import Project, QueueUrls, Resources, SettingsError

pytestmark = pytest.mark.unit

Make = Callable[..., Project]


def replacing(old: str, new: str, *more: str) -> Callable[[str], str]:
    """An edit of the sample's text: ``old`` by ``new`` (then each further pair)."""
    pairs = [(old, new), *zip(more[::2], more[1::2], strict=True)]

    def edit(text: str) -> str:
        for before, after in pairs:
            assert text.count(before) == 1, f"{before!r} is not once in the sample's text"
            text = text.replace(before, after)
        return text

    return edit


MAPPING = "[tool.sqsl.mapping]\nbatch_size = 10\nbatching_window = 0\nmaximum_concurrency = 5\n"

# (what is wrong, the text as the sample has it, the text instead [, more such pairs],
# the message after "<pyproject.toml>: ")
REFUSALS = [
    (
        "unknown top-level key",
        'region = "us-east-1"',
        'regoin = "us-east-1"',
        "[tool.sqsl]: unknown key 'regoin' (did you mean 'region'?); allowed: region, "
        "function, mapping, queue, dlq, tables, samples, bench, iac",
    ),
    (
        "region",
        'region = "us-east-1"',
        'region = "Frankfurt"',
        "[tool.sqsl] region: expected a value matching [a-z]{2}(-[a-z]+)+-\\d, got 'Frankfurt'",
    ),
    (
        "function name missing",
        '[tool.sqsl.function]\nname = "sample-orders"\n',
        "[tool.sqsl.function]\n",
        "[tool.sqsl.function]: name is required",
    ),
    (
        "bench record handler without a function",
        'group_key = "userId"\n',
        'group_key = "userId"\n\n[tool.sqsl.bench]\nrecord_handler = "sample_orders.handler"\n',
        "[tool.sqsl.bench] record_handler: expected a value matching "
        "[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*, got 'sample_orders.handler'",
    ),
    (
        "unknown function key",
        'handler = "sample_orders.handler.lambda_handler"',
        'handlr = "sample_orders.handler.lambda_handler"',
        "[tool.sqsl.function]: unknown key 'handlr' (did you mean 'handler'?); allowed: name, "
        "handler, code, runtime, architecture, timeout, memory, environment",
    ),
    (
        "handler without a module",
        'handler = "sample_orders.handler.lambda_handler"',
        'handler = "lambda_handler"',
        "[tool.sqsl.function] handler: expected a value matching "
        "[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)+, got 'lambda_handler'",
    ),
    (
        "runtime",
        'runtime = "python3.13"',
        'runtime = "nodejs22.x"',
        "[tool.sqsl.function] runtime: expected one of python3.9, python3.10, python3.11, "
        "python3.12, python3.13, python3.14, got 'nodejs22.x'",
    ),
    (
        "architecture",
        'architecture = "arm64"',
        'architecture = "arm"',
        "[tool.sqsl.function] architecture: expected one of arm64, x86_64, got 'arm'",
    ),
    (
        "timeout",
        "timeout = 30",
        "timeout = 901",
        "[tool.sqsl.function] timeout: expected a whole number 1-900, got 901",
    ),
    (
        "memory as text",
        "memory = 256",
        'memory = "256"',
        "[tool.sqsl.function] memory: expected a whole number 128-10240, got '256'",
    ),
    (
        "environment value not a string",
        'ORDERS_TABLE_NAME = "{tables.orders}"',
        "ORDERS_TABLE_NAME = 3",
        "[tool.sqsl.function.environment] ORDERS_TABLE_NAME: expected a string, got 3",
    ),
    (
        "unknown placeholder",
        'ORDERS_TABLE_NAME = "{tables.orders}"',
        'ORDERS_TABLE_NAME = "{tables.order}"',
        "[tool.sqsl.function.environment] ORDERS_TABLE_NAME: unknown placeholder "
        "{tables.order}; known: {dlq.arn}, {dlq.name}, {dlq.url}, {function.name}, "
        "{queue.arn}, {queue.name}, {queue.url}, {region}, {tables.orders}",
    ),
    (
        "batch size",
        "batch_size = 10",
        "batch_size = 0",
        "[tool.sqsl.mapping] batch_size: expected a whole number 1-10000, got 0",
    ),
    (
        "maximum concurrency",
        "maximum_concurrency = 5",
        "maximum_concurrency = 1",
        "[tool.sqsl.mapping] maximum_concurrency: expected a whole number 2-1000, got 1",
    ),
    (
        "visibility timeout",
        "visibility_timeout = 180",
        "visibility_timeout = 43201",
        "[tool.sqsl.queue] visibility_timeout: expected a whole number 0-43200, got 43201",
    ),
    (
        "fifo not a flag",
        "fifo = false",
        'fifo = "no"',
        "[tool.sqsl.queue] fifo: expected true or false, got 'no'",
    ),
    (
        "a FIFO queue without .fifo",
        "fifo = false",
        "fifo = true",
        "[tool.sqsl.queue] name: a FIFO queue's name ends in .fifo and a standard queue's "
        "does not (fifo = true, name = 'sample-orders')",
    ),
    (
        "a FIFO DLQ of a standard queue",
        'name = "sample-orders-dlq"',
        'name = "sample-orders-dlq.fifo"',
        "[tool.sqsl.dlq] name: the DLQ of a standard queue is a standard queue, "
        "got 'sample-orders-dlq.fifo'",
    ),
    (
        "a standard DLQ of a FIFO queue",
        'name = "sample-orders"\nfifo = false',
        'name = "sample-orders.fifo"\nfifo = true',
        "[tool.sqsl.dlq] name: the DLQ of a FIFO queue is a FIFO queue (.fifo), "
        "got 'sample-orders-dlq'",
    ),
    (
        "max receive count",
        "max_receive_count = 3",
        "max_receive_count = 0",
        "[tool.sqsl.dlq] max_receive_count: expected a whole number 1-1000, got 0",
    ),
    (
        "a table without its key",
        'key = "orderId"',
        "",
        "[tool.sqsl.tables.orders]: key is required",
    ),
    (
        "a table name too short",
        'name = "sample-orders-orders"',
        'name = "so"',
        "[tool.sqsl.tables.orders] name: expected a value matching [A-Za-z0-9_.-]{3,255}, got 'so'",
    ),
    (
        "an empty TTL attribute",
        'key = "orderId"',
        'key = "orderId"\nttl = ""',
        "[tool.sqsl.tables.orders] ttl: expected a non-empty string, got ''",
    ),
    (
        "a table that is a name",
        '[tool.sqsl.tables.orders]\nname = "sample-orders-orders"\nkey = "orderId"\n',
        '[tool.sqsl.tables]\norders = "sample-orders-orders"\n',
        "[tool.sqsl.tables] orders: expected a table",
    ),
    (
        "sample function without its module",
        'function = "sample_orders.samples:sample_order"',
        'function = "sample_orders.samples.sample_order"',
        "[tool.sqsl.samples] function: expected a value matching "
        "[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*, got 'sample_orders.samples.sample_order'",
    ),
    (
        "IaC kind",
        'kind = "sam"',
        'kind = "pulumi"',
        "[tool.sqsl.iac] kind: expected one of sam, cdk, terraform, cloudformation, none, "
        "got 'pulumi'",
    ),
    (
        "CDK without its app",
        'kind = "sam"',
        'kind = "cdk"',
        '[tool.sqsl.iac] cdk_app is required for kind = "cdk": the module of the CDK app, '
        'run with `python -m` (e.g. "my_service_infra.app")',
    ),
    (
        "a section given as a value",
        "region = ",
        "mapping = 5\nregion = ",
        MAPPING,
        "",
        "[tool.sqsl] mapping: expected a table, got 5",
    ),
]


@pytest.mark.parametrize(
    ("edits", "message"),
    [pytest.param(tuple(edits), message, id=name) for name, *edits, message in REFUSALS],
)
def test_bad_settings_are_refused_naming_the_file_and_the_key(
    make_sample_project: Make, edits: tuple[str, ...], message: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        make_sample_project(edit=replacing(*edits))

    pyproject = Path(str(raised.value).split(": ", 1)[0])
    assert pyproject.name == "pyproject.toml"
    assert pyproject.parent.name == "sample-orders"
    assert str(raised.value) == f"{pyproject}: {message}"


def test_a_pyproject_that_is_not_toml_is_refused(make_sample_project: Make) -> None:
    with pytest.raises(SettingsError, match=r"sample-orders/pyproject\.toml: not valid TOML: "):
        make_sample_project(edit=lambda text: text + "\n[tool.sqsl\n")


def test_a_settings_table_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool]\nsqsl = "yes"\n', encoding="utf-8")

    with pytest.raises(SettingsError) as raised:
        project.load(tmp_path)

    assert str(raised.value) == f"{tmp_path / 'pyproject.toml'}: [tool.sqsl] must be a table"


def test_bad_settings_stop_any_command_before_it_starts(
    make_sample_project: Make, tmp_path: Path
) -> None:
    # GIVEN a current project, and another whose queue settings are wrong
    make_sample_project(name="current")
    with pytest.raises(SettingsError):
        make_sample_project(name="broken", edit=replacing("fifo = false", "fifo = 1"))
    broken = tmp_path / "broken"

    # WHEN a command is given the broken one
    result = CliRunner().invoke(app, ["--project", str(broken), "up", "--embedded"])

    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {broken / 'pyproject.toml'}: [tool.sqsl.queue] fifo: expected true or false, "
        "got 1\n"
    )
    assert result.stdout == ""
    assert not (broken / ".local").exists()  # nothing was started


# --- placeholders --------------------------------------------------------------------------

EVERY_PLACEHOLDER = """
[tool.sqsl.function.environment]
ORDERS_TABLE_NAME = "{tables.orders}"
DEAD_LETTER_QUEUE_URL = "{dlq.url}"
QUEUE = "{queue.name} {queue.url} {queue.arn}"
DLQ = "{dlq.name} {dlq.arn}"
WHERE = "arn:aws:lambda:{region}:function:{function.name}"
PLAIN = "no placeholder, {not one either"
"""


def test_placeholders_name_the_resources_of_the_run(make_sample_project: Make) -> None:
    settings = make_sample_project(
        edit=lambda text: re.sub(
            r"\[tool\.sqsl\.function\.environment\]\n(.+\n)+", EVERY_PLACEHOLDER.lstrip(), text
        )
    )
    resources = settings.resources().with_suffix("-t1")
    urls = QueueUrls(
        source_url="http://q/sample-orders-t1",
        source_arn="arn:q",
        dead_letter_url="http://q/sample-orders-dlq-t1",
        dead_letter_arn="arn:dlq",
    )

    assert settings.environment(resources, urls) == {
        "AWS_LAMBDA_FUNCTION_NAME": "sample-orders",
        "ORDERS_TABLE_NAME": "sample-orders-orders-t1",
        "DEAD_LETTER_QUEUE_URL": "http://q/sample-orders-dlq-t1",
        "QUEUE": "sample-orders-t1 http://q/sample-orders-t1 arn:q",
        "DLQ": "sample-orders-dlq-t1 arn:dlq",
        "WHERE": "arn:aws:lambda:us-east-1:function:sample-orders",
        "PLAIN": "no placeholder, {not one either",
    }


def test_a_placeholder_without_a_value_yet_is_empty(sample_project: Project) -> None:
    # `invoke` without an emulator has no DLQ URL to give
    environment = sample_project.environment(sample_project.resources(), QueueUrls())

    assert environment["DEAD_LETTER_QUEUE_URL"] == ""
    assert environment["ORDERS_TABLE_NAME"] == "sample-orders-orders"


# --- suffixed copies -----------------------------------------------------------------------


def test_a_suffix_names_every_queue_and_table(sample_project: Project) -> None:
    assert sample_project.resources().with_suffix("-t1a2b") == Resources(
        source_queue="sample-orders-t1a2b",
        dead_letter_queue="sample-orders-dlq-t1a2b",
        tables={"orders": "sample-orders-orders-t1a2b"},
        fifo=False,
    )


def test_a_fifo_queues_suffix_goes_before_fifo(fifo_sample_project: Project) -> None:
    suffixed = fifo_sample_project.resources().with_suffix("-t1a2b")

    assert suffixed.source_queue == "sample-orders-t1a2b.fifo"
    assert suffixed.dead_letter_queue == "sample-orders-dlq-t1a2b.fifo"
    assert suffixed.tables == {"orders": "sample-orders-orders-t1a2b"}


@pytest.mark.parametrize("fifo", [False, True])
def test_a_long_name_loses_its_front_and_the_queue_and_dlq_stay_distinct(fifo: bool) -> None:
    tail = ".fifo" if fifo else ""
    long = "x" * 76
    resources = Resources(
        source_queue=f"{long}{tail}", dead_letter_queue=f"{long}-dlq{tail}", tables={}, fifo=fifo
    )

    suffixed = resources.with_suffix("-t1a2b3c4d")

    for name in (suffixed.source_queue, suffixed.dead_letter_queue):
        assert len(name) == project.SQS_MAX_QUEUE_NAME
        assert name.endswith(f"-t1a2b3c4d{tail}")
    assert suffixed.dead_letter_queue.endswith(f"-dlq-t1a2b3c4d{tail}")
    assert suffixed.source_queue != suffixed.dead_letter_queue


# --- which project ---------------------------------------------------------------------------


def test_the_project_is_found_from_a_folder_inside_it(
    sample_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(project.PROJECT_VARIABLE, raising=False)

    assert project.find_root(sample_project.root / "src" / "sample_orders") == sample_project.root


def test_sqsl_project_names_the_project(
    sample_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(project.PROJECT_VARIABLE, str(sample_project.root))

    assert project.find_root(tmp_path) == sample_project.root
    assert project.load().function.name == "sample-orders"
