"""Copier's ``_migrations``: edits a service needs when ``copier update`` crosses a version.

    python hooks/migrate.py rename-answer OLD NEW
    python hooks/migrate.py derive-answers
    python hooks/migrate.py keep-removed-edits RELEASE --template SRC

Runs in the service being updated. The answer migrations run before the update
(``_stage == 'before'``), so that Copier reads the migrated answers; ``keep-removed-edits``
runs after it (``_stage == 'after'``), once Copier has deleted the files the new release no
longer renders. Each migration in copier.yml names the version that introduced the change;
Copier runs it only when an update crosses that version.

Standard library only: it runs on Copier's own interpreter (``keep-removed-edits`` runs
Copier itself, ``python -m copier``, on that interpreter).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ANSWERS_FILE = Path(".copier-answers.yml")


def rename_answer(answers_file: Path, old: str, new: str) -> str:
    """Rename the key ``old`` to ``new`` in the answers file, keeping its value and comments.

    Line-based, not a YAML round trip: the file's header comment and key order survive, and
    Copier writes each answer as one top-level ``key: value`` line.
    """
    text = answers_file.read_text(encoding="utf-8")
    old_line = re.compile(rf"^{re.escape(old)}:", re.MULTILINE)
    if re.search(rf"^{re.escape(new)}:", text, re.MULTILINE):
        return f"{new} already present: nothing to rename"
    if not old_line.search(text):
        return f"no {old} answer: nothing to rename"
    answers_file.write_text(old_line.sub(f"{new}:", text, count=1), encoding="utf-8")
    return f"answer {old} renamed to {new}"


#: The answer recorded for a setting derived from other answers whose default was accepted.
DERIVED = "derived"


def _recorded_ints(text: str) -> dict[str, int]:
    """The answers recorded as plain whole numbers (``key: 180``), by key."""
    return {
        match["key"]: int(match["value"])
        for match in re.finditer(r"^(?P<key>\w+): (?P<value>[0-9]+)[ \t]*$", text, re.MULTILINE)
    }


def derivable_answers(text: str) -> list[str]:
    """The answers that an earlier release recorded as a number equal to their derived default.

    0.3.0 records an accepted derived default as ``derived`` so that an update derives it
    again; before, Copier recorded the number. Such a number is taken as an accepted default
    (a value typed equal to it cannot be told apart, and is treated the same way):

    - ``max_batching_window_seconds``: 1 when ``batch_size`` > 10, else 0 (standard queues:
      a FIFO queue records no window);
    - ``visibility_timeout_seconds``: 6 x ``function_timeout_seconds`` + the window, at most
      43200, from the recorded values (the window as recorded, before this migration).
    """
    recorded = _recorded_ints(text)
    queue_type = re.search(r"^queue_type: (\S+)", text, re.MULTILINE)
    fifo = queue_type is not None and queue_type[1].strip("'\"") == "fifo"
    batch_size = recorded.get("batch_size", 10)
    window = 0 if fifo else recorded.get("max_batching_window_seconds")
    timeout = recorded.get("function_timeout_seconds")
    derived = {
        "max_batching_window_seconds": None if fifo else (1 if batch_size > 10 else 0),
        "visibility_timeout_seconds": (
            None if timeout is None or window is None else min(6 * timeout + window, 43200)
        ),
    }
    return [
        name for name, value in derived.items() if value is not None and recorded.get(name) == value
    ]


def derive_answers(answers_file: Path) -> str:
    """Record ``derived`` for each answer :func:`derivable_answers` finds, line by line."""
    text = answers_file.read_text(encoding="utf-8")
    names = derivable_answers(text)
    if not names:
        return "no recorded number equals its derived default: nothing to derive"
    for name in names:
        text = re.sub(rf"^{name}: .*$", f"{name}: {DERIVED}", text, count=1, flags=re.MULTILINE)
    answers_file.write_text(text, encoding="utf-8")
    return "recorded as derived (follow their answers on update): " + ", ".join(names)


# -- keep-removed-edits ------------------------------------------------------------------------
#
# What `copier update` (9.19) does with a file the new release no longer renders: it deletes it,
# whether the team changed it or not. Unchanged, that is right. Changed, the team's edit is
# gone from the working tree with no word on the output (`--conflict inline`, the default) or
# with only a `<file>.rej` of the team's own diff left beside the deleted file
# (`--conflict rej`); exit status 0 either way. The edit survives only in git history.
#
# So, after the update, this finds the files the update deleted (committed in HEAD, gone
# now), compares each with what the old release rendered, and puts back the changed ones in a
# folder of their own, with the team's diff and what to do with it. The old render is made
# here, by Copier, the way Copier made its own for the update (the recorded answers at the
# recorded commit): Copier does not hand its copy to a migration.

#: The kept folder's ruff.toml: `ruff check .` in the service skips the folder (mypy and
#: pytest read only the folders the service's pyproject.toml names).
KEPT_RUFF_TOML = """\
# Files that `copier update` kept for you to port (README.md here): not the service's code.
exclude = ["*"]
"""


#: Where a tooling file of 0.3.0 lives in the package (sqs-lambda-tools/ of the template's
#: repository), to port a change to: (pattern of the service's path, the package's path).
PACKAGE_HOMES = (
    (re.compile(r"^src/[^/]+_dev/(?P<module>.+)$"), r"src/sqs_lambda_tools/\g<module>"),
    (re.compile(r"^tools/benchmark_handler\.py$"), "src/sqs_lambda_tools/bench_handler.py"),
    (re.compile(r"^tools/benchmark_local_loop\.py$"), "src/sqs_lambda_tools/bench_local.py"),
)


def package_home(path: str) -> str | None:
    """``path``'s counterpart in sqs-lambda-tools/, when it has one."""
    for pattern, home in PACKAGE_HOMES:
        if pattern.match(path):
            return f"sqs-lambda-tools/{pattern.sub(home, path)}"
    return None


