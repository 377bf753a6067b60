"""``voisinage validator``: changing the validator set on a live chain (DESIGN §4 ValidatorSetChange).

A change travels as a JSON file between the mairie's operators: ``propose-change``
builds it from the node's current set and next nonce, each validator checks and
co-signs it with ``cosign`` (offline, with its own key file), and ``submit`` checks
that enough current validators signed before posting it. Every check uses the
ledger's own rules, and the node checks everything again: a refusal is one line and
nothing reaches the chain. The change takes effect two heights after its block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import multiaddr
import typer

from node.commands import datakey
from node.commands.client import parse_key_hex
from node.commands.options import NODE_OPTION, TOKEN_OPTION
from node.commands.cosigned import (
    Change, cosign_file, fetch_basis, submit_change, write_change,
)
from node.errors import UserError
from tokens.errors import InvalidTx
from tokens.rules_validators import compute_new_set
from tokens.txs import ValidatorSetChange

validator_app = typer.Typer(help="Change the validator set: propose-change, cosign, submit, rotate; and rotate "
                                 "the commune data key after it: rotate-data-key, cosign-data-key, submit-data-key.",
                            no_args_is_help=True)

OUT_OPTION = typer.Option(..., "--out", help="Where to write the change for the validators to co-sign.")


# --- checking arguments and files -----------------------------------------------------------

def parse_maddr(text: str) -> str:
    try:
        multiaddr.Multiaddr(text)
    except Exception:  # multiaddr raises many types on garbage; all mean bad input
        raise UserError(f"--add-addr {text!r} is not a multiaddr such as /ip4/192.0.2.10/tcp/26656") from None
    return text


def build_change(basis: dict[str, Any], add: list[str], addrs: list[str], remove: list[str]) -> ValidatorSetChange:
    """The unsigned change, checked by the ledger's rule against the latest set."""
    if len(add) != len(addrs):
        raise UserError(f"give one --add-addr per --add ({len(add)} keys, {len(addrs)} addresses)")
    tx = ValidatorSetChange(nonce=basis["next_nonce"], add=tuple(parse_key_hex(k, "--add") for k in add),
                            add_addrs=tuple(parse_maddr(a) for a in addrs),
                            remove=tuple(parse_key_hex(k, "--remove") for k in remove), sigs=())
    try:
        compute_new_set([bytes.fromhex(k) for k in basis["latest"]], tx)
    except InvalidTx as exc:
        raise UserError(f"{exc.reason}: {exc.detail}") from None
    return tx


def describe(change: Change) -> str:
    tx = change.tx
    parts = [f"add {k.hex()[:16]}… at {a}" for k, a in zip(tx.add, tx.add_addrs)]
    parts += [f"remove {k.hex()[:16]}…" for k in tx.remove]
    return f"change {tx.nonce}: {'; '.join(parts)}"


def propose(node: str, add: list[str], addrs: list[str], remove: list[str], out: Path) -> None:
    chain_id, basis = fetch_basis(node, ValidatorSetChange)
    tx = build_change(basis, add, addrs, remove)
    change = Change(chain_id, tuple(bytes.fromhex(k) for k in basis["validators"]), basis["quorum"], tx)
    write_change(out, change)
    typer.echo(f"{describe(change)}; written to {out}: {change.quorum} of {len(change.validators)} validators "
               f"co-sign it with `voisinage validator cosign --in {out} --key KEY --out FILE`")


# --- commands ---------------------------------------------------------------------------------

@validator_app.command("propose-change")
def validator_propose_change(
    add: list[str] = typer.Option([], "--add", help="Public key (hex) of a validator to add (repeatable)."),
    add_addr: list[str] = typer.Option([], "--add-addr", help="Its libp2p multiaddr, one per --add, in order; "
                                       "end it with /p2p/<peer id> to promote a node already running."),
    remove: list[str] = typer.Option([], "--remove", help="Public key (hex) of a validator to remove (repeatable)."),
    out: Path = OUT_OPTION,
    node: str = NODE_OPTION,
) -> None:
    """Write a validator set change built on the node's current set and next nonce."""
    propose(node, add, add_addr, remove, out)


@validator_app.command("rotate")
def validator_rotate(
    old: str = typer.Option(..., "--old", help="The validator's current public key (hex)."),
    new: str = typer.Option(..., "--new", help="Its new public key (hex)."),
    new_addr: str = typer.Option(..., "--new-addr", help="The multiaddr of the node holding the new key."),
    out: Path = OUT_OPTION,
    node: str = NODE_OPTION,
) -> None:
    """Rotate a validator's key: one change removes the old key and adds the new one at the same height."""
    propose(node, [new], [new_addr], [old], out)


@validator_app.command("cosign")
def validator_cosign(
    in_file: Path = typer.Option(..., "--in", help="The change (from propose-change or another cosign)."),
    key: Path = typer.Option(..., "--key", help="Your validator key file."),
    out: Path = typer.Option(..., "--out", help="Where to write the change with your signature."),
) -> None:
    """Validator: check a proposed change and add your co-signature (offline)."""
    signed, count = cosign_file(in_file, ValidatorSetChange, key, out)
    typer.echo(f"{describe(signed)}; {count} of {signed.quorum} signatures; written to {out}")


@validator_app.command("submit")
def validator_submit(
    in_file: Path = typer.Option(..., "--in", help="The co-signed change."),
    node: str = NODE_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Check the co-signatures against the node's current set, then post the change."""
    typer.echo(submit_change(in_file, ValidatorSetChange, node, token))


datakey.register(validator_app)


def register(app: typer.Typer) -> None:
    app.add_typer(validator_app, name="validator")
