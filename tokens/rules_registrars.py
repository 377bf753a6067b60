"""The registrar set: RegistrarSetChange, signed by >= 2/3 of the validators (DESIGN §12).

A registrar key is in force while its ``reg/`` record [since, until] covers the
height (tokens/ledger.py ``is_registrar_at``). A change committed at height h takes
effect at h+1: the rest of block h still sees the set as it was when the block began.
"""

from __future__ import annotations

from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.ledger import Ledger, is_registrar_at
from tokens.rules_validators import check_validator_quorum
from tokens.txs import RegistrarSetChange
from wire.units import Height

# DESIGN §12: a registrar set change is effective from the next block.
REGISTRAR_ACTIVATION_DELAY = 1


def get_registrars_at(entries: list[tuple[bytes, list]], height: Height) -> list[bytes]:
    """Every registrar key in force at ``height``, sorted, from the ``reg/`` entries."""
    return [key[len(L.REGISTRAR):] for key, rec in entries if is_registrar_at(rec, height)]


def check_registrar_change(current: list[bytes], tx: RegistrarSetChange) -> None:
    """``current``: the set as it will be at the activation height before this change."""
    if len(set(tx.add)) != len(tx.add) or len(set(tx.remove)) != len(tx.remove):
        raise InvalidTx("bad_registrar_set", "a key is listed twice")
    if not (tx.add or tx.remove):
        raise InvalidTx("bad_registrar_set", "the change must add or remove a registrar")
    if set(tx.add) & set(current):
        raise InvalidTx("already_registrar", "an added key is already a registrar")
    if not set(tx.remove) <= set(current):
        raise InvalidTx("unknown_registrar", "a removed key is not a registrar")
    if not (set(current) - set(tx.remove)) | set(tx.add):
        raise InvalidTx("bad_registrar_set", "the change must leave at least one registrar")


def process_registrar_set_change(lg: Ledger, tx: RegistrarSetChange, tx_id: bytes) -> None:
    # DESIGN §12: registrar sets change by >= 2/3 of the validators (the same co-signature
    # rule as ValidatorSetChange), from the next block on.
    check_validator_quorum(lg, tx, L.META_RSC_NONCE)
    start = lg.height + REGISTRAR_ACTIVATION_DELAY
    check_registrar_change(get_registrars_at(lg.ov.iter_prefix(L.REGISTRAR), start), tx)
    lg.ov.put(L.META_RSC_NONCE, tx.nonce)
    for key in tx.add:
        lg.ov.put(L.key_registrar(key), [start, 0])
    for key in tx.remove:
        rec = lg.ov.get(L.key_registrar(key))
        rec[1] = start
        lg.ov.mark(L.key_registrar(key))
