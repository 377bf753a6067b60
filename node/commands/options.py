"""Options shared by the commands that talk to a node's HTTP API."""

from __future__ import annotations

import typer

from node.commands.client import DEFAULT_NODE, TOKEN_ENV

NODE_OPTION = typer.Option(DEFAULT_NODE, "--node", help="The node's HTTP API.")
TOKEN_OPTION = typer.Option(None, "--api-token", envvar=TOKEN_ENV,
                            help="Bearer token, when the node is remote and runs with --api-token.")
