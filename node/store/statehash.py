"""The full-rescan state hash, for audits after a restart (DESIGN §4 "State hash").

The ledger keeps the hash incrementally; this recomputes it from scratch with the
same formula so that a reopened store can prove its state matches its stored hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

HASH_MODULUS = 2**256


def compute_entry_hash(key: bytes, value: bytes) -> int:
    """One state entry's contribution: sha256(key || value) as a 256-bit integer."""
    return int.from_bytes(hashlib.sha256(key + value).digest(), "big")


def compute_state_hash_full(items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """DESIGN §4: sum mod 2**256 of sha256(key || value) over all state entries."""
    total = 0
    for key, value in items:
        total += compute_entry_hash(key, value)
    return (total % HASH_MODULUS).to_bytes(32, "big")
