"""``voisinage gov propose-auditors | auditors``: the auditors households appoint on a
commune that seals payloads (docs/privacy.md "Auditors").

An auditor holds a copy of the commune data key from the next rotation on
(``validator rotate-data-key`` seals to the validators and the auditors), opens the
sealed payloads and re-checks the chain in full (``node verify --key``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from node.commands.client import NO_SIG, fetch_deadline, get_json, open_client, parse_key_hex, parse_node_url, submit
from node.commands.options import NODE_OPTION
from node.errors import UserError
from tokens.errors import InvalidTx
from tokens.rules_auditors import AUDITORS_PARAM, AuditorProposal, check_auditor_change
from tokens.txs import Propose


def fetch_auditor_sealing(node: str) -> dict[str, Any]:
    """``sealing`` of the node's GET /commune, with its auditors; refused on a chain that
    does not seal."""
    with open_client() as client:
        doc = get_json(client, parse_node_url(node), "/commune")
    sealing = doc.get("sealing", {}) if isinstance(doc, dict) else {}
    if sealing is None:
        raise UserError("this chain does not seal payloads: it has no commune data key, so no auditors")
    if not isinstance(sealing, dict) or not isinstance(sealing.get("auditors"), list):
        raise UserError("GET /commune: the node's answer lists no auditors (an older node?)")
    return sealing


def register(gov_app: typer.Typer, key_option: Any) -> None:
    @gov_app.command("propose-auditors")
    def gov_propose_auditors(
        add: list[str] = typer.Option([], "--add", help="Public key (hex) of an auditor to appoint (repeatable)."),
        remove: list[str] = typer.Option([], "--remove", help="Public key (hex) of an auditor to remove "
                                                              "(repeatable)."),
        voting_end: int | None = typer.Option(None, "--voting-end", min=0, help="Unix time voting closes."),
        window: int | None = typer.Option(None, "--window", min=1, help="Or: seconds from now voting stays open."),
        node: str = NODE_OPTION, key: Path = key_option,
    ) -> None:
        """Propose to appoint or remove auditors (at most 4 keys a proposal, 16 auditors in all).
        If it passes, the next rotation of the commune data key is
        sealed to them too; a removed auditor gets no copy of the next epoch."""
        if (voting_end is None) == (window is None):
            raise UserError("give exactly one of --voting-end or --window")
        change = AuditorProposal(tuple(parse_key_hex(k, "--add") for k in add),
                                 tuple(parse_key_hex(k, "--remove") for k in remove))
        sealing = fetch_auditor_sealing(node)
        try:
            check_auditor_change([bytes.fromhex(a["key"]) for a in sealing["auditors"]], change)
        except InvalidTx as exc:
            raise UserError(f"{exc.reason}: {exc.detail}") from None
        end = fetch_deadline(node, voting_end, window, ("--voting-end", "--window"))
        typer.echo(submit(node, key, lambda signer, nonce: Propose(
            signer=signer, nonce=nonce, param=AUDITORS_PARAM, value=change.to_value(), voting_end=end, sig=NO_SIG)))

    @gov_app.command("auditors")
    def gov_auditors(node: str = NODE_OPTION,
                     as_json: bool = typer.Option(False, "--json", help="Print the node's JSON.")) -> None:
        """List the auditors appointed by passed proposals, and whether the commune data key
        must be rotated to reach them (or to leave a removed one out)."""
        sealing = fetch_auditor_sealing(node)
        if as_json:
            typer.echo(json.dumps({k: sealing.get(k) for k in ("auditors", "holders", "rotation_due", "cut_due", "epoch")},
                                  indent=2))
            return
        lines = [f"  {a['key']}  since height {a['since']} (proposal {a['proposal'][:16]}…)"
                 for a in sealing["auditors"]] or ["  (none)"]
        epoch = sealing.get("epoch")
        holders = set(sealing.get("holders") or ())
        missing = [a["key"] for a in sealing["auditors"] if a["key"] not in holders]
        if not sealing.get("rotation_due"):
            due = f"every auditor holds the commune data key of epoch {epoch}"
        elif sealing.get("cut_due"):
            due = (f"a household's private data was erased: the next rotation of the commune data key is a cut, "
                   f"due now (`voisinage validator rotate-data-key`), after which nobody keeps epoch {epoch} or "
                   "older (docs/privacy.md \"Erasure\")")
        elif missing:
            due = (f"{len(missing)} auditor(s) hold no copy of epoch {epoch} yet: a rotation of the commune data key "
                   "is due (`voisinage validator rotate-data-key`)")
        else:
            due = (f"epoch {epoch} is sealed to a key that is no longer a validator or auditor: a rotation of the "
                   "commune data key is due (`voisinage validator rotate-data-key`)")
        typer.echo("\n".join(["auditors:", *lines, due]))
