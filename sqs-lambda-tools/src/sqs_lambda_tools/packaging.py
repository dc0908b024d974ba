"""``package``: the Lambda artifact, ``build/lambda.zip``, and its unpacked tree ``build/lambda/``.

The artifact holds the handler's top-level package (from the project's code folder, e.g.
``src/<package>``) and the runtime dependencies pinned in the project's ``uv.lock``,
nothing else: never the local tools (this package), the tests or a dev dependency
(pytest, moto, typer...). A project that declares no ``[project] dependencies`` needs no
``uv.lock``: its artifact is its package alone.

Why uv installs the dependencies for a platform rather than for this machine: the
function runs on the Lambda runtime and architecture of the project's settings (Amazon
Linux), so wheels are chosen for that interpreter and CPU (``--python-platform``,
``--python-version``), binaries only: a source build here would compile for this machine.
The IaC points at ``build/lambda/`` (SAM ``CodeUri``, Terraform ``archive_file``, CDK
``Code.from_asset``).

Why the zip is deterministic (sorted entries, one fixed timestamp and mode): packaging
unchanged code gives the same bytes and hash, so a deploy sees no change and uploads
nothing new.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import iac_settings
from .emulator import find_uv
from .project import PYPROJECT, Project, current

Log = Callable[[str], None]

#: The project's build folder, relative to its root.
BUILD_DIR_NAME = "build"
# What the IaC deploys: the tree (SAM, Terraform, CDK) and its zip (deploy-local).
TREE_NAME = "lambda"
ZIP_NAME = "lambda.zip"
# Zip timestamps cannot be older than 1980; any fixed instant makes the bytes repeatable.
FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
# Read for everyone; Lambda runs the code as another user than the one that unzips it.
FILE_MODE = 0o644
# Never shipped: byte code is compiled for this machine's Python, console scripts (bin/)
# point at this machine's interpreter, and .lock is uv's lock file of the target folder.
_SKIPPED_NAMES = frozenset({"__pycache__", "bin", ".lock"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


class PackagingError(RuntimeError):
    """The artifact could not be built; the message says why and what to do."""


@dataclass(frozen=True)
class Artifact:
    """A built artifact: the unpacked tree, the zip, its size and SHA-256."""

    tree: Path
    zip_file: Path
    size: int
    sha256: str
    files: int


def build_dir_of(project: Project | None = None) -> Path:
    """Where ``package`` writes: ``<project>/build``."""
    return (project or current()).root / BUILD_DIR_NAME


def tree_of(project: Project | None = None) -> Path:
    """The unpacked artifact, ``<project>/build/lambda``: what the IaC points at."""
    return build_dir_of(project) / TREE_NAME


def build(
    build_dir: Path | None = None,
    *,
    project: Project | None = None,
    log: Log = print,
) -> Artifact:
    """Export the runtime requirements, install them and the handler's package into
    ``build_dir/lambda/`` (default: the project's ``build/``), zip that into
    ``build_dir/lambda.zip``."""
    project = project or current()
    iac_settings.require(project, "function.handler", "function.runtime")
    build_dir = build_dir or build_dir_of(project)
    package = project.function.package
    source = _package_source(project)
    root = project.root
    dependencies = declared_dependencies(root)
    locked = (root / "uv.lock").is_file()
    if dependencies and not locked:
        raise PackagingError(
            f"{root / PYPROJECT} declares runtime dependencies ({', '.join(dependencies)}) "
            f"but {root} has no uv.lock: the artifact installs the locked versions; "
            f"run `uv lock` in {root} to create it"
        )
    uv = find_uv(project) if locked else None
    if locked and uv is None:
        raise PackagingError(
            "uv is not available: it installs the dependencies locked in uv.lock; install "
            "uv and put it on PATH (a rendered service's Makefile provides it)"
        )
    tree = build_dir / TREE_NAME
    zip_file = build_dir / ZIP_NAME
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    if uv is None:
        log(
            f"no runtime dependencies ([project] dependencies in {PYPROJECT}): "
            f"the artifact holds {package} alone"
        )
    else:
        _install_locked(uv, project, tree, log)
    for name in _SKIPPED_NAMES:
        skipped = tree / name
        if skipped.is_dir():
            shutil.rmtree(skipped)
        else:
            skipped.unlink(missing_ok=True)
    log(f"copying {_display(source, root)}")
    if source.is_dir():
        shutil.copytree(source, tree / package, ignore=_ignored)
    else:
        shutil.copy2(source, tree / source.name)
    files = write_zip(tree, zip_file)
    size = zip_file.stat().st_size
    digest = sha256_of(zip_file)
    where = _display(zip_file, root)
    log(f"wrote {where}: {files} files, {size / 1_048_576:.1f} MiB, sha256 {digest[:12]}")
    return Artifact(tree=tree, zip_file=zip_file, size=size, sha256=digest, files=files)


def declared_dependencies(root: Path) -> list[str]:
    """The runtime dependencies ``[project] dependencies`` of ``root/pyproject.toml``
    declares (none without that file or key)."""
    try:
        document = tomllib.loads((root / PYPROJECT).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return []
    dependencies = document.get("project", {}).get("dependencies", [])
    return [str(item) for item in dependencies] if isinstance(dependencies, list) else []


def _package_source(project: Project) -> Path:
    """The handler's top-level package (a folder, or a single module) in the code folder."""
    package = project.function.package
    for candidate in (project.code_dir / package, project.code_dir / f"{package}.py"):
        if candidate.exists():
            return candidate
    raise PackagingError(
        f"no {package} (the package of the handler {project.function.handler}) in "
        f"{project.code_dir}: nothing to package; [tool.sqsl.function] code names the "
        "folder it imports from"
    )


def _install_locked(uv: str, project: Project, tree: Path, log: Log) -> None:
    platform = project.function.platform
    python_version = project.function.python_version
    with tempfile.TemporaryDirectory(prefix="requirements-") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        log("exporting the runtime dependencies from uv.lock (no dev group, no project)")
        _run(
            [
                uv,
                "export",
                "--frozen",
                "--no-dev",
                "--no-emit-project",
                "--no-hashes",
                "--quiet",
                "--project",
                str(project.root),
                "--output-file",
                str(requirements),
            ],
            what="exporting the runtime requirements",
        )
        pins = _pins(requirements)
        if not pins:
            log("uv.lock pins no runtime dependency: the artifact holds the package alone")
            return
        log(f"installing for {platform}, Python {python_version}: {', '.join(pins)}")
        _run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                # The lock is the whole, resolved set: install exactly it.
                "--no-deps",
                "--only-binary",
                ":all:",
                "--python-platform",
                platform,
                "--python-version",
                python_version,
                "--target",
                str(tree),
                "--requirement",
                str(requirements),
            ],
            what=f"installing the runtime dependencies for {platform}",
        )


