"""The rendered docker compose stack is valid, pinned and wired as documented.

No Docker engine runs here, so the stack is checked statically, for each emulator and both
queue types: ``docker-compose.yml`` against the Compose specification (check-jsonschema's
bundled ``vendor.compose-spec``, no network), the ``Dockerfile`` with hadolint at its
default threshold (any finding fails), and what the files promise: pinned images, the init
script mounted read-only, a healthcheck that waits for that script, and an app started only
once the emulator is healthy. The healthchecks themselves are run against a stub server
answering like each emulator (shapes read from LocalStack 4.14.0 and MiniStack 1.5.33), so
a check that would pass on a failed init script or never pass at all is caught here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqs_lambda_tools import config

from tests.conftest import RenderCache
from tests.matrix import Combination
from tests.rendering import REPO_ROOT, answers_file

VENV_BIN = Path(sys.executable).parent

LOCALSTACK_IMAGE = "localstack/localstack:4.14.0"
MINISTACK_IMAGE = "ministackorg/ministack:1.5.33"
EMULATOR_IMAGES = {"localstack": LOCALSTACK_IMAGE, "ministack": MINISTACK_IMAGE}
INIT_MOUNT = "./infra/localstack/ready.d:/etc/localstack/init/ready.d:ro"
IN_CONTAINER_GATEWAY = "localhost:4566"

#: Each emulator with each queue type; the runtimes and a region differ between them, so
#: every Python base image and a non-default region are rendered too.
COMBINATIONS = (
    Combination(
        id="localstack-files-localstack-std",
        answers={"project_name": "Stack Files LocalStack Std", "compose_emulator": "localstack"},
    ),
    Combination(
        id="localstack-files-localstack-fifo",
        answers={
            "project_name": "Stack Files LocalStack Fifo",
            "compose_emulator": "localstack",
            "queue_type": "fifo",
            "lambda_runtime": "python3.12",
            "aws_region": "eu-west-3",
        },
    ),
    Combination(
        id="localstack-files-ministack-std",
        answers={
            "project_name": "Stack Files MiniStack Std",
            "compose_emulator": "ministack",
            "lambda_runtime": "python3.14",
            "idempotency": "none",
        },
    ),
    Combination(
        id="localstack-files-ministack-fifo",
        answers={
            "project_name": "Stack Files MiniStack Fifo",
            "compose_emulator": "ministack",
            "queue_type": "fifo",
            "aws_region": "ap-southeast-2",
        },
    ),
)

each_render = pytest.mark.parametrize(
    "combination",
    [pytest.param(c, id=c.id, marks=pytest.mark.xdist_group(c.id)) for c in COMBINATIONS],
)


@pytest.fixture
def rendered(combination: Combination, renders: RenderCache) -> Path:
    return renders.get(combination)


# -- helpers -------------------------------------------------------------------------------


def tool(name: str) -> str:
    """A linter of the template's environment (pinned in pyproject.toml)."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed in the template's environment")
    return found


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def answer(combination: Combination, name: str, default: str) -> str:
    return str(combination.answers.get(name, default))


def compose_of(rendered: Path) -> dict[str, Any]:
    data = yaml.safe_load((rendered / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def package_of(rendered: Path) -> str:
    return str(answers_file(rendered)["package_name"])


def dockerfile_instructions(rendered: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    joined = re.sub(r"\\\n", " ", (rendered / "Dockerfile").read_text(encoding="utf-8"))
    instructions = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            instructions.append((keyword.upper(), " ".join(arguments.split())))
    return instructions


def healthcheck_script(service: Mapping[str, Any]) -> tuple[str, str]:
    """The interpreter and the Python code of an exec-form ``python -c`` healthcheck."""
    test = service["healthcheck"]["test"]
    assert isinstance(test, list), f"healthcheck test is not in exec form: {test!r}"
    assert test[0] == "CMD", test
    assert test[2] == "-c", test
    assert len(test) == 4, test
    return str(test[1]), str(test[3])


# -- the linters ---------------------------------------------------------------------------


@each_render
def test_the_compose_file_follows_the_compose_specification(
    combination: Combination, rendered: Path
) -> None:
    result = run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"],
        rendered,
    )
    assert result.returncode == 0, f"[{combination.id}]\n{result.stdout}{result.stderr}"


def test_the_compose_schema_check_rejects_an_invalid_file(tmp_path: Path) -> None:
    """The validator is live: an unknown service key and a mistyped healthcheck fail it."""
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  emulator:\n    imag: localstack/localstack:4.14.0\n"
        "    healthcheck:\n      retries: many\n",
        encoding="utf-8",
    )
    result = run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"],
        tmp_path,
    )
    assert result.returncode != 0, result.stdout


