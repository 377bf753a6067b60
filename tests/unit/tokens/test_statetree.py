"""The state tree (DESIGN §12 "Provable state", docs/state.md): incremental updates equal
a rebuild, every key has a proof that verifies, and nothing else verifies."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tokens.kv import MemoryKV
from tokens.layout import META_STATE_HASH, TREE
from tokens.statetree import (
    compute_proof, compute_tree_build, compute_tree_update, is_proven_key, iter_tree_entries,
)
from wire.merkle import EMPTY, compute_key_hash, compute_leaf_hash, encode_proof, verify_proof

KEYS = st.binary(min_size=1, max_size=6).map(lambda b: b"k/" + b)
VALUES = st.binary(max_size=12)
WRITES = st.dictionaries(KEYS, st.one_of(st.none(), VALUES), max_size=12)


class CountingKV(MemoryKV):
    """A MemoryKV that counts its point reads."""

    reads = 0

    def get(self, key: bytes) -> bytes | None:
        self.reads += 1
        return super().get(key)


def apply_blocks(blocks: list[dict[bytes, bytes | None]]) -> tuple[MemoryKV, bytes, dict[bytes, bytes]]:
    """Commit each block's writes with its new tree nodes, as apply_block's result is."""
    kv, root, state = MemoryKV(), EMPTY, {}
    for writes in blocks:
        root, nodes = compute_tree_update(kv, root, writes)
        kv.apply({**writes, **nodes})
        for key, value in writes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    return kv, root, state


@settings(max_examples=60, deadline=None)
@given(st.lists(WRITES, max_size=8))
def test_incremental_root_equals_a_rebuild(blocks):
    kv, root, state = apply_blocks(blocks)
    assert root == compute_tree_build(state.items())[0]
    assert dict(iter_tree_entries(kv, root)) == state


@settings(max_examples=40, deadline=None)
@given(st.lists(WRITES, min_size=1, max_size=6), st.lists(KEYS, max_size=8))
def test_every_key_has_a_verifying_proof(blocks, probes):
    kv, root, state = apply_blocks(blocks)
    for key in [*state, *probes]:
        value, proof = compute_proof(kv, root, key)
        assert value == state.get(key)
        assert verify_proof(root, key, value, encode_proof(proof))


@settings(max_examples=40, deadline=None)
@given(st.lists(WRITES, min_size=1, max_size=6), st.lists(KEYS, max_size=6), st.data())
def test_invalid_tampered_proofs_values_and_roots_fail(blocks, probes, data):
    kv, root, state = apply_blocks(blocks)
    for key in [*state, *probes]:
        value, proof = compute_proof(kv, root, key)
        raw = encode_proof(proof)
        other_root = bytes([root[0] ^ 1]) + root[1:]
        assert not verify_proof(other_root, key, value, raw)
        if value is None:
            assert not verify_proof(root, key, data.draw(VALUES), raw)
        else:
            assert not verify_proof(root, key, None, raw)
            assert not verify_proof(root, key, value + b"\x00", raw)
        index = data.draw(st.integers(0, len(raw) - 1))
        flipped = raw[:index] + bytes([raw[index] ^ data.draw(st.integers(1, 255))]) + raw[index + 1:]
        assert not verify_proof(root, key, value, flipped)


def test_the_tree_leaves_out_its_own_nodes_and_the_root_entry():
    items = {b"acct/a": b"1", META_STATE_HASH: b"x", TREE + bytes(32): b"y"}
    assert compute_tree_build(items.items())[0] == compute_tree_build({b"acct/a": b"1"}.items())[0]
    assert not is_proven_key(META_STATE_HASH) and not is_proven_key(TREE + b"z") and is_proven_key(b"acct/a")


def test_a_lone_entry_is_the_root_and_the_empty_tree_is_empty():
    assert compute_tree_build([])[0] == EMPTY
    root, _ = compute_tree_build([(b"a", b"1")])
    assert root == compute_leaf_hash(compute_key_hash(b"a"), compute_key_hash(b"1"))


def test_deleting_back_to_one_entry_lifts_its_leaf_to_the_root():
    kv, root, _ = apply_blocks([{b"k/%d" % i: b"v" for i in range(50)},
                                {**{b"k/%d" % i: None for i in range(1, 50)}, b"k/absent": None}])
    assert root == compute_tree_build([(b"k/0", b"v")])[0]


def test_an_update_touches_only_the_changed_paths():
    # DESIGN §4 "State hash": O(changes × depth), never a rescan. Changing one key of
    # 4 000 reads and writes about one path (≈ log2(4 000) + a few nodes).
    kv, root, _ = apply_blocks([{b"k/%d" % i: b"v" for i in range(4000)}])
    counting = CountingKV(dict(kv.items()))
    value, proof = compute_proof(kv, root, b"k/7")
    depth = len(proof.siblings)
    new_root, nodes = compute_tree_update(counting, root, {b"k/7": b"w"})
    assert new_root == compute_tree_build([*((b"k/%d" % i, b"v") for i in range(4000) if i != 7),
                                           (b"k/7", b"w")])[0]
    assert len(nodes) == depth + 1 and counting.reads <= depth + 2
    counting.reads = 0
    _, nodes = compute_tree_update(counting, root, {b"k/%d" % i: b"x" for i in range(10)})
    assert len(nodes) <= 10 * (depth + 3) and counting.reads <= 10 * (depth + 3)


def test_past_roots_stay_provable():
    kv, first, _ = apply_blocks([{b"k/a": b"1", b"k/b": b"2"}])
    second, nodes = compute_tree_update(kv, first, {b"k/a": None, b"k/c": b"3"})
    kv.apply({b"k/a": None, b"k/c": b"3", **nodes})
    old_value, old_proof = compute_proof(kv, first, b"k/a")
    new_value, new_proof = compute_proof(kv, second, b"k/a")
    assert old_value == b"1" and verify_proof(first, b"k/a", b"1", encode_proof(old_proof))
    assert new_value is None and verify_proof(second, b"k/a", None, encode_proof(new_proof))
