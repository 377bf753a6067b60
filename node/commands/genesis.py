"""``voisinage genesis``: write a commune's genesis and its node homes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from node.errors import UserError
from node.home.homedir import create_network
from node.home.sky import compute_sky, resolve_location

genesis_app = typer.Typer(help="The commune's constitution: genesis.json and node homes.",
                          no_args_is_help=True)


def parse_class_option(text: str) -> dict[str, Any]:
    """``--class NAME:UNIT[:CREDIT_LIMIT]``: a class a registrar issues (docs/classes.md);
    the genesis checks the name, unit and limit."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise UserError(f"--class expects NAME:UNIT or NAME:UNIT:CREDIT_LIMIT (e.g. points:pt:0), not {text!r}")
    doc: dict[str, Any] = {"name": parts[0], "unit": parts[1], "issued_by": "registrar"}
    if len(parts) == 3:
        if not parts[2].isdigit():
            raise UserError(f"--class {text}: the credit limit must be a whole number of {parts[1]}")
        doc["credit_limit"] = int(parts[2])
    return doc


def read_classes_file(path: Path) -> list[Any]:
    """``--classes FILE``: a JSON list of class definitions, as the genesis holds them."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"--classes {path}: cannot read a JSON list ({exc})") from None
    if not isinstance(doc, list):
        raise UserError(f"--classes {path}: expected a JSON list of class definitions")
    return doc


@genesis_app.command("new")
def genesis_new(
    name: str = typer.Option(..., "--name", help="Commune name."),
    insee: str = typer.Option(..., "--insee", help="INSEE code of the commune (5 characters)."),
    validators: int = typer.Option(..., "--validators", min=1, max=100, help="Number of validators."),
    households: int = typer.Option(0, "--households", min=0, max=100_000, help="Households registered at genesis."),
    base_port: int = typer.Option(26656, "--base-port", min=1, max=65535, help="Validator i listens on P+i."),
    time_scale: int = typer.Option(1, "--time-scale", min=1, max=3600,
                                   help="Development only: the chain clock runs this many times faster."),
    validator_ip: str = typer.Option(None, "--validator-ip",
                                     help="Validator i listens at this IPv4 address + i (default 127.0.0.1 for all)."),
    out: Path = typer.Option(..., "--out", help="Directory to write genesis.json and the homes into."),
    lat: float = typer.Option(None, "--lat", help="Latitude, degrees north (default: the INSEE code's, if shipped)."),
    lon: float = typer.Option(None, "--lon", help="Longitude, degrees east (default: the INSEE code's, if shipped)."),
    elevation: int = typer.Option(None, "--elevation", help="Elevation, metres (default: the INSEE code's, or 0)."),
    seal_payloads: bool = typer.Option(True, "--seal-payloads/--clear-payloads",
                                       help="Household payloads travel sealed to a commune data key that only the "
                                            "validators (and appointed auditors) hold: the default "
                                            "(docs/privacy.md). Household nodes then run light. --clear-payloads: "
                                            "every node holds and gossips every household's readings in clear "
                                            "(development and tests only: a load curve is personal data)."),
    class_opts: list[str] = typer.Option([], "--class",
                                         help="A token class the registrar issues, NAME:UNIT[:CREDIT_LIMIT] "
                                              "(e.g. recycled:g or points:pt:0); repeatable (docs/classes.md)."),
    classes_file: Path = typer.Option(None, "--classes",
                                      help="Or: a JSON list of class definitions (name, unit, label, decimals, "
                                           "credit_limit, issued_by)."),
) -> None:
    """Write OUT/genesis.json and one home per node (validator-i, household-i, registrar).

    The genesis carries the commune's clear-sky table (pvlib, at this moment only), which
    caps every household's export (docs/reconciliation.md)."""
    classes = (read_classes_file(classes_file) if classes_file else []) + [parse_class_option(c) for c in class_opts]
    sky = compute_sky(*resolve_location(insee, lat, lon, elevation))
    genesis = create_network(out, name=name, insee=insee, validators=validators, households=households,
                             base_port=base_port, time_scale=time_scale, validator_ip=validator_ip, sky=sky,
                             seal_payloads=seal_payloads, classes=classes)
    typer.echo(f"chain id {genesis.chain_id_hex}")
    typer.echo(f"clear sky at {sky.lat}, {sky.lon}, {sky.elevation_m} m: {sky.get_day_wh(5)} Wh per kWc "
               f"on a clear June day, {sky.get_day_wh(11)} in December")
    if seal_payloads:
        typer.echo(f"household payloads are sealed: a new commune data key, sealed to each of the {validators} "
                   "validators' receive key (in its home's receive_keys/, apart from its key file; its secret is "
                   "written nowhere in clear); each genesis household's meter, PRM, "
                   "label, kVA and peak are sealed to it in genesis.json, and in clear in its own home's "
                   "household.json only; household nodes run light")
    else:
        typer.echo("household payloads travel in clear (--clear-payloads): every node holds every household's "
                   "readings; not for a commune's real data (docs/privacy.md)", err=True)
    for spec in genesis.classes:
        typer.echo(f"token class {spec.name} ({spec.label}, in {spec.unit}), issued by: {spec.issued_by}, "
                   f"credit limit {genesis.params['credit_limit'][spec.name]} {spec.unit}")
    typer.echo(f"wrote {out / 'genesis.json'} and {validators + households + 1} homes")


def register(app: typer.Typer) -> None:
    app.add_typer(genesis_app, name="genesis")
