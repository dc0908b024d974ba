"""Copier's ``_migrations``: edits a service needs when ``copier update`` crosses a version.

    python hooks/migrate.py rename-answer OLD NEW
    python hooks/migrate.py derive-answers

Runs in the service being updated, before the update (``_stage == 'before'``), so that Copier
reads the migrated answers. Each migration in copier.yml names the version that
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
    args = parser.parse_args(argv)
    if not args.answers_file.is_file():
        print(f"    migrate: no {args.answers_file} here: is this a service?", file=sys.stderr)
        return 1
    if args.command == "rename-answer":
        outcome = rename_answer(args.answers_file, args.old, args.new)
    else:
        outcome = derive_answers(args.answers_file)
    print(f"    migrate: {outcome}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
