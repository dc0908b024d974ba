"""The findings for a person (a rich table) or for a program (``--format json``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .rules import Finding

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow"}


@dataclass(frozen=True)
class Checked:
    """One deployment's findings, and what could not be checked."""

    source: str
    findings: list[Finding]
    notes: tuple[str, ...]


def counts(results: Sequence[Checked]) -> dict[str, int]:
    every = [finding for result in results for finding in result.findings]
    return {
        "errors": sum(finding.severity == "error" for finding in every),
        "warnings": sum(finding.severity == "warning" for finding in every),
    }


def as_json(results: Sequence[Checked]) -> str:
    """``{"sources": [...], "findings": [{rule, severity, resource, message, fix, source}],
    "notes": [...], "errors": n, "warnings": n}``"""
    document = {
        "sources": [result.source for result in results],
        "findings": [
            {**asdict(finding), "source": result.source}
            for result in results
            for finding in result.findings
        ],
        "notes": [note for result in results for note in result.notes],
        **counts(results),
    }
    return json.dumps(document, indent=2)


def print_table(console: Console, results: Sequence[Checked]) -> None:
    for result in results:
        if not result.findings:
            console.print(Text.assemble(("ok ", "bold green"), f"{result.source}: no findings"))
        else:
            table = Table(title=result.source, title_justify="left", box=box.SIMPLE_HEAD)
            table.add_column("rule", no_wrap=True)
            table.add_column("severity", no_wrap=True)
            table.add_column("resource", overflow="fold")
            table.add_column("finding", ratio=3)
            table.add_column("fix", ratio=2)
            for finding in result.findings:
                # Text, not markup: findings quote "[tool.sqsl.mapping]" and the like.
                table.add_row(
                    finding.rule,
                    Text(finding.severity, style=SEVERITY_STYLE[finding.severity]),
                    Text(finding.resource),
                    Text(finding.message),
                    Text(finding.fix),
                )
            console.print(table)
        for note in result.notes:
            console.print(Text.assemble(("not checked: ", "dim"), note))
    total = counts(results)
    console.print(f"{total['errors']} error(s), {total['warnings']} warning(s)")
