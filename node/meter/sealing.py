"""A household's side of sealed payloads (docs/privacy.md "Sealed payloads"): learn from a
node whether the chain seals and under which epoch, publish the household's data key,
and seal a tx before it is posted. Fresh randomness comes from the OS here; the
construction itself is tokens/sealing.py's."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from tokens.sealing import build_sealed, build_set_data_key
from tokens.txs import SEALABLE_TYPES, Offer, Sealed, SetDataKey, Tx
from wire import Keypair

# Refusals that mean "publish the data key of the current epoch, then seal again".
NEEDS_DATA_KEY = ("no_data_key", "wrong_epoch")


@dataclass(frozen=True)
class ChainSealing:
    """The commune data key households seal to now."""

    epoch: int
    public: bytes


def parse_commune_sealing(doc: Any) -> ChainSealing | None:
    """``sealing`` of a GET /commune answer: None if the chain does not seal. Raises
    ValueError for an answer that is not one."""
    if not isinstance(doc, dict) or "sealing" not in doc:
        raise ValueError("GET /commune: the node's answer says nothing of sealing (an older node?)")
    sealing = doc["sealing"]
    if sealing is None:
        return None
    try:
        epoch, public = sealing["epoch"], bytes.fromhex(sealing["public"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("GET /commune: sealing is not {epoch, public}") from None
    if type(epoch) is not int or epoch < 0 or len(public) != 32:
        raise ValueError("GET /commune: sealing is not {epoch, public}")
    return ChainSealing(epoch, public)


def is_sealed_on(tx: Tx) -> bool:
    """Whether a chain that seals takes ``tx`` only sealed (tokens/rules_seal.py)."""
    return type(tx) in SEALABLE_TYPES and not (isinstance(tx, Offer) and tx.counterparty is None)


def make_data_key_tx(key: Keypair, chain_id: bytes, nonce: int, sealing: ChainSealing) -> SetDataKey:
    return build_set_data_key(key, chain_id, nonce, sealing.epoch, sealing.public, os.urandom(32))


def seal_tx(tx: Tx, key: Keypair, chain_id: bytes, sealing: ChainSealing) -> Sealed:
    return build_sealed(tx, key, chain_id, sealing.epoch, os.urandom(24))
