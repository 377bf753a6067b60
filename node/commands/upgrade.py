"""``voisinage upgrade``: scheduling a protocol upgrade on a live chain (docs/operations.md
"Upgrading").

The change travels as the same co-signed JSON file as a validator set change
(node/commands/cosigned.py): ``propose`` builds a ScheduleUpgrade(version, height) on
the node's next nonce, each validator checks and co-signs it offline, ``submit``
checks >= 2/3 of the current validators signed and posts it. From that height on,
blocks carry the new version and are judged by its rules; a node whose software
lacks it stops there with exit status 3 (node/service/upgrades.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from node.commands.client import get_json, open_client, parse_node_url
from node.commands.options import NODE_OPTION, TOKEN_OPTION
from node.commands.cosigned import Change, cosign_file, fetch_basis, submit_change, write_change
from node.errors import UserError
from tokens.txs import ScheduleUpgrade
from tokens.upgrades import MIN_UPGRADE_LEAD, PROTOCOL_VERSION, is_supported

upgrade_app = typer.Typer(help="Schedule a protocol upgrade: propose, cosign, submit, status.",
                          no_args_is_help=True)


def build_upgrade(basis: dict[str, Any], version: int, height: int) -> ScheduleUpgrade:
    """The unsigned upgrade, checked as the ledger will check it."""
    last_version = max((s["version"] for s in basis["scheduled"]), default=1)
    if version <= last_version:
        raise UserError(f"--version {version} is not above {last_version}, the last version scheduled")
    if height < basis["height"] + MIN_UPGRADE_LEAD:
        raise UserError(f"--height {height} is too soon: the chain is at {basis['height']}; give at least "
                        f"{basis['height'] + MIN_UPGRADE_LEAD}, and leave the operators time to install it")
    if not is_supported(version):
        typer.echo(f"warning: this software knows protocol versions up to {PROTOCOL_VERSION}; nodes running it "
                   f"will stop at height {height}", err=True)
    return ScheduleUpgrade(nonce=basis["next_nonce"], version=version, height=height, sigs=())


def describe(change: Change) -> str:
    return f"upgrade {change.tx.nonce}: protocol version {change.tx.version} from height {change.tx.height}"


@upgrade_app.command("propose")
def upgrade_propose(
    version: int = typer.Option(..., "--version", min=2, help="The protocol version to switch to."),
    height: int = typer.Option(..., "--height", min=1, help="The first height that runs it."),
    out: Path = typer.Option(..., "--out", help="Where to write the upgrade for the validators to co-sign."),
    node: str = NODE_OPTION,
) -> None:
    """Write a ScheduleUpgrade built on the node's current validators and next nonce."""
    chain_id, basis = fetch_basis(node, ScheduleUpgrade)
    change = Change(chain_id, tuple(bytes.fromhex(k) for k in basis["validators"]), basis["quorum"],
                    build_upgrade(basis, version, height))
    write_change(out, change)
    typer.echo(f"{describe(change)}; written to {out}: {change.quorum} of {len(change.validators)} validators "
               f"co-sign it with `voisinage upgrade cosign --in {out} --key KEY --out FILE`")


@upgrade_app.command("cosign")
def upgrade_cosign(
    in_file: Path = typer.Option(..., "--in", help="The upgrade (from propose or another cosign)."),
    key: Path = typer.Option(..., "--key", help="Your validator key file."),
    out: Path = typer.Option(..., "--out", help="Where to write the upgrade with your signature."),
) -> None:
    """Validator: check a proposed upgrade and add your co-signature (offline)."""
    signed, count = cosign_file(in_file, ScheduleUpgrade, key, out)
    typer.echo(f"{describe(signed)}; {count} of {signed.quorum} signatures; written to {out}")


@upgrade_app.command("submit")
def upgrade_submit(
    in_file: Path = typer.Option(..., "--in", help="The co-signed upgrade."),
    node: str = NODE_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Check the co-signatures against the node's current set, then post the upgrade."""
    typer.echo(submit_change(in_file, ScheduleUpgrade, node, token))


@upgrade_app.command("status")
def upgrade_status(
    node: str = NODE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the node's GET /upgrades document."),
) -> None:
    """The protocol version in force, the scheduled upgrades and whether this node holds them."""
    import json

    url = parse_node_url(node)
    with open_client() as client:
        doc = get_json(client, url, "/upgrades")
    if as_json:
        typer.echo(json.dumps(doc))
        return
    typer.echo(f"height {doc['height']}: protocol version {doc['version']} (this node's software: up to "
               f"{doc['software_version']}); fork id {doc['fork_id']['hash']} next {doc['fork_id']['next']}")
    for item in doc["scheduled"]:
        held = "held" if item["supported"] else "NOT held by this node: it will stop"
        typer.echo(f"  version {item['version']} from height {item['height']} ({held})")


def register(app: typer.Typer) -> None:
    app.add_typer(upgrade_app, name="upgrade")
