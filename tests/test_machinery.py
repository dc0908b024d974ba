"""The test machinery itself: the matrix covers what it claims, renders see uncommitted work,
and the checkers recognise what they look for. Fast; no file of ``template/`` involved."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from copier.errors import DirtyLocalWarning

from tests.conftest import Probe, RunStats
from tests.matrix import (
    FIFO_ONLY,
    NAMED,
    NOT_ASKED,
    PROFILE,
    PROFILES,
    STANDARD_ONLY_PROFILES,
    TASKS_ONLY,
    all_combinations,
    feasible_pairs,
    named_combinations,
    pairwise_rows,
    parameters,
)
from tests.rendering import COPIER_YML, commit_all, questions, render
from tests.test_generated_projects import pytest_summary_counts
from tests.test_renders import FOREIGN_BRACES, JINJA_MARKER, load_yaml_documents

# -- the matrix ----------------------------------------------------------------------------


def test_every_choice_and_bool_question_is_varied_with_all_its_values() -> None:
    varied = dict(parameters())
    for name, spec in questions().items():
        if spec.get("when") is False or str(spec.get("when", "")).strip() == "false":
            continue  # computed, never asked
        if name in TASKS_ONLY:
            continue
        if "choices" in spec:
            assert name in varied, f"choice question {name} is not in the matrix"
            assert set(varied[name]) - {NOT_ASKED} == {str(c) for c in spec["choices"]}
        elif spec.get("type") == "bool":
            assert name in varied, f"bool question {name} is not in the matrix"
            assert set(varied[name]) - {NOT_ASKED} == {True, False}


def test_every_feasible_pair_is_covered() -> None:
    params = parameters()
    rows = pairwise_rows(params)
    covered = {
        ((a, row[a]), (b, row[b]))
        for row in rows
        for i, (a, _) in enumerate(params)
        for b, _ in params[i + 1 :]
    }

    missing = [pair for pair in feasible_pairs(params) if pair not in covered]

    assert not missing
    assert len(rows) < 40, "the greedy generator should stay near the pairwise minimum"


def test_every_value_is_rendered_at_least_once() -> None:
    rows = pairwise_rows(parameters())
    for name, values in parameters():
        for value in values:
            assert any(row[name] == value for row in rows), f"{name}={value!r} never rendered"


def test_the_constraints_hold_in_every_combination() -> None:
    for combination in all_combinations():
        answers = combination.answers
        fifo = answers.get("queue_type", "standard") == "fifo"
        if not fifo:
            assert not FIFO_ONLY & answers.keys(), combination.id
        if int(answers.get("batch_size", 10)) > 10:
            assert not fifo, combination.id
            assert int(answers.get("max_batching_window_seconds", 0)) >= 1, combination.id
    for row in pairwise_rows(parameters()):
        if row["queue_type"] == "fifo":
            assert all(row[name] != NOT_ASKED for name in FIFO_ONLY)
            assert row[PROFILE] not in STANDARD_ONLY_PROFILES
        else:
            assert all(row[name] == NOT_ASKED for name in FIFO_ONLY)


def test_the_matrix_is_deterministic() -> None:
    params = parameters()

    assert pairwise_rows(params) == pairwise_rows(params)
    assert [c.id for c in all_combinations()] == [c.id for c in all_combinations.__wrapped__()]


def test_the_named_combinations_are_always_included() -> None:
    named = {c.id: c for c in named_combinations()}

    assert set(named) == set(NAMED)
    for named_id, answers in NAMED.items():
        assert dict(answers).items() <= dict(named[named_id].answers).items()


def test_ids_and_project_names_are_distinct() -> None:
    combinations = all_combinations()
    ids = [c.id for c in combinations]
    names = [c.answers["project_name"] for c in combinations]

    assert len(set(ids)) == len(ids)
    assert len(set(names)) == len(names)
    assert all(c.id.replace("-", "").replace("_", "").isalnum() for c in combinations)


def test_every_profile_is_a_set_of_valid_answers(probe_values: Probe) -> None:
    for profile, answers in PROFILES.items():
        values = probe_values(**answers)
        assert {k: values[k] for k in answers} == dict(answers), profile


def test_every_combination_passes_the_validators_with_distinct_names(probe_values: Probe) -> None:
    """Each render differs: its package, queues, function and tables have their own names."""
    seen: dict[str, set[str]] = {}
    for combination in all_combinations():
        values = probe_values(**combination.answers)
        for name in ("package_name", "project_slug", "source_queue_name", "function_name"):
            assert values[name] not in seen.setdefault(name, set()), (combination.id, name)
            seen[name].add(values[name])


# -- rendering -----------------------------------------------------------------------------


def test_a_render_includes_uncommitted_template_files(tmp_path: Path) -> None:
    template = tmp_path / "template-repo"
    (template / "template").mkdir(parents=True)
    shutil.copyfile(COPIER_YML, template / "copier.yml")
    (template / "template" / "committed.txt.jinja").write_text("{{ project_slug }}\n")
    commit_all(template)
    (template / "template" / "uncommitted.txt.jinja").write_text("{{ package_name }}\n")
    (template / "template" / "committed.txt.jinja").write_text("edited {{ project_slug }}\n")

    with pytest.warns(DirtyLocalWarning):
        out = render(tmp_path / "out", template=template, skip_tasks=True, project_name="Dirty")

    assert (out / "uncommitted.txt").read_text() == "dirty\n"
    assert (out / "committed.txt").read_text() == "edited dirty\n"


def test_the_run_stats_survive_the_trip_from_worker_to_controller() -> None:
    worker = RunStats(rendered={"a", "b"}, project_tests={"named-x": 12})
    controller = RunStats(rendered={"c"}, project_tests={"named-y": 3})

    controller.merge_json(worker.to_json())

    assert controller.rendered == {"a", "b", "c"}
    assert controller.project_tests == {"named-x": 12, "named-y": 3}


# -- the checkers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "left"),
    [
        pytest.param("name = {{ package_name }}", True, id="expression"),
        pytest.param("{% if is_fifo %}", True, id="statement"),
        pytest.param("{# a comment #}", True, id="comment"),
        pytest.param("run: echo ${{ github.sha }}", False, id="github-actions"),
        pytest.param("if: ${{ matrix.os == 'x' && '{{' }}", False, id="github-actions-nested"),
        pytest.param("Value: '{{resolve:ssm:/orders/key}}'", False, id="cfn-dynamic-reference"),
        pytest.param('echo "${#queues[@]}"', False, id="shell-length"),
        pytest.param("data = {'a': {'b': 1}}", False, id="python-dict"),
        pytest.param('resource = "${aws_sqs_queue.dlq.arn}"', False, id="terraform"),
    ],
)
def test_jinja_leftovers_are_told_from_other_tools_braces(text: str, left: bool) -> None:
    assert bool(JINJA_MARKER.search(FOREIGN_BRACES.sub("", text))) is left


def test_cloudformation_and_gitlab_tags_load() -> None:
    text = """\
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${AWS::StackName}-orders"
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Dlq.Arn
      Tags: !If [IsProd, [], !Ref AWS::NoValue]
