"""The render matrix: every value of every choice and bool question, pairwise, plus named paths.

Every pair of values of two different parameters that can appear together appears together in
at least one combination (pairwise, or 2-way, coverage). The generator is a deterministic
greedy one (in the manner of AETG): it seeds each new combination with the first pair not yet
covered, then gives each remaining parameter the value that covers most new pairs, preferring
the value used least so far. Constraints mirror ``copier.yml``: the FIFO-only questions are
asked (and so varied) only for a fifo queue, and a batch larger than 10 only exists for a
standard queue.

The values are read from ``copier.yml``, so a new choice is covered without editing this
file; ``tests/test_matrix.py`` fails when a new choice or bool question is not varied here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import combinations
from pathlib import Path
from typing import Any

from tests.rendering import COPIER_YML, questions

Value = str | bool

#: The value a FIFO-only parameter takes in a standard-queue combination: not asked.
NOT_ASKED = "-"

#: Choice and bool questions varied by the matrix, in the order of ``copier.yml``.
VARIED = (
    "lambda_runtime",
    "architecture",
    "queue_type",
    "fifo_content_based_deduplication",
    "fifo_high_throughput",
    "poison_policy",
    "idempotency",
    "handler_style",
    "iac",
    "compose_emulator",
    "ci",
    "dlq_alarm",
)

#: Questions that change what runs after rendering (hooks/post_copy.py), not a rendered
#: file: tests/test_post_copy_tasks.py varies them instead of the matrix.
TASKS_ONLY = frozenset({"post_copy_tasks"})

#: Questions asked only when ``queue_type == 'fifo'``.
FIFO_ONLY = frozenset({"fifo_content_based_deduplication", "fifo_high_throughput"})

#: Numeric answer profiles, varied like a choice question. The derived settings (batching
#: window, visibility timeout) are derived unless a profile types them; those and the
#: retentions are text answers ("derived", "5", "3d"), given here as Copier records them.
PROFILES: Mapping[str, Mapping[str, int | str]] = {
    "defaults": {},
    "bigbatch": {"batch_size": 100, "max_batching_window_seconds": "5"},
    "tuned": {
        "reserved_concurrency": 20,
        "max_concurrency": 5,
        "function_timeout_seconds": 120,
        "memory_mb": 1024,
        # The lowest count reserved concurrency allows (a throttle counts as a receive).
        "max_receive_count": 5,
        # Typed, not derived (6 x 120 s = 720 s), and retention as durations.
        "visibility_timeout_seconds": "900",
        "source_retention_seconds": "3d",
        "dlq_retention_seconds": "336h",
    },
}
STANDARD_ONLY_PROFILES = frozenset({"bigbatch"})
PROFILE = "profile"

#: The important full paths, always rendered (their other answers are the defaults).
NAMED: Mapping[str, Mapping[str, Value]] = {
    "named-standard-powertools-dynamodb-dlq_now": {
        "queue_type": "standard",
        "handler_style": "powertools",
        "idempotency": "dynamodb",
        "poison_policy": "dlq_now",
    },
    "named-fifo-powertools-retry": {
        "queue_type": "fifo",
        "handler_style": "powertools",
        "poison_policy": "retry",
        "iac": "cdk",
    },
    "named-standard-stdlib-none-retry": {
        "queue_type": "standard",
        "handler_style": "stdlib",
        "idempotency": "none",
        "poison_policy": "retry",
        "iac": "terraform",
    },
    "named-fifo-stdlib-dynamodb-dlq_now": {
        # A package name that sorts after "tests": import order must not depend on it.
        "project_name": "Warehouse Orders",
        "queue_type": "fifo",
        "handler_style": "stdlib",
        "idempotency": "dynamodb",
        "poison_policy": "dlq_now",
    },
}

# Short labels for combination ids; a value missing here is used as it is.
_LABELS: Mapping[str, Mapping[Value, str]] = {
    "architecture": {"x86_64": "x86"},
    "queue_type": {"standard": "std"},
    "fifo_content_based_deduplication": {True: "cbd", False: "nocbd"},
    "fifo_high_throughput": {True: "ht", False: "noht"},
    "poison_policy": {"dlq_now": "dlqnow"},
    "idempotency": {"dynamodb": "ddb", "none": "noidem"},
    "iac": {"none": "noiac"},
    "ci": {"none": "noci"},
    "dlq_alarm": {True: "alarm", False: "noalarm"},
}


@dataclass(frozen=True)
class Combination:
    """One render of the matrix: a readable id and the answers passed to Copier."""

    id: str
    answers: Mapping[str, Any] = field(hash=False)
    named: bool = False

    @property
    def queue_type(self) -> str:
        return str(self.answers.get("queue_type", "standard"))


Row = Mapping[str, Value]
Pair = tuple[tuple[str, Value], tuple[str, Value]]


@cache
def parameters(copier_yml: Path = COPIER_YML) -> tuple[tuple[str, tuple[Value, ...]], ...]:
    """Each varied parameter with its values, read from ``copier.yml``, then the profiles."""
    specs = questions(copier_yml)
    params: list[tuple[str, tuple[Value, ...]]] = []
    for name in VARIED:
        spec = specs[name]
        values: tuple[Value, ...]
        if spec.get("type") == "bool":
            values = (True, False)
        else:
            values = tuple(str(choice) for choice in spec["choices"])
        if name in FIFO_ONLY:
            values = (*values, NOT_ASKED)
        params.append((name, values))
    params.append((PROFILE, tuple(PROFILES)))
    return tuple(params)


def allowed(row: Row) -> bool:
    """Whether a (possibly partial) row breaks no constraint among the values it has."""
    queue_type = row.get("queue_type")
    if queue_type is None:
        return True
    fifo = queue_type == "fifo"
    for name in FIFO_ONLY & row.keys():
        if fifo == (row[name] == NOT_ASKED):
            return False
    return not (fifo and row.get(PROFILE) in STANDARD_ONLY_PROFILES)


def completable(row: Row, params: Sequence[tuple[str, tuple[Value, ...]]]) -> bool:
    """Whether the partial ``row`` extends to a full row that breaks no constraint."""
    if not allowed(row):
        return False
    for name, values in params:
        if name not in row:
            return any(completable({**row, name: value}, params) for value in values)
    return True


def _pairs_of(row: Row, params: Sequence[tuple[str, tuple[Value, ...]]]) -> Iterator[Pair]:
    names = [name for name, _ in params if name in row]
    for first, second in combinations(names, 2):
        yield (first, row[first]), (second, row[second])


def feasible_pairs(params: Sequence[tuple[str, tuple[Value, ...]]]) -> list[Pair]:
    """Every pair of values of two parameters that some valid full row contains, in order."""
    return [
        ((first, first_value), (second, second_value))
        for (first, first_values), (second, second_values) in combinations(params, 2)
        for first_value in first_values
        for second_value in second_values
        if completable({first: first_value, second: second_value}, params)
    ]


def pairwise_rows(params: Sequence[tuple[str, tuple[Value, ...]]]) -> list[dict[str, Value]]:
    """Rows covering every feasible pair, built greedily and deterministically."""
    uncovered = dict.fromkeys(feasible_pairs(params))  # ordered set
    usage: dict[tuple[str, Value], int] = {}
    rows: list[dict[str, Value]] = []
    while uncovered:
        (first, first_value), (second, second_value) = next(iter(uncovered))
        row: dict[str, Value] = {first: first_value, second: second_value}
        for name, values in params:
            if name in row:
                continue
            best: tuple[int, int] | None = None
            chosen: Value | None = None
            for value in values:
                candidate = {**row, name: value}
                if not completable(candidate, params):
                    continue
                gain = sum(
                    1
                    for other, other_value in row.items()
                    if _ordered_pair(params, (name, value), (other, other_value)) in uncovered
                )
                score = (gain, -usage.get((name, value), 0))
                if best is None or score > best:
                    best, chosen = score, value
            if chosen is None:  # pragma: no cover - completable() guarantees a value
                raise AssertionError(f"no value of {name} completes {row}")
            row[name] = chosen
        ordered = {name: row[name] for name, _ in params}
        for pair in _pairs_of(ordered, params):
            uncovered.pop(pair, None)
        for item in ordered.items():
            usage[item] = usage.get(item, 0) + 1
        rows.append(ordered)
    return rows


def _ordered_pair(
    params: Sequence[tuple[str, tuple[Value, ...]]],
    a: tuple[str, Value],
    b: tuple[str, Value],
) -> Pair:
    order = {name: index for index, (name, _) in enumerate(params)}
    return (a, b) if order[a[0]] < order[b[0]] else (b, a)


def _label(name: str, value: Value) -> str:
    label = _LABELS.get(name, {}).get(value)
    if label is not None:
        return label
    return re.sub(r"[^a-z0-9]+", "", str(value).lower().replace("python", "py"))


def row_id(index: int, row: Row) -> str:
    """A readable id: ``p03-py313-arm64-fifo-cbd-noht-retry-ddb-stdlib-cdk-...-tuned``."""
    labels = [f"p{index:02d}"]
    labels += [_label(name, value) for name, value in row.items() if value != NOT_ASKED]
    return "-".join(labels)


def row_answers(row: Row) -> dict[str, Any]:
    """The Copier answers of a row: not-asked parameters dropped, the profile expanded."""
    answers: dict[str, Any] = {
        name: value for name, value in row.items() if name != PROFILE and value != NOT_ASKED
    }
    answers.update(PROFILES[str(row[PROFILE])])
    return answers


@cache
def all_combinations() -> tuple[Combination, ...]:
    """The whole matrix: the pairwise combinations, then the named ones. Deterministic."""
    result: list[Combination] = []
    for index, row in enumerate(pairwise_rows(parameters()), start=1):
        answers = row_answers(row)
        # A distinct name per render, so the slug, package, queue and tables all differ.
        answers["project_name"] = f"Matrix P{index:02d}"
        result.append(Combination(id=row_id(index, row), answers=answers))
    for named_id, named_answers in NAMED.items():
        # The id as the name, unless the combination names itself.
        answers = {
            "project_name": named_id.replace("_", " ").replace("-", " ").title(),
            **named_answers,
        }
        result.append(Combination(id=named_id, answers=answers, named=True))
    return tuple(result)


def named_combinations() -> tuple[Combination, ...]:
    """The named full paths, whose generated projects run their own test suites."""
    return tuple(combination for combination in all_combinations() if combination.named)
