"""``copier copy`` answered by hand: the real prompts, in an 80 x 24 pseudo-terminal.

Copier asks through questionary (prompt_toolkit), which draws the screen with cursor moves and
partial redraws, so the test reads what a user sees through a terminal emulator (pyte) fed
with everything Copier writes, not the raw byte stream. Each answer waits for its question's
help to be on screen, then types keys as a user does: Ctrl-U clears a prefilled default,
``ESC [ B`` moves down a list of choices, Enter answers.

One answer set with non-default answers (an x86_64 function, a batch of 50 with a 5 s window,
a 60 s timeout, a retention given in days, retry, no idempotency layer, no CI, no alarm)
and one refused value on the way: a visibility timeout below the function timeout, whose
refusal must be shown whole on one 80-column line before it is corrected.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pexpect
import pyte
import pytest
import yaml

from tests.rendering import template_copy

pytestmark = pytest.mark.interactive

COLUMNS, LINES = 80, 24
CLEAR = "\x15"  # Ctrl-U: delete the prefilled default
DOWN = "\x1b[B"
ENTER = "\r"
#: Seconds to wait for one prompt (a loaded machine) and for the render at the end.
PROMPT_TIMEOUT = 60.0
RENDER_TIMEOUT = 240.0


class Terminal:
    """A program in a pseudo-terminal, and the screen a terminal would show for it."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.screen = pyte.Screen(COLUMNS, LINES)
        self._stream = pyte.Stream(self.screen)
        self.transcript: list[str] = []
        self.child = pexpect.spawn(
            argv[0],
            argv[1:],
            cwd=str(cwd),
            env=env,
            dimensions=(LINES, COLUMNS),
            encoding="utf-8",
            codec_errors="replace",
        )

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def _read(self, seconds: float) -> bool:
        """Feed the emulator what the program writes for ``seconds``; False once it has exited."""
        try:
            data = self.child.read_nonblocking(65536, timeout=seconds)
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.transcript.append(data)
        self._stream.feed(data)
        return True

    def wait_for(self, text: str, timeout: float = PROMPT_TIMEOUT) -> None:
        """Wait until ``text`` is on one line of the screen."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if time.monotonic() > deadline or not self._read(0.2):
                if any(text in line for line in self.lines):
                    return
                pytest.fail(f"{text!r} never shown; the screen:\n" + "\n".join(self.lines))

    def answer(self, help_text: str, keys: str) -> None:
        """Wait for the question whose help shows ``help_text``, then type ``keys``."""
        self.wait_for(help_text)
        self.child.send(keys)

    def finish(self, timeout: float = RENDER_TIMEOUT) -> int:
        """Read until the program exits; its exit status."""
        deadline = time.monotonic() + timeout
        while self._read(0.5):
            if time.monotonic() > deadline:
                self.child.terminate(force=True)
                pytest.fail("copier did not finish; the screen:\n" + "\n".join(self.lines))
        self.child.close()
        return int(self.child.exitstatus or 0)


def _copier_env(tmp_path: Path) -> dict[str, str]:
    settings = tmp_path / "copier-settings.yml"
    settings.write_text("defaults: {}\n", encoding="utf-8")  # no user defaults apply
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COPIER_", "PYTEST_"))}
    env.update(
        TERM="xterm",
        NO_COLOR="1",
        COLUMNS=str(COLUMNS),
        LINES=str(LINES),
        # pexpect answers no cursor-position request: do not wait for one.
        PROMPT_TOOLKIT_NO_CPR="1",
        COPIER_SETTINGS_PATH=str(settings),
    )
    return env


def test_copy_answered_in_a_terminal(tmp_path: Path) -> None:
    template = template_copy(tmp_path / "template")
    copier = str(Path(sys.executable).parent / "copier")
    terminal = Terminal(
        [copier, "copy", "--trust", "--skip-tasks", "--vcs-ref", "HEAD", str(template), "svc"],
        cwd=tmp_path,
        env=_copier_env(tmp_path),
    )

    terminal.answer("Service name", CLEAR + "Interactive Orders" + ENTER)
    terminal.answer("Repository and distribution name", ENTER)
    terminal.answer("Python package of the Lambda code", ENTER)
    terminal.answer("One-line description of the service", ENTER)
    terminal.answer("Author or owning team", ENTER)
    terminal.answer("Contact e-mail of the author or team", ENTER)
    terminal.answer("AWS region the service is deployed to", CLEAR + "eu-west-1" + ENTER)
    terminal.answer("Lambda Python runtime", ENTER)
    terminal.answer("Lambda architecture", DOWN + ENTER)
    terminal.answer("Queue type (standard", ENTER)
    terminal.answer("Source queue name", ENTER)
    terminal.answer("Records per invocation", CLEAR + "50" + ENTER)
    terminal.answer("Batching window of the mapping", CLEAR + "5" + ENTER)
    terminal.answer("Function timeout in seconds", CLEAR + "60" + ENTER)
    terminal.answer("Function memory in MB", CLEAR + "512" + ENTER)

    # The help shows what "derived" gives from the answers so far: 6 x 60 s + 5 s.
    terminal.answer("derived = 6 x timeout + window = 365 s now", CLEAR + "10")
    refusal = "Validation error for question 'visibility_timeout_seconds': derived or 60-43200"
    terminal.wait_for(refusal)
    assert refusal in terminal.lines, "the refusal is not a whole line of its own"
    terminal.child.send(ENTER)  # refused: the question stays
    terminal.wait_for(refusal)
    terminal.child.send(CLEAR + "derived" + ENTER)

    terminal.answer("Receives before SQS moves a message", CLEAR + "8" + ENTER)
    terminal.answer("Source queue retention", CLEAR + "2d" + ENTER)
    terminal.answer("above the source's 172800 s", ENTER)  # the DLQ's help, from the 2d
    terminal.answer("Most concurrent invocations", ENTER)
    terminal.answer("Reserved concurrency of the function", ENTER)
    terminal.answer("Poison messages (dlq_now", DOWN + ENTER)
    terminal.answer("Idempotency (dynamodb", DOWN + ENTER)
    terminal.answer("Handler style (powertools", ENTER)
    terminal.answer("Infrastructure as code to render", ENTER)
    terminal.answer("Emulator image of docker-compose.yml", ENTER)
    terminal.answer("CI pipeline to render", DOWN + DOWN + ENTER)
    terminal.answer("CloudWatch alarm on DLQ depth", "n")
    terminal.answer("What to run in the new service", ENTER)

    status = terminal.finish()
    output = "".join(terminal.transcript)
    assert status == 0, output[-3000:]
    # The next steps, printed after the copy, each on a line of its own.
    steps = [line.strip() for line in terminal.lines]
    assert "cd svc" in steps, terminal.lines
    for target in ("make local", "make test"):
        shown = [line for line in steps if line.startswith(f"{target} ")]
        assert len(shown) == 1, terminal.lines
        assert shown[0].endswith("emulator") or shown[0].endswith("locally"), shown

    service = tmp_path / "svc"
    answers = yaml.safe_load((service / ".copier-answers.yml").read_text(encoding="utf-8"))
    expected = {
        "project_name": "Interactive Orders",
        "project_slug": "interactive-orders",
        "package_name": "interactive_orders",
        "aws_region": "eu-west-1",
        "lambda_runtime": "python3.13",
        "architecture": "x86_64",
        "queue_type": "standard",
        "batch_size": 50,
        "max_batching_window_seconds": "5",
        "function_timeout_seconds": 60,
        "memory_mb": 512,
        "visibility_timeout_seconds": "derived",
        "max_receive_count": 8,
        "source_retention_seconds": "2d",
        "dlq_retention_seconds": "14d",
        "poison_policy": "retry",
        "idempotency": "none",
        "handler_style": "powertools",
        "iac": "sam",
        "ci": "none",
        "dlq_alarm": False,
    }
    assert {key: answers.get(key) for key in expected} == expected
    # The computed values reach the rendered files.
    sam = (service / "template.yaml").read_text(encoding="utf-8")
    for line in (
        "VisibilityTimeout: 365",
        "MessageRetentionPeriod: 172800",
        "MessageRetentionPeriod: 1209600",
        "BatchSize: 50",
        "MaximumBatchingWindowInSeconds: 5",
    ):
        assert line in sam, line
    assert not (service / ".github").exists()
