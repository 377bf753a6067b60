"""``voisinage sim``: seeded fault simulations of the consensus engine (DESIGN §1, §6).

It reports rather than judges: the exit status is 0 even when the run finds safety
violations; tests assert on the figures.
"""

from __future__ import annotations

import json

import typer

from node.errors import UserError

sim_app = typer.Typer(help="Seeded simulations: many nodes in one process, virtual clock.", no_args_is_help=True)


@sim_app.command("consensus")
def sim_consensus(
    validators: int = typer.Option(4, "--validators", min=1, max=200, help="Number of validators."),
    byzantine: int = typer.Option(0, "--byzantine", min=0, help="Validators that equivocate."),
    drop: float = typer.Option(0.0, "--drop", min=0.0, max=0.95, help="Probability a message is lost."),
    partition_every: float = typer.Option(0.0, "--partition-every", min=0.0,
                                          help="Form a random partition every S virtual seconds, heal after S/2."),
    crash: int = typer.Option(0, "--crash", min=0, help="Honest validators that crash and restart."),
    heights: int = typer.Option(10, "--heights", min=1, max=100_000, help="Heights to commit."),
    seed: int = typer.Option(0, "--seed", help="Seed: one seed, one run."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run N engines joined by a faulty router and report safety and liveness figures."""
    from node.sim.consensus import SimConfig, make_crash_plan, run_simulation

    if byzantine > validators:
        raise UserError("--byzantine cannot exceed --validators")
    if crash + byzantine > validators:
        raise UserError("--crash plus --byzantine cannot exceed --validators")
    config = SimConfig(validators=validators, byzantine=byzantine, drop=drop,
                       partition_every_s=partition_every, heights=heights, seed=seed,
                       crashes=make_crash_plan(validators - byzantine, crash, seed))
    report = run_simulation(config).to_json()
    if as_json:
        typer.echo(json.dumps(report))
        return
    for key, value in report.items():
        typer.echo(f"{key:18} {value}")


def register(app: typer.Typer) -> None:
    app.add_typer(sim_app, name="sim")