---
test:
  script: !reference [.setup, script]
"""
    cfn, gitlab = load_yaml_documents(text)

    assert cfn["Resources"]["Queue"]["Properties"]["QueueName"] == "${AWS::StackName}-orders"
    assert cfn["Resources"]["Queue"]["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": "Dlq.Arn"
    }
    assert gitlab == {"test": {"script": [".setup", "script"]}}


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param(
            "==== 42 passed, 2 skipped in 3.21s ====", [{"passed": 42, "skipped": 2}], id="full"
        ),
        pytest.param("12 passed in 0.50s", [{"passed": 12}], id="quiet"),
        pytest.param(
            "== 1 failed, 3 passed, 1 error in 1.00s ==",
            [{"failed": 1, "passed": 3, "errors": 1}],
            id="failures",
        ),
        pytest.param(
            "\x1b[32m== 5 passed, 1 warning in 2.00s (0:00:02) ==\x1b[0m\nmake: ok\n"
            "== 7 passed, 4 deselected in 9.10s ==",
            [{"passed": 5, "warnings": 1}, {"passed": 7, "deselected": 4}],
            id="two-runs-coloured",
        ),
        pytest.param("collected 3 items\nnothing here", [], id="none"),
    ],
)
def test_pytest_summary_lines_are_parsed(output: str, expected: list[dict[str, int]]) -> None:
    assert pytest_summary_counts(output) == expected
