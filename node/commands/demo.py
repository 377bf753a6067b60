"""``voisinage demo``: demonstrations that need no network."""

from __future__ import annotations

import json
import time

import typer

from node.sim.ledger_day import MAX_HOUSEHOLDS, format_summary, run_ledger_demo
from node.errors import UserError

demo_app = typer.Typer(help="Demonstrations that run in one process, without a network.", no_args_is_help=True)


@demo_app.command("ledger")
def demo_ledger(
    households: int = typer.Option(20, "--households", help="Households in the commune (2 to 2000)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulated sky, loads and events."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Drive one simulated day of a commune through the ledger and print each settlement."""
    if not 2 <= households <= MAX_HOUSEHOLDS:
        raise UserError(f"--households must be between 2 and {MAX_HOUSEHOLDS}")
    if not 0 <= seed < 2**63:
        raise UserError("--seed must be between 0 and 2**63 - 1")
    started = time.perf_counter()
    summary = run_ledger_demo(households, seed)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        typer.echo(format_summary(summary))
        typer.echo(f"({time.perf_counter() - started:.1f} s)")


def register(app: typer.Typer) -> None:
    app.add_typer(demo_app, name="demo")
