"""``voisinage bench``: measured figures for the parts with a performance goal."""

from __future__ import annotations

import json

import typer

from node.commands.gov import run_tally_bench

bench_app = typer.Typer(help="Benchmarks, each with a baseline measured in the same run.", no_args_is_help=True)


@bench_app.command("tally")
def bench_tally(
    voters: int = typer.Option(100_000, "--voters", min=1, max=10_000_000, help="Households."),
    categories: int = typer.Option(10, "--categories", min=1, max=32, help="Allocation categories."),
    chain: int = typer.Option(10_000, "--chain", min=1, help="Length of the longest delegation chains."),
    seed: int = typer.Option(1, "--seed", help="Seed of the generated workload."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Delegation resolution + independent markets allocation (goal: < 1 s for 100 000 voters)."""
    report = run_tally_bench(voters, categories, chain, seed)
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"{report['voters']} voters, {report['categories']} categories, "
               f"{report['direct_voters']} direct, delegation chains up to {report['longest_chain']}")
    typer.echo(f"resolve   {report['resolve_s']:.3f} s")
    typer.echo(f"allocate  {report['allocate_s']:.3f} s")
    typer.echo(f"total     {report['total_s']:.3f} s (goal < {report['goal_s']:g} s: "
               f"{'met' if report['within_goal'] else 'MISSED'})")
    typer.echo(f"baseline  {report['baseline_s']:.3f} s ({report['baseline']}); ratio {report['ratio']}")
    typer.echo(f"allocate with every voter direct: {report['allocate_all_direct_s']:.3f} s")


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
