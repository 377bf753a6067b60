"""The state hash (DESIGN §4 "State hash").

hash = (Σ sha256(key ‖ value) over every state entry) mod 2²⁵⁶, as 32 big-endian
bytes. The entry ``meta/state_hash`` itself is left out (it cannot cover itself).
A sum is updated from a block's write set alone: subtract each old entry, add each
new one. It is never recomputed by a full scan, except by audits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping

from tokens.layout import META_STATE_HASH

MODULUS = 2**256


def compute_entry_hash(key: bytes, value: bytes) -> int:
    return int.from_bytes(hashlib.sha256(key + value).digest(), "big")


def compute_state_hash_items(items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Full recomputation over (key, value) pairs (audits and tests)."""
    total = 0
    for key, value in items:
        if key != META_STATE_HASH:
            total += compute_entry_hash(key, value)
    return (total % MODULUS).to_bytes(32, "big")


def compute_state_hash_update(previous: bytes, writes: Mapping[bytes, bytes | None],
                              get_old: Callable[[bytes], bytes | None]) -> bytes:
    """The hash after ``writes``: ``get_old(key)`` gives each key's committed value."""
    sha = hashlib.sha256
    total = int.from_bytes(previous, "big")
    for key, new in writes.items():
        if key == META_STATE_HASH:
            continue
        old = get_old(key)
        if old is not None:
            total -= int.from_bytes(sha(key + old).digest(), "big")
        if new is not None:
            total += int.from_bytes(sha(key + new).digest(), "big")
    return (total % MODULUS).to_bytes(32, "big")