def kept_folder(release: str) -> Path:
    """Where the changed files a release removed are kept: ``.copier-<release>-kept``."""
    return Path(f".copier-{release}-kept")


@dataclass
class Removal:
    """What an update removed: the files, and those of them the team had changed."""

    removed: list[str] = field(default_factory=list)
    #: The changed ones, each with what the old release rendered (None: no old render).
    changed: dict[str, bytes | None] = field(default_factory=dict)
    #: Why the old release could not be rendered (then every removed file counts as changed).
    unknown_reason: str | None = None
    #: The files the old release rendered (empty without a render).
    old_files: set[str] = field(default_factory=set)


def _run(args: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, check=False)


def _git(service: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return _run(["git", *args], cwd=service)


def _head_blob(service: Path, path: str) -> bytes | None:
    """``path``'s content in the service's HEAD commit (paths relative to the service, which
    may be a subfolder of its repository), or None when HEAD has no such file."""
    shown = _git(service, "cat-file", "blob", f"HEAD:./{path}")
    return shown.stdout if shown.returncode == 0 else None


def _head_files(service: Path) -> dict[str, str]:
    """The files of the service in HEAD, by path relative to the service: their git mode."""
    prefix = _git(service, "rev-parse", "--show-prefix").stdout.decode().strip()
    listed = _git(service, "ls-tree", "-r", "-z", "--full-tree", "HEAD")
    files: dict[str, str] = {}
    for entry in filter(None, listed.stdout.decode("utf-8", "surrogateescape").split("\0")):
        meta, path = entry.split("\t", 1)
        if path.startswith(prefix):
            files[path[len(prefix) :]] = meta.split()[0]
    return files


def _recorded(answers_text: str, key: str) -> str | None:
    found = re.search(rf"^{re.escape(key)}: *(.+?) *$", answers_text, re.MULTILINE)
    return found[1].strip("'\"") if found else None


def render_old_release(answers_text: str, templates: Sequence[str], dest: Path) -> str | None:
    """Render the release recorded in ``answers_text`` (``_commit``) with those answers into
    ``dest``, from the first of ``templates`` that has it, as Copier renders the old copy of
    an update: defaults for what was not recorded, no tasks. None when done, else why not.
    """
    commit = _recorded(answers_text, "_commit")
    if commit is None:
        return "the answers file records no _commit"
    data_file = dest.parent / "answers.yml"
    data_file.write_text(answers_text, encoding="utf-8")
    reasons: list[str] = []
    for template in templates:
        shutil.rmtree(dest, ignore_errors=True)
        copied = _run(
            [
                sys.executable, "-m", "copier", "copy", "--quiet", "--defaults", "--overwrite",
                "--skip-tasks", "--vcs-ref", commit, "--data-file", str(data_file),
                template, str(dest),
            ]
        )  # fmt: skip
        if copied.returncode == 0:
            return None
        lines = copied.stderr.decode(errors="replace").strip().splitlines()
        reasons.append(f"{template} at {commit}: {lines[-1] if lines else 'failed'}")
    return "; ".join(reasons) or "no template to render it from"


def find_removed(service: Path, answers_file: Path, templates: Sequence[str]) -> Removal:
    """The files the update just deleted, and those of them the team had changed.

    Deleted: committed in HEAD, no longer in the working tree (Copier updates only a clean
    repository, so HEAD is the service as it was, and only the update deletes files).
    Changed: its HEAD content differs from what the old release renders with the recorded
    answers, from the first of ``templates`` (then the recorded ``_src_path``) that has it.
    """
    recorded = answers_file.as_posix()
    answers = (_head_blob(service, recorded) or b"").decode("utf-8", "replace")
    removal = Removal(
        removed=[
            path
            for path, mode in sorted(_head_files(service).items())
            if mode != "120000" and path != recorded and not os.path.lexists(service / path)
        ]
    )
    if not removal.removed:
        return removal
    sources = list(dict.fromkeys([*templates, _recorded(answers, "_src_path") or ""]))
    with tempfile.TemporaryDirectory(prefix="copier-sqs-lambda-old-") as scratch:
        old = Path(scratch) / "old"
        removal.unknown_reason = render_old_release(answers, [s for s in sources if s], old)
        if removal.unknown_reason is None:
            removal.old_files = {
                path.relative_to(old).as_posix() for path in old.rglob("*") if path.is_file()
            }
        for path in removal.removed:
            rendered = old / path
            # Without the old render nothing tells an edited file from a pristine one: every
            # removed file then counts as changed (an edit is never lost on a guess).
            before = rendered.read_bytes() if rendered.is_file() else None
            if before is None or _head_blob(service, path) != before:
                removal.changed[path] = before
    return removal


def team_diff(path: str, before: bytes, after: bytes) -> str:
    """The team's change to ``path``: a unified diff from what the old release rendered."""
    try:
        old_lines = before.decode("utf-8").splitlines(keepends=True)
        new_lines = after.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return "Binary files differ\n"
    return "".join(
        line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n"
        for line in difflib.unified_diff(
            old_lines, new_lines, fromfile=f"a/{path}", tofile=f"b/{path}"
        )
    )


def _fenced(text: str, info: str) -> str:
    """``text`` in a Markdown code fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}{info}\n{text}{fence}\n"


def kept_readme(
    release: str,
    old_release: str,
    diffs: dict[str, str | None],
    why_unknown: str | None,
    issues_at: str,
) -> str:
    """The kept folder's README: what happened, what to do, each file's diff (None: unknown)."""
    parts = [
        f"# Files that {release} no longer renders and your team had changed\n",
        f"`copier update` to {release} removed the local tools from the service: they are the\n"
        "package `sqs-lambda-tools` now (the `sqsl` command, pinned as a dev dependency in\n"
        "pyproject.toml, its settings in `[tool.sqsl]`), and the update deleted the files\n"
        "the old release rendered for them. The files below had changes of yours since\n"
        f"{old_release}: they are kept here, each at its old path under this folder, with\n"
        "your change as a diff.\n",
        "Nothing here runs: `ruff.toml` keeps the folder out of `make lint`, and mypy and\n"
        "pytest do not look here.\n",
        "For each file:\n",
        "- a fix or a feature the tools need: port it to `sqs-lambda-tools` (a pull request),\n"
        f"  or open an issue with its diff at the template's repository ({issues_at});\n"
        "- a change for this service only (a fixture, a test, a setting): move it into the\n"
        "  service's own code (`tests/`, or `[tool.sqsl]` in pyproject.toml for a setting).\n",
        "Then delete this folder.\n",
    ]
    if why_unknown is not None:
        parts.append(
            f"{old_release} could not be rendered to compare with ({why_unknown}), so every\n"
            "removed file is here, changed or not: delete those you never changed.\n"
        )
    for path, diff in diffs.items():
        parts.append(f"## {path}\n")
        home = package_home(path)
        if home is not None:
            parts.append(f"In the package: `{home}` of the template's repository.\n")
        if diff is None:
            parts.append(f"[{path}]({path}), as your last commit had it.\n")
        else:
            parts.append(f"[{path}]({path}); your change against {old_release}:\n")
            parts.append(_fenced(diff, "diff"))
    return "\n".join(parts)


def removed_modules(removed: Sequence[str], service: Path) -> set[str]:
    """The Python modules the removed files were: ``src/pkg_dev/esm.py`` gives
    ``pkg_dev.esm``, and ``pkg_dev`` too once its folder is gone; ``tests/factories.py``
    gives ``tests.factories``."""
    modules: set[str] = set()
    for path in removed:
        if not path.endswith(".py"):
            continue
        parts = path.removesuffix(".py").split("/")
        root = 1 if parts[0] == "src" else 0
        if parts[-1] == "__init__":
            parts.pop()
        for end in range(root + 1, len(parts) + 1):
            if end == len(parts) or not (service / "/".join(parts[:end])).exists():
                modules.add(".".join(parts[root:end]))
    return modules


_IMPORT = re.compile(
    r"^\s*(?:from\s+(?P<source>[\w.]+)\s+import\s+(?P<names>.+)|import\s+(?P<modules>.+))"
)


def stale_imports(service: Path, modules: set[str], skip: Path) -> list[str]:
    """``path:line: text`` of each import, in the service's Python files (tracked or new, not
    ignored, none under ``skip``), of one of ``modules``."""
    if not modules:
        return []
    listed = _git(service, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    found: list[str] = []
    for name in sorted(set(filter(None, listed.stdout.decode("utf-8", "replace").split("\0")))):
        path = service / name
        if not name.endswith(".py") or not path.is_file() or path.is_relative_to(service / skip):
            continue
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, start=1):
            match = _IMPORT.match(line)
            if match is None:
                continue
            if match["source"]:
                names = [match["source"]] + [
                    f"{match['source']}.{n.split()[0]}"
                    for n in match["names"].strip("() ").split(",")
                    if n.strip()
                ]
            else:
                names = [n.split()[0] for n in match["modules"].split(",") if n.strip()]
            if any(n == m or n.startswith(f"{m}.") for n in names for m in modules):
                found.append(f"{name}:{number}: {line.strip()}")
    return found


def retired_folders(service: Path, removal: Removal) -> list[str]:
    """The folders that held only files the update removed (``src/pkg_dev``, ``tools``): what
    is left in them is the team's own (or caches). The outermost of them; none without a
    render of the old release."""
    folders: set[str] = set()
    for path in removal.removed:
        parts = path.split("/")[:-1]
        for end in range(1, len(parts) + 1):
            folder = "/".join(parts[:end])
            inside = [f for f in removal.old_files if f.startswith(f"{folder}/")]
            if inside and not any(os.path.lexists(service / f) for f in inside):
                folders.add(folder)
                break  # the outermost: its subfolders are retired with it
    return sorted(folders)


def clear_retired(service: Path, folders: Sequence[str]) -> list[str]:
    """Delete the Python caches and empty folders Copier left in ``folders`` (its own removal
    stops at a folder that is not empty); the files still there, which are the team's."""
    left: list[str] = []
    for folder in folders:
        root = service / folder
        if not root.is_dir():
            continue
        for cache in sorted(root.rglob("__pycache__"), reverse=True):
            shutil.rmtree(cache, ignore_errors=True)
        for directory in sorted((d for d in root.rglob("*") if d.is_dir()), reverse=True):
            if not any(directory.iterdir()):
                directory.rmdir()
        if not any(root.iterdir()):
            root.rmdir()
            continue
        left.extend(
            p.relative_to(service).as_posix() for p in sorted(root.rglob("*")) if p.is_file()
        )
    return left


