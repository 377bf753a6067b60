"""``voisinage keys``: Ed25519 key files."""

from __future__ import annotations

from pathlib import Path

import typer

from node.commands.client import DEFAULT_NODE, NO_SIG, TOKEN_ENV, submit
from node.errors import UserError
from node.home.keyfile import load_key, new_keypair, save_key
from tokens.txs import RotateKey

keys_app = typer.Typer(help="Ed25519 key files (mode 0600); rotate a household's key.", no_args_is_help=True)


@keys_app.command("new")
def keys_new(out: Path = typer.Option(..., "--out", help="Key file to write (mode 0600).")) -> None:
    """Create a new Ed25519 key file and print its public key."""
    key = new_keypair()
    save_key(out, key)
    typer.echo(key.public.hex())


@keys_app.command("show")
def keys_show(path: Path = typer.Argument(..., help="Key file to read.")) -> None:
    """Print the public key of a key file."""
    typer.echo(load_key(path).public.hex())


@keys_app.command("rotate")
def keys_rotate(
    key: Path = typer.Option(..., "--key", help="The household's current key file."),
    new_key: Path = typer.Option(..., "--new-key", help="The new key file (from `keys new`); it co-signs."),
    node: str = typer.Option(DEFAULT_NODE, "--node", help="The node's HTTP API."),
    token: str | None = typer.Option(None, "--api-token", envvar=TOKEN_ENV,
                                     help="Bearer token, when the node is remote and runs with --api-token."),
) -> None:
    """Move your household (meter, balances, gifts, votes) to a new key; the old key stops working."""
    new = load_key(new_key)
    if new.public == load_key(key).public:
        raise UserError("--new-key holds the same key as --key")
    typer.echo(submit(node, key, lambda signer, nonce: RotateKey(
        signer=signer, nonce=nonce, new_key=new.public, new_sig=NO_SIG, sig=NO_SIG), token=token,
        cosigners=((new, "new_sig"),)))


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
