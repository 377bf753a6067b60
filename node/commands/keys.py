"""``voisinage keys``: Ed25519 key files."""

from __future__ import annotations

from pathlib import Path

import typer

from node.home.keyfile import load_key, new_keypair, save_key

keys_app = typer.Typer(help="Ed25519 key files (mode 0600).", no_args_is_help=True)


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


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
