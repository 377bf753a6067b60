"""CLI sub-commands, one module per group (each exposes ``register(app)``), and their HTTP client.

The top room of node/: it may import every other room; only node/cli.py imports it.
"""

from __future__ import annotations

import importlib

import typer

# Each entry is a module under node.commands with a ``register(app)`` function.
MODULES = [
    "keys",
    "genesis",
    "meter",
    "gov",
    "tx",
    "account",
    "bench",
    "sim",
    "demo",
    "registrar",
    "validator",
    "upgrade",
    "node",
    "localnet",
    "e2e",
    "euro",         # adds its commands to the tx and registrar groups
    "reconcile",    # adds consent and reconcile to the registrar group
    "consent",      # the consent group, and account curve
    "communes",     # relay, and the commune group (docs/communes.md)
]


def register_all(app: typer.Typer) -> None:
    for name in MODULES:
        importlib.import_module(f"node.commands.{name}").register(app)
