"""`make tflocal-apply` / `tflocal-destroy` point tflocal at the emulator `make up` started.

`make up` may have put the emulator on another port than 4566 (another service's holds
it), so the targets ask `sqsl endpoint` (the local tools read the emulator `make up`
recorded) rather than assume localhost:4566. Neither terraform nor the provider registry is
needed: the Makefile runs here with a fake `sqsl` (DEV=...), a fake tflocal (TFLOCAL=...)
and a fake terraform on PATH; what is checked is the endpoint each tflocal run receives,
and that nothing runs when no emulator does. (That `sqsl endpoint` finds the right
emulator is the tools package's own test.)
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.rendering import render

FAKE_DEV = """#!/bin/sh
echo "dev $*" >> "$CALLS"
if [ "$1" = endpoint ]; then
  if [ -n "$FAKE_ENDPOINT" ]; then echo "$FAKE_ENDPOINT"; exit 0; fi
  echo "error: no emulator is running for this service: \\`make up\\` starts one" >&2
  exit 1
fi
"""
# Records each tflocal run with the endpoint it was given and the folder it ran in.
FAKE_TFLOCAL = """#!/bin/sh
echo "tflocal $* at $AWS_ENDPOINT_URL in $(basename "$PWD")" >> "$CALLS"
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A terraform service whose .venv counts as synced (make must not build it)."""
    dest = render(tmp_path_factory.mktemp("tflocal") / "svc", iac="terraform")
    stamp = dest / ".venv" / ".make-synced"
    stamp.parent.mkdir()
    stamp.touch()
    return dest


@pytest.fixture
def fakes(tmp_path: Path) -> dict[str, str]:
    """A fake dev CLI, tflocal and terraform, and the environment make runs with."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {
        "fake-dev": FAKE_DEV,
        "fake-tflocal": FAKE_TFLOCAL,
        "terraform": "#!/bin/sh\nexit 0\n",
    }.items():
        (bin_dir / name).write_text(text, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"AWS_ENDPOINT_URL", "TFLOCAL_ENDPOINT", "MAKEFLAGS", "MAKELEVEL"}
    }
    environment["PATH"] = f"{bin_dir}{os.pathsep}{environment['PATH']}"
    environment["CALLS"] = str(tmp_path / "calls.txt")
    return environment


def make(
    service: Path, environment: dict[str, str], target: str, *variables: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    calls = Path(environment["CALLS"])
    calls.unlink(missing_ok=True)
    result = subprocess.run(
        # UV: an existing file, so that make bootstraps nothing.
        ["make", target, "DEV=fake-dev", "TFLOCAL=fake-tflocal", "UV=/bin/sh", *variables],
        cwd=service,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    lines = calls.read_text(encoding="utf-8").splitlines() if calls.exists() else []
    return result, lines


def test_tflocal_apply_uses_the_endpoint_make_up_recorded(
    service: Path, fakes: dict[str, str]
) -> None:
    # GIVEN `make up` put the emulator on 4571 (4566 was another service's)
    fakes["FAKE_ENDPOINT"] = "http://127.0.0.1:4571"

    result, calls = make(service, fakes, "tflocal-apply")

    assert result.returncode == 0, result.stderr
    assert "tflocal: the emulator at http://127.0.0.1:4571" in result.stdout
    tflocal = [line for line in calls if line.startswith("tflocal")]
    assert tflocal == [
        "tflocal init -input=false at http://127.0.0.1:4571 in terraform",
        "tflocal apply -input=false -auto-approve at http://127.0.0.1:4571 in terraform",
    ]
    assert "dev package" in calls


def test_tflocal_destroy_uses_the_endpoint_make_up_recorded(
    service: Path, fakes: dict[str, str]
) -> None:
    fakes["FAKE_ENDPOINT"] = "http://127.0.0.1:4571"

    result, calls = make(service, fakes, "tflocal-destroy")

    assert result.returncode == 0, result.stderr
    assert (
        calls[-1]
        == "tflocal destroy -input=false -auto-approve at http://127.0.0.1:4571 in terraform"
    )


@pytest.mark.parametrize("target", ["tflocal-apply", "tflocal-destroy"])
def test_without_a_running_emulator_tflocal_never_runs_and_make_up_is_named(
    service: Path, fakes: dict[str, str], target: str
) -> None:
    result, calls = make(service, fakes, target)

    assert result.returncode != 0
    assert "`make up`" in result.stderr
    if target == "tflocal-apply":  # an emulator of its own: make up's has the same names
        assert 'make dev ARGS="up --bare"' in result.stderr
    assert not [line for line in calls if line.startswith("tflocal")]
    assert "dev package" not in calls  # it fails before packaging


def test_tflocal_endpoint_given_to_make_wins(service: Path, fakes: dict[str, str]) -> None:
    result, calls = make(
        service, fakes, "tflocal-destroy", "TFLOCAL_ENDPOINT=http://127.0.0.1:9999"
    )

    assert result.returncode == 0, result.stderr
    assert calls == [
        "tflocal destroy -input=false -auto-approve at http://127.0.0.1:9999 in terraform"
    ]
