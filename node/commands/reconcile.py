"""``voisinage registrar consent`` and ``registrar reconcile`` (issue 18, docs/reconciliation.md).

``reconcile`` reads official load curves (node/commands/official.py) and posts one
registrar-signed ``Reconcile`` per household and local day. A delivery point whose curve
is malformed is refused with one line before anything is sent; one the node refuses
(unknown PRM, no consent, too late...) is refused with the node's reason; every other
household-day is applied. Each is one transaction: nothing is half-written. The exit
status is 1 if anything was refused. On a commune that seals payloads each is sealed to
the commune data key (``CommuneSealed``, docs/privacy.md "What is sealed").
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import typer

from node.commands.client import (
    NO_SIG, fetch_next_nonce, fetch_sealing, get_chain_id, open_client, parse_node_url, post_tx, sign_tx, submit,
)
from node.commands.official import parse_files
from node.commands.registrar import KEY_OPTION, NODE_OPTION, TOKEN_OPTION, parse_serial, registrar_app
from node.commands.tx import parse_memo
from node.errors import UserError
from node.home.keyfile import load_key
from tokens.sealing import build_commune_sealed
from tokens.txs import Consent, Reconcile


@registrar_app.command("consent")
def registrar_consent(
    prm: str = typer.Option(..., "--prm", help="The household's delivery point (PRM), 14 digits."),
    withdraw: bool = typer.Option(False, "--withdraw", help="Record that the household withdraws its consent."),
    memo: str = typer.Option("", "--memo", help="Where the signed consent is filed, up to 140 bytes, public."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Record a household's consent to the reading and reconciliation of its official load curves."""
    prm = parse_serial(prm, 14, "--prm")
    parse_memo(memo)
    typer.echo(submit(node, key, lambda signer, nonce: Consent(
        signer=signer, nonce=nonce, prm=prm, granted=not withdraw, memo=memo, sig=NO_SIG), token=token))


def describe_day(start: int) -> str:
    return dt.datetime.fromtimestamp(start + 12 * 3600, dt.timezone.utc).date().isoformat()


@registrar_app.command("reconcile")
def registrar_reconcile(
    files: list[Path] = typer.Option(..., "--file", help="Data Connect JSON or customer-area CSV (repeatable)."),
    production: list[Path] = typer.Option([], "--production-file",
                                          help="A file of production curves only (production_load_curve)."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Post the official curves of consenting households: one Reconcile per household and day."""
    url = parse_node_url(node)
    keypair = load_key(key)
    curves = parse_files(files, production)
    days = curves.split_days()
    refused = [f"refused {prm}: {why}" for prm, why in sorted(curves.refused.items())]
    applied = 0
    with open_client() as client:
        chain_id = get_chain_id(client, url) if days else b""
        nonce = fetch_next_nonce(client, url, keypair.public) if days else 0
        sealing = fetch_sealing(client, url) if days else None
        for (prm, day), by_dir in days.items():
            tx = Reconcile(signer=keypair.public, nonce=nonce, prm=prm, start=day,
                           export_wh=tuple(by_dir.get("export", ())), import_wh=tuple(by_dir.get("import", ())),
                           sig=NO_SIG)
            signed = sign_tx(tx, keypair, chain_id)
            if sealing is not None:
                # docs/privacy.md "What is sealed": the official curve, sealed to the commune key.
                signed = build_commune_sealed(signed, keypair, chain_id, sealing.epoch, sealing.public,
                                              os.urandom(32))
            try:
                tx_id = post_tx(client, url, signed, token)
            except UserError as exc:
                refused.append(f"refused {prm} {describe_day(day)}: {exc}")
                continue
            nonce += 1
            applied += 1
            typer.echo(f"{prm} {describe_day(day)}: {len(tx.export_wh or tx.import_wh)} half hours, "
                       f"export {sum(tx.export_wh)} Wh, import {sum(tx.import_wh)} Wh: {tx_id}")
    for line in refused:
        typer.echo(line, err=True)
    typer.echo(f"posted {applied} household-days, refused {len(refused)}")
    if refused:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Adds its commands to the registrar group (see node/commands/registrar.py)."""
