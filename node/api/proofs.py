"""GET /proofs/{key}: a state entry, or its absence, proven against a committed header.

The header of block h+1 carries the state root after height h (DESIGN §6: "state
hash after the parent"), so the state of height h is provable once block h+1 is
committed: the default height is the last committed height minus one. The proof is
checked with ``wire.merkle.verify_proof(root, key, value, proof, salt)``, which a light
client can run alone (docs/state.md). On a chain that seals, a household's own entries
take its salt, which it derives from its key file; the leaves salted by the commune
(its euro records, the hidden aggregates) come with their salt (docs/privacy.md
"Private state leaves").
"""

from __future__ import annotations

from typing import Any

from consensus.block import Block, Header
from tokens import layout as L
from tokens.kv import decode_value
from tokens.sealing import (
    Keyring, MissingCommuneKey, get_commune_salt, get_inherited_salt, get_leaf_owner, make_kv_getter,
)
from tokens.statetree import compute_proof
from wire import MAX_BLOCK_BYTES, decode
from wire.merkle import encode_proof

MAX_PROOF_KEY_BYTES = 1024      # state keys are tens of bytes (tokens/layout.py)


class ProofPruned(Exception):
    """The state tree of that height is no longer kept here (``node run --pruning``)."""


def get_committed_root(snap: Any, height: int) -> bytes | None:
    """The state root after ``height``, as committed in the header of block height+1
    (kept as a header alone once a household node pruned the block's body)."""
    if height + 1 > snap.height():
        return None
    raw = snap.block(height + 1)
    if raw is not None:
        return decode(raw, Block, MAX_BLOCK_BYTES).header.state_hash
    header = snap.pruned_header(height + 1)
    return None if header is None else decode(header, Header, MAX_BLOCK_BYTES).state_hash


def get_proof_view(snap: Any, key: bytes, height: int | None) -> dict[str, Any] | None:
    """{height, header_height, root, key, value, proof}; None when no committed header
    carries the state root of ``height`` yet."""
    if height is None:
        height = snap.height() - 1
    if height < 0:
        return None
    if snap.is_light():
        raise ProofPruned("a household node in light mode holds no state tree: ask a validator or full node")
    if height < snap.tree_from():
        raise ProofPruned(f"the state tree of height {height} is pruned here: this node keeps it from height "
                          f"{snap.tree_from()} (node run --pruning default); ask a node run with --pruning archive")
    root = get_committed_root(snap, height)
    if root is None:
        return None
    value, proof = compute_proof(snap.state, root, key)
    return {"height": height, "header_height": height + 1, "root": root.hex(), "key": key.hex(),
            "value": None if value is None else value.hex(), "proof": encode_proof(proof).hex(), "salt": None}


def get_proof_salt(kv: Any, keys: Keyring | None, key: bytes, value: bytes) -> str | None:
    """The hex salt of the proven leaf of ``key`` holding ``value`` (raw) when the commune
    salts it (tokens/sealing.py ``get_commune_salt``), or when it is a household's leaf
    that inherits its former key's salt until the key it moved to publishes a data key
    (``get_inherited_salt``: its household cannot derive that one); None when the leaf is
    unsalted or salted with what its household derives, or when this node cannot tell
    (a chain that does not seal, no commune key here). The route gives it only to
    whoever may read the value."""
    if keys is None or kv.get(L.META_DATA_EPOCH) is None:
        return None
    get = make_kv_getter(kv)
    try:
        salt = get_commune_salt(get, keys, key, decode_value(value))
        if salt is None:
            owner = get_leaf_owner(get, key)
            salt = get_inherited_salt(get, keys, owner) if isinstance(owner, bytes) else b""
    except (MissingCommuneKey, ValueError):
        return None
    return salt.hex() if salt else None
