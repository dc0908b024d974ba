"""What ``run`` and ``invoke`` print: a status line while the mapping polls, the handler's
output, Lambda's REPORT line for each invocation (:meth:`.invocations.Invocation.
report_line`), what failed and when a failed message comes back, and the run's summary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .esm import BatchResult, MappingStats, QueueSettings, Retry
from .project import Project

console = Console(stderr=True)
# Failed messages are described one by one up to this many per batch, then summed up.
RETRY_LINES_PER_BATCH = 3


class RunOutput:
    """What ``run`` prints while it polls: a status line (not under ``--debug``, where a
    debugger may need the terminal), and unless ``quiet`` the handler's output, a REPORT
    line per invocation and what failed."""

    def __init__(self, *, quiet: bool, live: bool) -> None:
        self._quiet = quiet
        self._live_wanted = live
        self._live: Live | None = None
        self._status = Text()
        self._lock = threading.Lock()

    @contextmanager
    def display(self) -> Iterator[None]:
        if not self._live_wanted:
            yield
            return
        with Live(self._status, console=console, refresh_per_second=8, transient=True) as live:
            self._live = live
            try:
                yield
            finally:
                self._live = None

    @property
    def _console(self) -> Console:
        return self._live.console if self._live is not None else console

    def notice(self, text: str) -> None:
        with self._lock:
            self._console.print(text)

    def handler_line(self, line: str) -> None:
        """A line the handler wrote (its log): as it is, no markup."""
        if self._quiet:
            return
        with self._lock:
            self._console.print(Text(line), soft_wrap=True)

    def tick(self, stats: MappingStats) -> None:
        with self._lock:
            self._status.plain = progress_line(stats)

    def batch(
        self, result: BatchResult, stats: MappingStats, queue: QueueSettings, *, fifo: bool
    ) -> None:
        with self._lock:
            if not self._quiet:
                for text in invocation_lines(result):
                    self._console.print(text, soft_wrap=True)
                for line in retry_lines(result.retries, queue, fifo=fifo):
                    self._console.print(f"  [yellow]retry[/] {line}")
            self._status.plain = progress_line(stats)
            if self._live is not None:
                self._live.refresh()


def invocation_lines(result: BatchResult) -> list[Text]:
    """The REPORT line of a batch's invocation and, when it failed, why."""
    lines: list[Text] = []
    invocation = result.invocation
    if invocation is not None:
        if invocation.outcome == "function_error" and invocation.error is not None:
            # What Lambda's runtime logs of an error the handler raised.
            lines += [Text(line, style="dim") for line in invocation.error.stack_trace]
        lines.append(Text(invocation.report_line(), style="dim"))
        if invocation.past_timeout:
            lines.append(
                Text(
                    f"  ran {invocation.duration_ms / 1000:.2f} s, past the function timeout "
                    f"({invocation.timeout_seconds:g} s): not enforced under --debug; "
                    "deployed, this invocation would time out and its batch fail.",
                    style="yellow",
                )
            )
    if result.whole_batch_failed:
        lines.append(
            Text.assemble(
                (f"batch of {len(result.message_ids)} failed whole: ", "red"), result.reason
            )
        )
    return lines


def retry_rule(queue: QueueSettings, retry_after: int | None, project: Project) -> str:
    """How a failed message comes back on this queue, and when it goes to the DLQ."""
    if queue.max_receive_count is None:
        dlq = "the queue has no redrive policy: a failed message comes back until it is processed"
    else:
        dlq = (
            f"after {queue.max_receive_count} failed receives the redrive policy moves it "
            "to the DLQ"
        )
    deployed_visibility = project.queue.visibility_timeout_seconds
    if retry_after is None:
        visibility = queue.visibility_timeout_seconds
        deployed = (
            "" if visibility == deployed_visibility else f" (deployed: {deployed_visibility} s)"
        )
        return (
            f"A failed message comes back when the visibility timeout ends, {visibility} s "
            f"after its receive{deployed}; {dlq}."
        )
    return (
        f"[bold]local pace:[/] a failed message comes back {retry_after} s after its failure "
        f"on the emulator's queue (deployed: when the visibility timeout ends, "
        f"{deployed_visibility} s after its receive); {dlq}."
    )


def _to_go(retry: Retry, queue: QueueSettings) -> str:
    """What happens to ``retry`` if it keeps failing."""
    limit = queue.max_receive_count
    if limit is None:
        return "No redrive policy: it comes back until it is processed."
    left = limit - retry.receive_count
    if left <= 0:
        return f"It has had its {limit} receives: the redrive policy moves it to the DLQ."
    return (
        f"{left} more failed receive{'s' if left > 1 else ''} and the redrive policy moves "
        "it to the DLQ."
    )


def _when(at: float, *, last: bool = False) -> str:
    """When a failed message is due: back in the queue, or, after its ``last`` receive,
    out of it (SQS applies the redrive policy when it would be received again)."""
    clock = time.strftime("%H:%M:%S", time.localtime(at))
    due = "due to leave for the DLQ" if last else "back"
    return f"{due} at {clock} (in {max(0, round(at - time.time()))} s)"