def hadolint(folder: Path, config_dir: Path) -> subprocess.CompletedProcess[str]:
    """hadolint on ``folder/Dockerfile`` at its defaults, whatever a developer's own config.

    The explicit configuration keeps ``~/.config/hadolint.yaml`` and the like out; it
    states hadolint's default failure threshold (info) and ignores nothing.
    """
    config = config_dir / "hadolint.yaml"
    config.write_text("failure-threshold: info\nignored: []\n", encoding="utf-8")
    return run([tool("hadolint"), "--no-color", "--config", str(config), "Dockerfile"], folder)


@each_render
def test_the_dockerfile_passes_hadolint(
    combination: Combination, rendered: Path, tmp_path: Path
) -> None:
    result = hadolint(rendered, tmp_path)
    # Not even a style note, which the threshold alone would let through.
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"[{combination.id}]\n{output}"
    assert not output, f"[{combination.id}]\n{output}"


def test_hadolint_flags_an_unpinned_image(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM python:latest\nRUN pip install uv\n")
    result = hadolint(tmp_path, tmp_path)
    assert result.returncode != 0
    assert "DL3007" in result.stdout, result.stdout  # the `latest` tag
    assert "DL3013" in result.stdout, result.stdout  # an unpinned pip install


# -- the emulator service ------------------------------------------------------------------


@each_render
def test_the_emulator_image_is_the_pinned_one_the_local_tools_use(
    combination: Combination, rendered: Path
) -> None:
    """The tools' own pins (sqs_lambda_tools.config, the version the render pins)."""
    emulator = answer(combination, "compose_emulator", "localstack")
    image = compose_of(rendered)["services"]["emulator"]["image"]

    assert image == EMULATOR_IMAGES[emulator]
    if emulator == "localstack":
        assert image == config.LOCALSTACK_IMAGE
    else:
        assert image == f"ministackorg/ministack:{config.MINISTACK_VERSION}"


@each_render
def test_no_image_floats(combination: Combination, rendered: Path) -> None:
    compose = (rendered / "docker-compose.yml").read_text(encoding="utf-8")
    dockerfile = (rendered / "Dockerfile").read_text(encoding="utf-8")
    assert not re.search(r"latest\s*$|:latest\b", compose, re.MULTILINE)
    assert not re.search(r":latest\b", dockerfile)
    for name, service in compose_of(rendered)["services"].items():
        if "image" in service:
            assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+", service["image"]), (name, service)


@each_render
def test_the_emulator_is_configured_from_the_answers(
    combination: Combination, rendered: Path
) -> None:
    compose = compose_of(rendered)
    emulator = compose["services"]["emulator"]
    environment = emulator["environment"]
    region = answer(combination, "aws_region", "us-east-1")
    port = config.DEFAULT_EMULATOR_PORT

    assert "version" not in compose  # obsolete in the Compose specification
    assert emulator["ports"] == [f"127.0.0.1:{port}:4566"]
    assert environment["SERVICES"] == "sqs,dynamodb"
    assert environment["AWS_DEFAULT_REGION"] == region
    assert "DEFAULT_REGION" not in environment  # no effect since LocalStack 3
    if answer(combination, "compose_emulator", "localstack") == "localstack":
        assert environment["LOCALSTACK_AUTH_TOKEN"] == "${LOCALSTACK_AUTH_TOKEN:-}"
    else:
        assert environment["MINISTACK_REGION"] == region
        assert "LOCALSTACK_AUTH_TOKEN" not in environment


@each_render
def test_the_init_script_is_mounted_read_only(combination: Combination, rendered: Path) -> None:
    volumes = compose_of(rendered)["services"]["emulator"]["volumes"]

    assert INIT_MOUNT in volumes
    host_folder = rendered / INIT_MOUNT.split(":")[0]
    assert (host_folder / "provision.py").is_file()


# -- the healthchecks, run against a stub emulator -------------------------------------------


def localstack_answers(
    *, scripts: list[str], completed: bool = True, sqs: str = "available"
) -> dict[str, Any]:
    """What LocalStack 4.14.0 answers on its health and init-status endpoints."""
    return {
        "/_localstack/health": {
            "services": {"sqs": sqs, "dynamodb": "running", "lambda": "disabled"},
            "edition": "community",
            "version": "4.14.0",
        },
        "/_localstack/init/ready": {
            "completed": completed,
            "scripts": [
                {"stage": "READY", "name": f"script{index}.py", "state": state}
                for index, state in enumerate(scripts)
            ],
        },
    }


def ministack_answers(
    *, status: str = "completed", total: int = 1, failed: int = 0, sqs: bool = True
) -> dict[str, Any]:
    """What MiniStack 1.5.33 answers on /_localstack/health (it has no init endpoint there)."""
    services = {"dynamodb": "available"} | ({"sqs": "available"} if sqs else {})
    return {
        "/_localstack/health": {
            "services": services,
            "edition": "light",
            "version": "1.5.33",
            "ready_scripts": {
                "status": status,
                "total": total,
                "completed": total if status == "completed" else 0,
                "failed": failed,
            },
        }
    }


@contextmanager
def stub_emulator(answers: Mapping[str, Any]) -> Iterator[str]:
    """An HTTP server on a free loopback port answering ``answers`` as JSON; yields host:port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answers.get(self.path)
            payload = json.dumps(body if body is not None else {"error": "unknown"}).encode()
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def healthcheck_exit_code(rendered: Path, answers: Mapping[str, Any] | None) -> int:
    """Run the emulator's healthcheck against a stub (``None``: nothing listening)."""
    _, script = healthcheck_script(compose_of(rendered)["services"]["emulator"])
    assert IN_CONTAINER_GATEWAY in script
    with ExitStack() as stack:
        if answers is None:
            with stub_emulator({}) as address:
                pass  # closed again: connections to that port are refused
        else:
            address = stack.enter_context(stub_emulator(answers))
        result = subprocess.run(
            [sys.executable, "-c", script.replace(IN_CONTAINER_GATEWAY, address)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    return result.returncode


LOCALSTACK_CASES = {
    "ready": (localstack_answers(scripts=["SUCCESSFUL"]), True),
    "script still running": (localstack_answers(scripts=["RUNNING"], completed=False), False),
    "stage not started": (localstack_answers(scripts=["UNKNOWN"], completed=False), False),
    "script failed": (localstack_answers(scripts=["SUCCESSFUL", "ERROR"]), False),
    "no script mounted": (localstack_answers(scripts=[]), False),
    "sqs not available": (localstack_answers(scripts=["SUCCESSFUL"], sqs="error"), False),
    "nothing listening": (None, False),
}
MINISTACK_CASES = {
    "ready": (ministack_answers(), True),
    "scripts pending": (ministack_answers(status="pending", total=0), False),
    "scripts running": (ministack_answers(status="running"), False),
    "script failed": (ministack_answers(failed=1), False),
    "no script mounted": (ministack_answers(total=0), False),
    "sqs not served": (ministack_answers(sqs=False), False),
    "nothing listening": (None, False),
}


@each_render
def test_the_healthcheck_passes_only_once_the_init_script_succeeded(
    combination: Combination, rendered: Path
) -> None:
    emulator = answer(combination, "compose_emulator", "localstack")
    interpreter, _ = healthcheck_script(compose_of(rendered)["services"]["emulator"])
    # Tools each image has: LocalStack's Debian base has python3, MiniStack's Alpine
    # Python image has python (and no curl or wget).
    assert interpreter == ("python3" if emulator == "localstack" else "python")
    cases = LOCALSTACK_CASES if emulator == "localstack" else MINISTACK_CASES

    outcomes = {
        case: healthcheck_exit_code(rendered, answers) == 0 for case, (answers, _) in cases.items()
    }

    assert outcomes == {case: healthy for case, (_, healthy) in cases.items()}


# -- the app service -----------------------------------------------------------------------


@each_render
def test_the_app_runs_the_local_mapping_against_the_emulator(
    combination: Combination, rendered: Path
) -> None:
    app = compose_of(rendered)["services"]["app"]
    environment = app["environment"]

    assert app["build"]["context"] == "."
    assert app["build"]["dockerfile"] == "Dockerfile"
    assert app["command"][:2] == ["sqsl", "run"]
    assert environment["AWS_ENDPOINT_URL"] == "http://emulator:4566"
    assert environment["AWS_DEFAULT_REGION"] == answer(combination, "aws_region", "us-east-1")
    assert environment["AWS_ACCESS_KEY_ID"] == environment["AWS_SECRET_ACCESS_KEY"] == "test"
    assert app["depends_on"] == {"emulator": {"condition": "service_healthy"}}
    assert app["restart"] == "on-failure"


@each_render
def test_the_watched_code_is_where_the_image_imports_it_from(
    combination: Combination, rendered: Path
) -> None:
    watch = compose_of(rendered)["services"]["app"]["develop"]["watch"]
    synced = [rule for rule in watch if rule["action"] == "sync+restart"]
    instructions = dockerfile_instructions(rendered)
    environment = " ".join(arguments for keyword, arguments in instructions if keyword == "ENV")

    assert [(rule["path"], rule["target"]) for rule in synced] == [("./src", "/app/src")]
    assert ("WORKDIR", "/app") in instructions
    assert ("COPY", "--chown=10001:10001 src ./src") in instructions
    assert "PYTHONPATH=/app/src" in environment
    rebuilt = {rule["path"] for rule in watch if rule["action"] == "rebuild"}
    assert rebuilt == {"./pyproject.toml", "./uv.lock"}


# -- the Dockerfile ------------------------------------------------------------------------


@each_render
def test_the_image_runs_the_runtime_python_and_the_pinned_uv(
    combination: Combination, rendered: Path
) -> None:
    version = answer(combination, "lambda_runtime", "python3.13").removeprefix("python")
    instructions = dockerfile_instructions(rendered)
    froms = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    runs = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    makefile = (rendered / "Makefile").read_text(encoding="utf-8")
    uv_version = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)

    assert len(froms) == 1
    assert re.fullmatch(rf"python:{re.escape(version)}\.\d+-slim-trixie", froms[0]), froms
    assert uv_version, "UV_VERSION not found in the Makefile"
    assert f"pip install --no-cache-dir uv=={uv_version.group(1)}" in runs
    # The versions of uv.lock, but for the local tools, installed from their build context.
    export = "uv export --frozen --no-hashes --no-emit-project --no-emit-package sqs-lambda-tools"
    install = "uv pip install --no-deps --requirements /tmp/requirements.txt /opt/sqs-lambda-tools"
    assert export in runs
    assert install in runs
    assert "UV_PYTHON_DOWNLOADS=never" in " ".join(
        arguments for keyword, arguments in instructions if keyword == "ENV"
    )


@each_render
def test_the_image_runs_the_loop_as_a_non_root_user(
    combination: Combination, rendered: Path
) -> None:
    instructions = dockerfile_instructions(rendered)
    keywords = [keyword for keyword, _ in instructions]
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    command = [arguments for keyword, arguments in instructions if keyword == "CMD"]

    assert users == ["10001:10001"]
    assert keywords.index("USER") < keywords.index("CMD")
    assert ("STOPSIGNAL", "SIGINT") in instructions
    assert len(command) == 1
    assert json.loads(command[0]) == ["sqsl", "run"]


@each_render
def test_the_build_context_holds_what_the_image_copies_and_no_secret(
    combination: Combination, rendered: Path
) -> None:
    patterns = (rendered / ".dockerignore").read_text(encoding="utf-8").split("\n")
    allowed = {line[1:].rstrip("/") for line in patterns if line.startswith("!")}
    sources = []
    for keyword, arguments in dockerfile_instructions(rendered):
        # COPY --from=<context> copies from another build context, not this one.
        if keyword == "COPY" and "--from=" not in arguments:
            parts = [part for part in arguments.split() if not part.startswith("--")]
            sources += parts[:-1]

    # An allow-list: everything is left out first, then what the image copies comes back.
    assert next(line for line in patterns if line and not line.startswith("#")) == "*"
    missing = []
    for source in sources:
        name = source.rstrip("*").rstrip("/")
        if name not in allowed:
            missing.append(f"{source}: not allowed by .dockerignore")
        if not source.endswith("*") and not (rendered / name).exists():
            missing.append(f"{source}: not in the render")
    assert not missing, f"[{combination.id}] " + "; ".join(missing)
    assert not any(entry.startswith(".env") for entry in allowed)


@each_render
def test_the_image_gets_the_local_tools_from_where_the_service_pins_them(
    combination: Combination, rendered: Path
) -> None:
    """The compose file's `sqsl` build context is the source of [tool.uv.sources] (here the
    folder the template was rendered from), and the Dockerfile copies it."""
    build = compose_of(rendered)["services"]["app"]["build"]
    pyproject = tomllib.loads((rendered / "pyproject.toml").read_text(encoding="utf-8"))
    source = pyproject["tool"]["uv"]["sources"]["sqs-lambda-tools"]
    copies = [
        arguments
        for keyword, arguments in dockerfile_instructions(rendered)
        if keyword == "COPY" and arguments.startswith("--from=")
    ]

    assert source == {"path": str(REPO_ROOT / "sqs-lambda-tools")}
    assert build["additional_contexts"] == {"sqsl": source["path"]}
    assert copies == ["--from=sqsl . /opt/sqs-lambda-tools"]