def write_zip(source: Path, zip_file: Path) -> int:
    """Zip the tree under ``source`` into ``zip_file`` deterministically; the file count.

    The same files with the same contents give the same bytes: entries sorted by path,
    every timestamp and mode fixed, and no directory entries (unzip creates them).
    """
    zip_file.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_file.with_name(f".{zip_file.name}.{os.getpid()}")
    count = 0
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(_files(source), key=lambda item: item.relative_to(source).as_posix()):
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), FIXED_TIMESTAMP)
            info.external_attr = (0o100000 | FILE_MODE) << 16  # a regular file, rw-r--r--
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so that the mode above applies
            archive.writestr(info, path.read_bytes(), compresslevel=6)
            count += 1
    partial.replace(zip_file)
    return count


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part == "__pycache__" for part in relative.parts):
            continue
        if path.is_file() and not path.name.endswith(_SKIPPED_SUFFIXES):
            yield path


def _ignored(directory: str, names: list[str]) -> set[str]:
    """What copytree leaves out of the runtime package: caches and byte code."""
    return {name for name in names if name == "__pycache__" or name.endswith(_SKIPPED_SUFFIXES)}


def _pins(requirements: Path) -> list[str]:
    lines = requirements.read_text(encoding="utf-8").splitlines()
    return [line.split(";")[0].strip() for line in lines if line[:1] not in ("", " ", "#")]


def _run(command: list[str], *, what: str) -> None:
    result = subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    if result.returncode != 0:
        output = "\n".join(result.stdout.strip().splitlines()[-15:])
        raise PackagingError(
            f"{what} failed: `{' '.join(command)}` exited {result.returncode}:\n{output}\n"
            "A dependency without a wheel for the Lambda's platform cannot be installed "
            "here (--only-binary): pin a version that has one."
        )


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
