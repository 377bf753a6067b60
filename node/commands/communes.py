"""Transfers between communes on the command line (docs/communes.md).

- ``voisinage relay --a URL --b URL``: carry packets and headers between two communes'
  nodes; untrusted and keyless, it can be stopped and started again at any time;
- ``voisinage commune link --genesis FILE``: the registrar links another commune: its
  chain id is the hash of that genesis file, its validators are trusted from height 1;
- ``voisinage commune send``: send kWh (or hours, or vouchers going home) to a household
  of another commune;
- ``voisinage commune status``: linked communes, escrow, vouchers, packets in flight.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from node.commands.client import NO_SIG, fetch_deadline, get_json, open_client, parse_key_hex, parse_node_url, submit
from node.commands.options import NODE_OPTION, TOKEN_OPTION
from node.errors import UserError
from node.relay.relayer import run_relayer
from tokens.errors import InvalidTx
from tokens.genesis import GenesisError, parse_genesis
from tokens.ibc import parse_denom
from tokens.txs import CreateClient, SendToCommune

commune_app = typer.Typer(help="Transfers between communes (docs/communes.md).", no_args_is_help=True)


def relay(
    a: str = typer.Option(..., "--a", help="One commune's node (HTTP API URL)."),
    b: str = typer.Option(..., "--b", help="The other commune's node (HTTP API URL)."),
    interval: float = typer.Option(1.0, "--interval", help="Seconds between passes."),
    passes: int | None = typer.Option(None, "--passes", help="Stop after this many passes (default: run until "
                                                             "stopped)."),
    token_a: str | None = typer.Option(None, "--token-a", help="--api-token of node a, if not on loopback."),
    token_b: str | None = typer.Option(None, "--token-b", help="--api-token of node b, if not on loopback."),
) -> None:
    """Relay between two communes: client updates, packets, acknowledgements, timeouts and
    misbehaviour evidence. It holds no key: every tx it posts carries its proof."""
    urls = (parse_node_url(a), parse_node_url(b))
    if urls[0] == urls[1]:
        raise UserError("--a and --b are the same node")
    if interval <= 0 or (passes is not None and passes < 1):
        raise UserError("--interval must be positive and --passes at least 1")
    try:
        run_relayer(*urls, interval_s=interval, passes=passes, tokens=(token_a, token_b), echo=typer.echo)
    except KeyboardInterrupt:
        typer.echo("relayer stopped")


def read_genesis_file(path: Path):
    try:
        return parse_genesis(path.read_bytes())
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except GenesisError as exc:
        raise UserError(f"{path}: not a genesis file ({exc})") from None


@commune_app.command("link")
def link(
    genesis: Path = typer.Option(..., "--genesis", help="The other commune's genesis.json (its chain id is its "
                                                       "hash: get it from that commune's mairie)."),
    node: str = NODE_OPTION, key: Path = typer.Option(..., "--key", help="The registrar's key file."),
    token: str | None = TOKEN_OPTION,
) -> None:
    """Registrar: this commune trusts the other commune's chain, from its genesis validators on."""
    other = read_genesis_file(genesis)
    validators = tuple(v.key for v in other.validators)
    typer.echo(submit(node, key, lambda signer, nonce: CreateClient(
        signer=signer, nonce=nonce, chain_id=other.chain_id, name=other.name[:64] or "commune",
        validators=validators, from_height=1, sig=NO_SIG), token=token))


@commune_app.command("send")
def send(
    dest: str = typer.Option(..., "--dest", help="The other commune's chain id (hex)."),
    to: str = typer.Option(..., "--to", help="The receiving account there (public key, hex)."),
    amount: int = typer.Option(..., "--amount", help="Wh of kwh, minutes of hour, or units of a voucher."),
    cls: str = typer.Option("kwh", "--class", help="kwh, hour, or a voucher going home (ibc/<16 hex>/<class>)."),
    minutes: int | None = typer.Option(None, "--timeout-minutes",
                                       help="Refunded unless received within this many minutes (chain time)."),
    timeout: int | None = typer.Option(None, "--timeout", help="...or before this unix time on the other chain."),
    node: str = NODE_OPTION, key: Path = typer.Option(..., "--key", help="Your key file (the sender)."),
    token: str | None = TOKEN_OPTION,
) -> None:
    """Send to a household of another commune; prints the tx id. Unlike a transfer inside
    the commune, it is public: sender, receiver and amount are proven to the other chain
    (docs/privacy.md)."""
    dest_id, receiver = parse_key_hex(dest, "--dest"), parse_key_hex(to, "--to")
    if amount <= 0:
        raise UserError("--amount must be positive")
    try:
        parse_denom(cls)
    except InvalidTx as exc:
        raise UserError(f"--class: {exc.detail}") from None
    if minutes is not None and minutes <= 0:
        raise UserError("--timeout-minutes must be positive")
    if minutes is None and timeout is None:
        minutes = 60
    deadline = fetch_deadline(node, timeout, None if minutes is None else minutes * 60,
                              ("--timeout", "--timeout-minutes"))
    typer.echo(submit(node, key, lambda signer, nonce: SendToCommune(
        signer=signer, nonce=nonce, dest=dest_id, receiver=receiver, denom=cls, amount=amount,
        timeout_s=deadline, sig=NO_SIG), token=token))


@commune_app.command("status")
def status(node: str = NODE_OPTION, as_json: bool = typer.Option(False, "--json")) -> None:
    """Linked communes (light clients), channels (escrow, in flight) and vouchers."""
    with open_client() as client:
        doc = get_json(client, parse_node_url(node), "/ibc")
    if as_json:
        typer.echo(json.dumps(doc, indent=1))
        return
    for c in doc["clients"]:
        state = "FROZEN (misbehaviour at %s)" % c["frozen_height"] if c["frozen"] else "active"
        typer.echo(f"linked {c['name']!r} {c['chain_id'][:16]}…  header {c['latest_height']}  {state}")
    for ch in doc["channels"]:
        typer.echo(f"to {ch['dest'][:16]}…  escrow {ch['escrow']}  in flight {ch['in_flight_packets']} "
                   f"{ch['in_flight']}")
    for v in doc["vouchers"]:
        typer.echo(f"vouchers {v['denom']}: {v['supply']}")
    for m in doc["self_misbehaviour"]:
        typer.echo(f"ALERT: this commune's validators signed two blocks at height {m['height']}")


def register(app: typer.Typer) -> None:
    app.command("relay")(relay)
    app.add_typer(commune_app, name="commune")
