"""`bench` (the handler alone, its AWS calls on moto) and `bench-local` (the local loop
against the emulator). Both print figures and PASS/MISS against targets, and exit 0
unless ``--strict`` is given and a target is missed."""

from __future__ import annotations

from typing import Annotated

import typer

from . import bench_handler, bench_local
from .endpoint import NoEndpointError

StrictOption = Annotated[
    bool, typer.Option("--strict", help="Exit 1 when a figure misses its target.")
]


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
    app.command("bench-local")(bench_loop)


def bench(
    records: Annotated[
        int,
        typer.Option(
            "--records",
            min=1,
            help="Records in the benchmark batch (each runs its AWS calls on moto).",
        ),
    ] = bench_handler.DEFAULT_RECORDS,
    repeats: Annotated[
        int,
        typer.Option("--repeats", min=1, help="Runs of each measurement; the best one counts."),
    ] = bench_handler.DEFAULT_REPEATS,
    strict: StrictOption = False,
) -> None:
    """The handler's cost per record (next to a bare loop) and at import (next to its
    dependencies'). Informational: exits 0 unless --strict."""
    try:
        code = bench_handler.main(records=records, repeats=repeats, strict=strict)
    except bench_handler.BenchError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


def bench_loop(
    messages: Annotated[
        int, typer.Option("--messages", min=1, help="Messages per throughput run.")
    ] = 2000,
    latency_samples: Annotated[
        int, typer.Option("--latency-samples", min=1, help="Messages timed one by one.")
    ] = 40,
    rounds: Annotated[
        int,
        typer.Option("--rounds", min=1, help="Throughput runs of each kind; the best counts."),
    ] = 3,
    strict: StrictOption = False,
    skip_reference: Annotated[
        bool, typer.Option("--skip-reference", help="Skip the emulator's own mapping.")
    ] = False,
) -> None:
    """The local loop's throughput and latency against the emulator (after `sqsl up`).
    Informational: exits 0 unless --strict."""
    try:
        code = bench_local.main(
            messages=messages,
            latency_samples=latency_samples,
            rounds=rounds,
            strict=strict,
            skip_reference=skip_reference,
        )
    except NoEndpointError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    except bench_local.DrainError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)
