"""`make demo`: render the default service into a scratch folder and run it locally.

Steps, each announced as it starts:
1. render the template with every default answer (``copier copy --defaults``);
2. run the service's ``make local``: it bootstraps its environment (the local tools,
   ``sqsl``, from this repository's ``sqs-lambda-tools/``, the path the render pins),
   starts the embedded emulator (MiniStack, no Docker needed), sends sample orders and one
   poison message, processes them with the local event source mapping and lists the DLQ;
3. ``make down``: stop the emulator again (the scratch folder stays for a look).

``--with-tests`` also runs the service's own ``make test`` before the local loop.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

from copier import run_copy

REPO_ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO_ROOT / "build" / "demo",
        help="scratch folder for the rendered service (replaced on every run)",
    )
    parser.add_argument(
        "--with-tests", action="store_true", help="also run the rendered service's make test"
    )
    args = parser.parse_args(argv)
    output: Path = args.output.resolve()

    started = time.monotonic()
    step(f"rendering the default service into {output}")
    if output.exists():
        shutil.rmtree(output)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copier warns that it includes uncommitted changes
        run_copy(
            str(REPO_ROOT),
            output,
            defaults=True,
            vcs_ref="HEAD",
            quiet=True,
            unsafe=False,
            # The post-copy tasks (make sync, git init, pre-commit) need --trust; the demo's
            # `make local` syncs the environment itself, and a scratch folder needs no git.
            skip_tasks=True,
        )
    print(f"    {sum(1 for p in output.rglob('*') if p.is_file())} files rendered")

    if args.with_tests:
        step("running the service's own tests: make test")
        run(["make", "test"], cwd=output)

    step("running the local loop: make local")
    try:
        run(["make", "local"], cwd=output)
    finally:
        step("stopping the emulator: make down")
        run(["make", "down"], cwd=output)

    step(f"done in {time.monotonic() - started:.0f} s; the service is in {output}")
    return 0


def step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def run(command: list[str], *, cwd: Path) -> None:
    # The service has its own environment: hide the template's (uv run's VIRTUAL_ENV, and
    # this make's own variables) so that its Makefile starts from a clean slate.
    inherited = {"VIRTUAL_ENV", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "UV_PYTHON"}
    env = {name: value for name, value in os.environ.items() if name not in inherited}
    completed = subprocess.run(command, cwd=cwd, env=env, check=False)
    if completed.returncode != 0:
        print(f"error: {' '.join(command)} failed in {cwd}", file=sys.stderr)
        raise SystemExit(completed.returncode)


if __name__ == "__main__":
    raise SystemExit(main())