def _is_last(retry: Retry, queue: QueueSettings) -> bool:
    limit = queue.max_receive_count
    return limit is not None and retry.receive_count >= limit


def retry_lines(retries: Sequence[Retry], queue: QueueSettings, *, fifo: bool) -> list[str]:
    """What a batch's failed messages wait for, and why: one line per message (FIFO: per
    message group), in batch order."""
    limit = queue.max_receive_count
    of = f" of {limit}" if limit is not None else ""
    if not fifo:
        if len(retries) > RETRY_LINES_PER_BATCH:
            counts = sorted({retry.receive_count for retry in retries})
            span = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
            return [
                f"{len(retries)} failed messages (receive {span}{of}), "
                f"{_when(max(retry.returns_at for retry in retries))}."
            ]
        return [
            f"message {retry.message_id[:8]} failed on receive {retry.receive_count}{of}, "
            f"{_when(retry.returns_at, last=_is_last(retry, queue))}. {_to_go(retry, queue)}"
            for retry in retries
        ]
    groups: dict[str | None, list[Retry]] = {}
    for retry in retries:
        groups.setdefault(retry.group, []).append(retry)
    lines = []
    for group, in_group in groups.items():
        first, later = in_group[0], in_group[1:]
        line = (
            f"group {group} waits: message {first.message_id[:8]} failed on receive "
            f"{first.receive_count}{of}, {_when(first.returns_at, last=_is_last(first, queue))}; "
            "SQS holds the rest of "
            f"the group until then. {_to_go(first, queue)}"
        )
        if later:
            alike = sum(1 for retry in later if retry.receive_count >= first.receive_count)
            line += (
                f" The {len(later)} later message{'s' if len(later) > 1 else ''} of the group "
                "in its batch were reported with it, unprocessed, to keep the group's order"
            )
            line += (
                f"; {alike} of them, received as often, go to the DLQ with it if it gets there."
                if alike and limit is not None
                else "."
            )
        lines.append(line)
    return lines


def progress_line(stats: MappingStats) -> str:
    line = (
        f"received {stats.received} · invocations {stats.invocations} · "
        f"deleted {stats.deleted} · failed {stats.failed} "
        f"(whole batches {stats.whole_batch_failures}) · in flight {stats.in_flight}"
    )
    waiting = list(stats.waiting.values())
    if waiting:
        soonest = min(retry.returns_at for retry in waiting)
        line += (
            f" · {len(waiting)} failed waiting, next back in "
            f"{max(0, round(soonest - time.time()))} s"
        )
    return line


def print_summary(
    stats: MappingStats,
    queue: QueueSettings,
    depths: Mapping[str, str],
    *,
    fifo: bool,
    debug: bool = False,
) -> None:
    """The run's table: what it received, invoked, deleted and left, how its invocations
    went, and the queues' depths (``depths``: "source" and "dlq") at the end."""
    table = Table(title="Local event source mapping", show_header=False)
    table.add_row("messages received", str(stats.received))
    table.add_row("invocations", str(stats.invocations))
    table.add_row("deleted (processed)", str(stats.deleted))
    table.add_row("reported failed (left for retry)", str(stats.failed))
    table.add_row("whole-batch failures", str(stats.whole_batch_failures))
    table.add_row("cold starts (new environments)", str(stats.cold_starts))
    if debug:
        table.add_row("past the timeout (--debug: not enforced)", str(stats.past_timeout))
    else:
        table.add_row("timeouts (environment killed)", str(stats.timeouts))
        table.add_row("out-of-memory kills", str(stats.out_of_memory))
        table.add_row("crashes (runtime exited)", str(stats.crashes))
    if fifo:
        table.add_row("released (group in flight)", str(stats.released))
    if stats.released_on_stop:
        table.add_row("released on stop (received, not invoked)", str(stats.released_on_stop))
    if stats.waiting:
        table.add_row("failed, waiting to come back", str(len(stats.waiting)))
    if stats.dead_lettered:
        table.add_row("moved to the DLQ (redrive policy)", str(len(stats.dead_lettered)))
    table.add_row("source queue: visible / in flight", depths.get("source", "?"))
    table.add_row("DLQ messages", depths.get("dlq", "?"))
    console.print(table)
    if stats.dead_lettered:
        groups = sorted({retry.group for retry in stats.dead_lettered if retry.group})
        where = f" (message group {', '.join(groups)})" if groups else ""
        many = len(stats.dead_lettered) > 1
        console.print(
            f"The redrive policy moved {len(stats.dead_lettered)} failed "
            f"message{'s' if many else ''}{where} to the DLQ after {queue.max_receive_count} "
            f"receives: `dlq` lists {'them' if many else 'it'}, `redrive` sends "
            f"{'them' if many else 'it'} back."
        )
    if stats.waiting:
        waiting = list(stats.waiting.values())
        latest = max(retry.returns_at for retry in waiting)
        console.print(
            f"{len(waiting)} failed message{'s are' if len(waiting) > 1 else ' is'} still in "
            f"the queue, {_when(latest)} at the latest; "
            + (
                f"after {queue.max_receive_count} receives the queue's redrive policy moves "
                "a message to the DLQ."
                if queue.max_receive_count is not None
                else "the queue has no redrive policy."
            )
        )
