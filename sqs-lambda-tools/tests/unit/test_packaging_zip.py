"""The artifact's zip is deterministic: the same files with the same contents give the
same bytes, whatever the files' timestamps and modes or the order they were written in.
What goes in it comes from the project's settings: the handler's package from the code
folder, and the locked runtime dependencies (none declared: no uv.lock needed).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from sqs_lambda_tools import packaging
from sqs_lambda_tools.project import Project

pytestmark = pytest.mark.unit

FILES = {"b/module.py": b"VALUE = 1\n", "a.py": b"import b\n", "b/__init__.py": b""}


def write_tree(root: Path, order: list[str], mtime: int, mode: int) -> Path:
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(FILES[name])
        path.chmod(mode)
        os.utime(path, (mtime, mtime))
    return root


def test_the_same_files_give_the_same_zip(tmp_path: Path) -> None:
    first = write_tree(tmp_path / "one", sorted(FILES), mtime=1_000_000_000, mode=0o600)
    second = write_tree(tmp_path / "two", sorted(FILES)[::-1], mtime=2_000_000_000, mode=0o755)
    assert packaging.write_zip(first, tmp_path / "one.zip") == len(FILES)
    packaging.write_zip(second, tmp_path / "two.zip")
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()


def test_entries_are_sorted_with_a_fixed_time_and_readable_mode(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", list(FILES), mtime=1_500_000_000, mode=0o600)
    (tree / "b" / "__pycache__").mkdir()
    (tree / "b" / "__pycache__" / "module.cpython-313.pyc").write_bytes(b"\0")
    packaging.write_zip(tree, tmp_path / "tree.zip")
    with zipfile.ZipFile(tmp_path / "tree.zip") as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == sorted(FILES)
    assert {info.date_time for info in infos} == {packaging.FIXED_TIMESTAMP}
    assert {info.external_attr >> 16 & 0o777 for info in infos} == {packaging.FILE_MODE}


def test_a_changed_file_changes_the_zip(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", list(FILES), mtime=1_500_000_000, mode=0o644)
    before, after = tmp_path / "before.zip", tmp_path / "after.zip"
    packaging.write_zip(tree, before)
    (tree / "a.py").write_bytes(b"import b  # changed\n")
    packaging.write_zip(tree, after)
    assert packaging.sha256_of(before) != packaging.sha256_of(after)


def without_dependencies(text: str) -> str:
    return text.replace('dependencies = ["boto3"]\n', "")


def test_a_project_without_dependencies_ships_its_package_alone(
    make_sample_project: Callable[..., Project], tmp_path: Path
) -> None:
    project = make_sample_project(edit=without_dependencies)
    (project.code_dir / "sample_orders" / "__pycache__").mkdir()
    (project.code_dir / "sample_orders" / "__pycache__" / "handler.cpython-313.pyc").write_bytes(
        b"\0"
    )
    lines: list[str] = []

    artifact = packaging.build(tmp_path / "build", log=lines.append)

    with zipfile.ZipFile(artifact.zip_file) as archive:
        names = archive.namelist()
    assert names == [
        "sample_orders/__init__.py",
        "sample_orders/handler.py",
        "sample_orders/samples.py",
    ]
    assert artifact.tree == tmp_path / "build" / packaging.TREE_NAME
    assert "the artifact holds sample_orders alone" in lines[0]


def test_a_single_module_handler_ships_as_that_module(
    make_sample_project: Callable[..., Project], tmp_path: Path
) -> None:
    def single_module(text: str) -> str:
        return without_dependencies(text).replace(
            'handler = "sample_orders.handler.lambda_handler"',
            'handler = "app.lambda_handler"\ncode = "functions"',
        )

    project = make_sample_project(edit=single_module)
    (project.root / "functions").mkdir()
    (project.root / "functions" / "app.py").write_text("def lambda_handler(e, c): ...\n")

    artifact = packaging.build(tmp_path, log=lambda _line: None)

    with zipfile.ZipFile(artifact.zip_file) as archive:
        assert archive.namelist() == ["app.py"]


def test_declared_dependencies_without_a_lock_say_how_to_lock_them(
    sample_project: Project, tmp_path: Path
) -> None:
    with pytest.raises(packaging.PackagingError) as raised:
        packaging.build(tmp_path, log=lambda _line: None)

    message = str(raised.value)
    assert "declares runtime dependencies (boto3)" in message
    assert f"run `uv lock` in {sample_project.root}" in message


def test_a_handler_package_missing_from_the_code_folder_is_named(
    make_sample_project: Callable[..., Project], tmp_path: Path
) -> None:
    make_sample_project(
        edit=lambda text: without_dependencies(text).replace(
            "sample_orders.handler", "orders.handler"
        )
    )

    with pytest.raises(packaging.PackagingError, match=r"no orders \(the package of the handler"):
        packaging.build(tmp_path, log=lambda _line: None)
