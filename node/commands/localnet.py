"""``voisinage localnet``: a whole local network on this machine, one process per node."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import trio
import typer

localnet_app = typer.Typer(help="Local multi-node test networks.", no_args_is_help=True)


@localnet_app.command("up")
def localnet_up(
    validators: int = typer.Option(4, "--validators", min=1, max=31, help="Number of validators."),
    households: int = typer.Option(8, "--households", min=0, max=200, help="Household nodes, each with a simulated meter."),
    speed: int = typer.Option(60, "--speed", min=1, max=3600, help="Chain clock speed-up (dev genesis time_scale)."),
    duration: float = typer.Option(None, "--duration", min=1, help="Stop after this many seconds and report."),
    home: Path = typer.Option(None, "--home", help="Directory for the network (default: a new temporary one)."),
    report: Path = typer.Option(None, "--report", help="Write the JSON report here (with --duration)."),
    http_base: int = typer.Option(8700, "--http-base", min=1024, max=65000, help="Node i serves HTTP on this port + i."),
    netns: bool = typer.Option(False, "--netns", help="Root only: each node in its own network namespace, "
                                                      "joined by a bridge (10.77.S.0/24)."),
    seal: bool = typer.Option(None, "--seal/--no-seal",
                              help="A commune that seals household payloads (genesis new --seal-payloads; "
                                   "household nodes run --light; docs/privacy.md): the default, except with "
                                   "--communes 2. --no-seal: payloads in clear, full household nodes."),
    communes: int = typer.Option(1, "--communes", min=1, max=2, help="2: two communes, linked, with a relayer "
                                                                    "(docs/communes.md)."),
) -> None:
    """Start every node on loopback (or each in its namespace), print their URLs; Ctrl-C stops them all."""
    if communes == 2:
        import tempfile

        from node.localnet.communes import run_two_communes
        if netns:
            raise typer.BadParameter("--communes 2 runs on loopback only", param_hint="--netns")
        if seal:
            raise typer.BadParameter("--communes 2 does not seal payloads (transfers between communes are "
                                     "public); leave out --seal", param_hint="--seal")
        where = home or Path(tempfile.mkdtemp(prefix="voisinage-communes-"))
        raise typer.Exit(trio.run(partial(run_two_communes, where, validators, max(households, 2), speed,
                                          http_base, duration)))
    from node.localnet.launcher import LocalnetConfig, run_localnet

    cfg = LocalnetConfig(validators=validators, households=households, speed=speed, duration=duration,
                         home=home, report=report, http_base=http_base, netns=netns,
                         seal=seal)
    code = trio.run(partial(run_localnet, cfg))
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.add_typer(localnet_app, name="localnet")
