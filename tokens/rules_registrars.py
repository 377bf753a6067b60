"""The registrar set: RegistrarSetChange, signed by >= 2/3 of the validators, or a passed
proposal on the pseudo-parameter ``registrars`` (DESIGN §12).

A registrar key is in force while its ``reg/`` record [since, until] covers the
height (tokens/ledger.py ``is_registrar_at``). A change committed at height h takes
effect at h+1: the rest of block h still sees the set as it was when the block began.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.ledger import Ledger, is_registrar_at
from tokens.rules_validators import check_validator_quorum
from tokens.txs import RegistrarSetChange
from wire.units import Height

# DESIGN §12: a registrar set change is effective from the next block.
REGISTRAR_ACTIVATION_DELAY = 1
# DESIGN §12 "or by a passed proposal": a Propose whose param is this name and whose value
# is {"add": [hex key, ...], "remove": [hex key, ...]}; applied when its tally passes.
REGISTRARS_PARAM = "registrars"


def get_registrars_at(entries: list[tuple[bytes, list]], height: Height) -> list[bytes]:
    """Every registrar key in force at ``height``, sorted, from the ``reg/`` entries."""
    return [key[len(L.REGISTRAR):] for key, rec in entries if is_registrar_at(rec, height)]


def check_registrar_change(current: list[bytes], change: RegistrarSetChange | RegistrarProposal) -> None:
    """``current``: the set as it will be at the activation height before this change."""
    add, remove = change.add, change.remove
    if len(set(add)) != len(add) or len(set(remove)) != len(remove):
        raise InvalidTx("bad_registrar_set", "a key is listed twice")
    if not (add or remove):
        raise InvalidTx("bad_registrar_set", "the change must add or remove a registrar")
    if set(add) & set(current):
        raise InvalidTx("already_registrar", "an added key is already a registrar")
    if not set(remove) <= set(current):
        raise InvalidTx("unknown_registrar", "a removed key is not a registrar")
    if not (set(current) - set(remove)) | set(add):
        raise InvalidTx("bad_registrar_set", "the change must leave at least one registrar")


@dataclass(frozen=True)
class KeySetProposal:
    """The value of a proposal that changes a set of keys (``registrars``, ``auditors``)."""

    add: tuple[bytes, ...]
    remove: tuple[bytes, ...]

    def to_value(self) -> str:
        """Canonical JSON text, as Propose.value holds it."""
        doc = {"add": [k.hex() for k in self.add], "remove": [k.hex() for k in self.remove]}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))


RegistrarProposal = KeySetProposal


def parse_key_set_proposal(value_text: str, kind: str) -> KeySetProposal:
    """A ``kind`` proposal's value (``registrars``, ``auditors``); raises InvalidTx("bad_value")."""
    usage = f'{kind}: the value is {{"add": [hex key, ...], "remove": [hex key, ...]}}'
    try:
        doc = json.loads(value_text)
    except ValueError:
        raise InvalidTx("bad_value", f"{usage}, not JSON") from None
    if not isinstance(doc, dict) or not set(doc) <= {"add", "remove"}:
        raise InvalidTx("bad_value", usage)
    lists = []
    for name in ("add", "remove"):
        items = doc.get(name, [])
        if not isinstance(items, list) or not all(isinstance(k, str) and is_key_hex(k) for k in items):
            raise InvalidTx("bad_value", f"{kind}.{name}: a list of public keys, 64 hex digits each")
        lists.append(tuple(bytes.fromhex(k) for k in items))
    return KeySetProposal(*lists)


def parse_registrar_proposal(value_text: str) -> KeySetProposal:
    """A ``registrars`` proposal's value; raises InvalidTx("bad_value")."""
    return parse_key_set_proposal(value_text, "registrars")


def is_key_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def get_next_registrars(lg: Ledger) -> list[bytes]:
    """The set as it will be from the next block, before any change of this block is applied."""
    return get_registrars_at(lg.ov.iter_prefix(L.REGISTRAR), lg.height + REGISTRAR_ACTIVATION_DELAY)


def check_registrar_proposal(lg: Ledger, value_text: str) -> RegistrarProposal:
    """Propose: the change must be valid against the set now (it is checked again if it passes)."""
    change = parse_registrar_proposal(value_text)
    check_registrar_change(get_next_registrars(lg), change)
    return change


def process_registrar_proposal(lg: Ledger, value_text: str) -> bool:
    """A passed ``registrars`` proposal: applied from the next block if still valid then."""
    try:
        change = check_registrar_proposal(lg, value_text)
    except InvalidTx:
        return False
    process_registrar_records(lg, change)
    return True


def process_registrar_records(lg: Ledger, change: RegistrarSetChange | RegistrarProposal) -> None:
    """Write the checked change: added keys in force, removed keys out, from the next block."""
    start = lg.height + REGISTRAR_ACTIVATION_DELAY
    for key in change.add:
        lg.ov.put(L.key_registrar(key), [start, 0])
    for key in change.remove:
        rec = lg.ov.get(L.key_registrar(key))
        rec[1] = start
        lg.ov.mark(L.key_registrar(key))


def process_registrar_set_change(lg: Ledger, tx: RegistrarSetChange, tx_id: bytes) -> None:
    # DESIGN §12: registrar sets change by >= 2/3 of the validators (the same co-signature
    # rule as ValidatorSetChange), from the next block on.
    check_validator_quorum(lg, tx, L.META_RSC_NONCE)
    check_registrar_change(get_next_registrars(lg), tx)
    lg.ov.put(L.META_RSC_NONCE, tx.nonce)
    process_registrar_records(lg, tx)