def keep_removed_edits(
    service: Path, answers_file: Path, release: str, templates: Sequence[str]
) -> list[str]:
    """Put back, under :func:`kept_folder`, the changed files the update to ``release``
    deleted, with a README of the team's diffs; the lines to report."""
    removal = find_removed(service, answers_file, templates)
    answers = (_head_blob(service, answers_file.as_posix()) or b"").decode("utf-8", "replace")
    old_release = _recorded(answers, "_commit") or "the old release"
    issues_at = _recorded(answers, "_src_path") or "the template's repository"
    lines = [
        f"{release}: the local tools are the package sqs-lambda-tools now (`sqsl`);"
        f" the update removed {len(removal.removed)} files {release} no longer renders"
    ]
    if removal.unknown_reason is not None:
        lines.append(f"could not render {old_release} to compare with: {removal.unknown_reason}")
    if removal.changed:
        _keep(service, release, old_release, removal, issues_at)
        changed = "changed or not" if removal.unknown_reason is not None else "changed by you"
        folder = kept_folder(release)
        lines.append(f"KEPT {len(removal.changed)} of them ({changed}) in {folder}/:")
        lines.extend(f"    {path}" for path in removal.changed)
        lines.append(
            f"read {folder}/README.md: port each change to sqs-lambda-tools (a pull request,"
            " or an issue with its diff) or into the service's own code, then delete the folder"
        )
    else:
        lines.append(f"none had changes of yours since {old_release}: nothing to keep")
    left = clear_retired(service, retired_folders(service, removal))
    if left:
        lines.append(
            "files of yours stay in folders that held only the old tools: move them into"
            " your code or to sqs-lambda-tools (they may import what is gone), then delete"
            " the folders:"
        )
        lines.extend(f"    {path}" for path in left)
    stale = stale_imports(service, removed_modules(removal.removed, service), kept_folder(release))
    if stale:
        lines.append(
            "your code still imports what the update removed: use sqs_lambda_tools instead"
            " (its testing module, the sqsl_ fixtures of its pytest plugin):"
        )
        lines.extend(f"    {found}" for found in stale)
    return lines


