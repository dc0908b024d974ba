"""Copier's ``_migrations``: edits a service needs when ``copier update`` crosses a version.

    python hooks/migrate.py rename-answer OLD NEW

Runs in the service being updated, before the update (``_stage == 'before'``), so that Copier
reads the answers under their new names. Each migration in copier.yml names the version that
introduced the change; Copier runs it only when an update crosses that version.

Standard library only: it runs on Copier's own interpreter.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rename = commands.add_parser("rename-answer", help="rename an answer in the answers file")
    rename.add_argument("old")
    rename.add_argument("new")
    rename.add_argument("--answers-file", type=Path, default=ANSWERS_FILE)
    args = parser.parse_args(argv)
    if not args.answers_file.is_file():
        print(f"    migrate: no {args.answers_file} here: is this a service?", file=sys.stderr)
        return 1
    outcome = rename_answer(args.answers_file, args.old, args.new)
    print(f"    migrate: {outcome}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
