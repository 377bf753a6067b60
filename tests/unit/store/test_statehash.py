"""The full-rescan state hash (DESIGN §4 "State hash")."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from node.store.statehash import HASH_MODULUS, compute_entry_hash, compute_state_hash_full

entries = st.dictionaries(st.binary(max_size=12), st.binary(max_size=12), max_size=20)


def test_empty_state_hashes_to_zero():
    assert compute_state_hash_full([]) == bytes(32)


def test_one_entry_is_sha256_of_key_and_value():
    assert compute_state_hash_full([(b"k", b"v")]) == hashlib.sha256(b"kv").digest()


def test_sum_wraps_modulo_2_256():
    items = [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]
    total = sum(compute_entry_hash(k, v) for k, v in items)
    assert total >= HASH_MODULUS  # three 256-bit values almost surely overflow
    assert int.from_bytes(compute_state_hash_full(items), "big") == total % HASH_MODULUS


@given(entries)
def test_order_does_not_matter(state):
    items = sorted(state.items())
    assert compute_state_hash_full(items) == compute_state_hash_full(reversed(items))


@given(entries, st.binary(max_size=12), st.binary(max_size=12))
def test_incremental_update_matches_full_rescan(state, key, value):
    # The ledger updates the hash incrementally: minus the old entry, plus the new one.
    before = int.from_bytes(compute_state_hash_full(state.items()), "big")
    if key in state:
        before -= compute_entry_hash(key, state[key])
    after = (before + compute_entry_hash(key, value)) % HASH_MODULUS
    state[key] = value
    assert after.to_bytes(32, "big") == compute_state_hash_full(state.items())
