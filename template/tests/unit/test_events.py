"""The sample events (events/*.json) are what the sample function gives today."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqs_lambda_tools.project import Project

pytestmark = pytest.mark.unit


def test_the_sample_events_are_up_to_date(sqsl_project: Project) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sqs_lambda_tools", "events", "--check"],
        cwd=sqsl_project.root,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, f"{result.stderr}(`make events` writes them again)"
