"""What the redacted routes leave out for whoever may not read it (node/api/access.py
REDACTED; docs/privacy.md "Who sees what through the API").

Each function takes a view as the ledger gives it and the ``Viewer``, and returns what
that viewer may see. A household's private data is its balances, gifts, household
record (meter, PRM, label, kVA, kWc), meter indexes, its trades and payouts; what stays
public is what the chain needs in clear (addresses, nonces, a reading's seq and time,
key recoveries and moves, the solidarity flag) and governance (delegations, ballots,
votes).
"""

from __future__ import annotations

from typing import Any

from node.api.access import Viewer
from tokens.kv import KV
from tokens.visibility import PUBLIC, get_entry_reader, is_hidden_interval

# Transactions anyone may read whole: spending from the funds (DESIGN §4 "Public"),
# governance, the validator and registrar sets, upgrades, associations, and key recovery
# and rotation (the old key must be able to see a recovery to cancel it). Every other
# type (readings, transfers, gifts, services, offers, registrations, redemptions,
# reconciliations ..., and any type added later until it is listed here) carries a
# household's consumption, production, trades or identity.
PUBLIC_TXS = frozenset({
    "tx/spend", "tx/delegate", "tx/ballot", "tx/propose", "tx/vote", "tx/validator-set", "tx/registrar-set",
    "tx/schedule-upgrade", "tx/association", "tx/remove-association", "tx/rotate-key", "tx/recover-key",
    "tx/cancel-recovery", "tx/rotate-data-key", "tx/set-receive-key",
})
# Fields that name an account a transaction touches (tokens/txs.py).
PARTY_FIELDS = ("signer", "to", "beneficiary", "provider", "counterparty", "key", "new_key", "household")
# What a stub of a private transaction keeps: what consensus needs in clear.
STUB_FIELDS = ("id", "type", "signer", "nonce", "height", "time_ms")
# An account's fields anyone sees.
PUBLIC_ACCOUNT = ("address", "nonce", "pending_nonce", "registrar", "recovery", "rotated_to", "deregistered_at", "delegations",
                  "ballot", "ballot_by_category")
RECORD_FIELDS = ("meter", "prm", "label", "kva", "peak_w")


def compute_parties(doc: dict[str, Any]) -> frozenset[str]:
    """The accounts (hex) a transaction names."""
    return frozenset(doc[f] for f in PARTY_FIELDS if isinstance(doc.get(f), str))


def may_read_tx(doc: dict[str, Any], parties: frozenset[str], viewer: Viewer) -> bool:
    """A public transaction, or a private one the viewer is a party of (or the operator)."""
    if doc["type"] in PUBLIC_TXS or viewer.operator:
        return True
    return viewer.signer is not None and viewer.signer.hex() in parties


def redact_tx(doc: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    """The transaction, or its stub: id, type, signer (and nonce, height, time)."""
    if may_read_tx(doc, compute_parties(doc), viewer):
        return doc
    return dict({f: doc[f] for f in STUB_FIELDS if f in doc}, redacted=True)


def redact_block(doc: dict[str, Any] | None, viewer: Viewer) -> dict[str, Any] | None:
    if doc is None:
        return None
    return dict(doc, txs=[redact_tx(tx, viewer) for tx in doc["txs"]])


def redact_account(doc: dict[str, Any] | None, viewer: Viewer) -> dict[str, Any] | None:
    """The whole account to its household, the operator, or (a registrar key's account)
    anyone; else its public part. A registrar's signature also shows the household
    record it registered, without balances, gifts or meter indexes."""
    if doc is None or doc["registrar"] or viewer.may_read(bytes.fromhex(doc["address"])):
        return doc
    public = {f: doc[f] for f in PUBLIC_ACCOUNT}
    household = doc["household"]
    if household is not None:
        reading = household["last_reading"]
        shown = {"solidarity": household["solidarity"], "since_height": household["since_height"],
                 "last_reading": {"seq": reading["seq"], "t": reading["t"]}}
        if viewer.may_read_records(None):
            shown.update({f: household[f] for f in RECORD_FIELDS})
        household = shown
    return dict(public, household=household, redacted=True)


def redact_registrars(doc: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    """A pending recovery's label only to its household, the operator or a registrar."""
    recoveries = [r if viewer.may_read_records(bytes.fromhex(r["household"])) else dict(r, label="")
                  for r in doc["recoveries"]]
    return dict(doc, recoveries=recoveries)


def redact_reconciliation(doc: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    """The commune's totals to all; a flagged household only to itself or the operator."""
    flagged = [f for f in doc["flagged"] if viewer.may_read(bytes.fromhex(f["address"]))]
    return dict(doc, flagged=flagged, flagged_count=len(doc["flagged"]))


def filter_rows(rows: list[dict[str, Any]], viewer: Viewer) -> list[dict[str, Any]]:
    """Payouts and euro ledger rows: each to its account's household, the operator, or a
    registrar (the mairie pays them and keeps their books)."""
    return [row for row in rows if viewer.may_read_records(bytes.fromhex(row["account"]))]


def check_proven_value_access(kv: KV, key: bytes, value: bytes | None, viewer: Viewer) -> None:
    """Raise AccessRefused unless ``viewer`` may read ``value``, the value of ``key`` at
    the proof's height: an interval record public now was open (hidden) before, and
    its running sums at each height would give each block's readings (docs/privacy.md)."""
    if is_hidden_interval(kv, key, value):
        viewer.require_operator("this interval's record (fewer than min_aggregate households, or not settled)")


def check_proof_access(kv: KV, key: bytes, viewer: Viewer) -> None:
    """Raise AccessRefused unless ``viewer`` may read the entry (or absence) at ``key``:
    the rule the validators apply to light household nodes (tokens/visibility.py), a
    public entry to anyone, a household's to it, the rest to the operator only."""
    reader = get_entry_reader(kv, key)
    if reader is PUBLIC:
        return
    if reader is None:
        viewer.require_operator("this state entry (indexes, and entries no household owns)")
    else:
        viewer.require(reader, "this household's state entry")