def _keep(service: Path, release: str, old_release: str, removal: Removal, issues_at: str) -> None:
    """Write the changed removed files back under the kept folder, its ruff.toml, its README."""
    kept = service / kept_folder(release)
    head = _head_files(service)
    diffs: dict[str, str | None] = {}
    for path, before in removal.changed.items():
        content = _head_blob(service, path) or b""
        target = kept / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        if head.get(path) == "100755":
            target.chmod(0o755)
        diffs[path] = None if before is None else team_diff(path, before, content)
        # `--conflict rej` leaves the team's diff beside the deleted file: it is kept above.
        rejected = service / f"{path}.rej"
        if rejected.is_file() and _head_blob(service, f"{path}.rej") is None:
            rejected.unlink()
    (kept / "ruff.toml").write_text(KEPT_RUFF_TOML, encoding="utf-8")
    (kept / "README.md").write_text(
        kept_readme(release, old_release, diffs, removal.unknown_reason, issues_at),
        encoding="utf-8",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rename = commands.add_parser("rename-answer", help="rename an answer in the answers file")
    rename.add_argument("old")
    rename.add_argument("new")
    rename.add_argument("--answers-file", type=Path, default=ANSWERS_FILE)
    derive = commands.add_parser(
        "derive-answers", help="record derived for numbers equal to their derived default"
    )
    derive.add_argument("--answers-file", type=Path, default=ANSWERS_FILE)
    keep = commands.add_parser(
        "keep-removed-edits",
        help="after an update: keep the changed files it deleted, with the team's diffs",
    )
    keep.add_argument("release", help="the release that stopped rendering them (0.4.0)")
    keep.add_argument(
        "--template",
        action="append",
        default=[],
        help="where to render the old release from (repeatable: the first that works)",
    )
    keep.add_argument("--answers-file", type=Path, default=ANSWERS_FILE)
    args = parser.parse_args(argv)
    if not args.answers_file.is_file():
        print(f"    migrate: no {args.answers_file} here: is this a service?", file=sys.stderr)
        return 1
    if args.command == "rename-answer":
        outcome = [rename_answer(args.answers_file, args.old, args.new)]
    elif args.command == "derive-answers":
        outcome = [derive_answers(args.answers_file)]
    else:
        outcome = keep_removed_edits(Path.cwd(), args.answers_file, args.release, args.template)
    for line in outcome:
        print(f"    migrate: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
