"""``voisinage status`` and ``voisinage account show``: what a node says, read over its HTTP API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from node.commands.client import get_json, get_status, open_client, parse_key_hex, parse_node_url
from node.commands.options import NODE_OPTION, TOKEN_OPTION
from node.home.keyfile import load_key

account_app = typer.Typer(help="Accounts: balances, household, gifts, delegations, ballot.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print the node's JSON.")


def format_wh(wh: int) -> str:
    return f"{wh / 1000:,.3f} kWh"


def format_minutes(minutes: int) -> str:
    sign = "-" if minutes < 0 else ""
    return f"{sign}{abs(minutes) // 60} h {abs(minutes) % 60:02d} min"


def format_status(doc: dict[str, Any]) -> list[str]:
    role = "validator" if doc.get("validator") else "full node"
    lines = [f"node        {doc.get('name', '?')} ({role}), address {doc.get('address', '?')}",
             f"chain       {doc.get('chain_id', '?')}",
             f"height      {doc.get('height', '?')}  round {doc.get('round', '?')}  step {doc.get('step', '?')}"
             f"{'  (syncing)' if doc.get('syncing') else ''}",
             f"state hash  {doc.get('state_hash', '?')}",
             f"peers       {doc.get('peers', '?')}  mempool {doc.get('mempool_txs', '?')} txs",
             f"settled     {doc.get('settled_intervals', '?')} intervals since start"]
    return lines


@account_app.command("show")
def account_show(
    addr: str | None = typer.Option(None, "--addr", help="Public key (hex) of the account."),
    key: Path | None = typer.Option(None, "--key", help="Sign the request with this key file: a household sees "
                                                        "its own balances and record; default account: this key's."),
    node: str = NODE_OPTION, as_json: bool = JSON_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Balances and household details of an account (default: the node's own household).
    Unsigned, a household's account shows only its public part (docs/privacy.md)."""
    url = parse_node_url(node)
    signer = load_key(key) if key is not None else None
    with open_client() as client:
        if addr is not None:
            target = parse_key_hex(addr, "--addr").hex()
        elif signer is not None:
            target = signer.public.hex()
        else:
            target = str(get_status(client, url).get("address", ""))
            parse_key_hex(target, "the node's address")
        doc = get_json(client, url, f"/accounts/{target}", signer=signer, token=token)
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo("\n".join(format_account(doc)))


def format_account(doc: dict[str, Any]) -> list[str]:
    lines = [f"account     {doc.get('address', '?')}"]
    if doc.get("redacted"):
        lines.append("balances    private: sign with the household's --key (or give the node's --api-token)")
    else:
        balances = doc.get("balances", {})
        lines += [f"kwh         {format_wh(balances.get('kwh', 0))}",
                  f"hour        {format_minutes(balances.get('hour', 0))}"]
        # A commune-defined class, as an integer of its unit (docs/classes.md).
        lines += [f"{cls:<11} {amount}" for cls, amount in sorted(balances.items()) if cls not in ("kwh", "hour")]
    lines.append(f"nonce       {doc.get('nonce', 0)}")
    household = doc.get("household")
    if household and "label" not in household:
        lines.append(f"household   registered at height {household.get('since_height')}"
                     f"{', solidarity' if household.get('solidarity') else ''}")
    elif household:
        lines.append(f"household   {household.get('label')}  meter {household.get('meter')}  "
                     f"{household.get('kva')} kVA  {household.get('peak_w')} W peak")
    for gift in doc.get("gifts", []):
        lines.append(f"gift        {gift['bp'] / 100:.2f} % of each mint to {gift['beneficiary'][:16]}… "
                     f"until {gift['until']} (id {gift['id'][:16]}…)")
    for topic, to in sorted(doc.get("delegations", {}).items()):
        lines.append(f"delegation  {topic}: {to[:16] + '…' if to else 'none'}")
    if doc.get("ballot"):
        ballot = doc["ballot"]
        shown = ", ".join(f"{name} {bp} bp" for name, bp in ballot.items()) if isinstance(ballot, dict) else ballot
        lines.append(f"ballot      {shown}")
    return lines


def status(node: str = NODE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The node's height, round, peers and state hash."""
    url = parse_node_url(node)
    with open_client() as client:
        doc = get_status(client, url)
    typer.echo(json.dumps(doc, indent=2) if as_json else "\n".join(format_status(doc)))


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.add_typer(account_app, name="account")
