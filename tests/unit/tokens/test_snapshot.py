"""tokens/snapshot.py: chunking, chunk hashes, strict decoding and the rebuilt root."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from tokens.kv import decode_value, encode_value
from tokens.layout import META_STATE_HASH, TREE
from tokens.snapshot import (
    InvalidSnapshot, SnapshotMeta, compute_snapshot, compute_snapshot_state, decode_chunk, verify_chunk, verify_snapshot_header,
)
from tokens.statetree import compute_tree_build
from wire import decode


def entries(n: int) -> dict[bytes, bytes]:
    return {b"acct/" + i.to_bytes(4, "big"): encode_value([i, "x" * (i % 50)]) for i in range(n)}


def snap(n: int = 500, chunk_bytes: int = 2000):
    items = entries(n)
    root, _ = compute_tree_build(items.items())
    return items, root, compute_snapshot(7, root, items.items(), chunk_bytes)


def test_chunks_cover_every_entry_once_in_key_order_and_rebuild_the_root():
    items, root, s = snap()
    assert len(s.chunks) > 5 and s.meta.entries == len(items) and s.meta.height == 7
    keys = [k for c in s.chunks for k, _ in decode_chunk(c)]
    assert keys == sorted(items)
    state = compute_snapshot_state(s.meta, list(s.chunks))
    assert decode_value(state[META_STATE_HASH]) == root
    assert {k: v for k, v in state.items() if k.startswith(TREE)} == compute_tree_build(items.items())[1]
    assert all(state[k] == v for k, v in items.items())


def test_tree_nodes_and_the_root_entry_are_not_sent():
    items, root, _ = snap(20)
    _, nodes = compute_tree_build(items.items())
    full = {**items, **nodes, META_STATE_HASH: encode_value(root)}
    s = compute_snapshot(1, root, full.items())
    assert sum(len(decode_chunk(c)) for c in s.chunks) == 20


def test_empty_state_is_one_empty_chunk():
    root, _ = compute_tree_build([])
    s = compute_snapshot(3, root, [])
    assert len(s.chunks) == 1 and decode_chunk(s.chunks[0]) == []
    assert decode_value(compute_snapshot_state(s.meta, list(s.chunks))[META_STATE_HASH]) == root


def test_meta_round_trips_on_the_wire():
    _, _, s = snap(50)
    assert decode(s.meta.encode(), SnapshotMeta, 1 << 20) == s.meta


def test_invalid_chunk_that_does_not_hash_to_the_meta():
    _, _, s = snap()
    bad = s.chunks[1][:-1] + bytes([s.chunks[1][-1] ^ 1])
    with pytest.raises(InvalidSnapshot, match="does not hash"):
        verify_chunk(s.meta, 1, bad)
    with pytest.raises(InvalidSnapshot, match="not in a snapshot"):
        verify_chunk(s.meta, len(s.chunks), s.chunks[0])
    chunks = list(s.chunks)
    chunks[1] = bad
    with pytest.raises(InvalidSnapshot):
        compute_snapshot_state(s.meta, chunks)


def test_invalid_wrong_root_is_refused_even_with_good_chunks():
    _, _, s = snap()
    meta = dataclasses.replace(s.meta, state_root=bytes(32))
    with pytest.raises(InvalidSnapshot, match="rebuilt state root"):
        compute_snapshot_state(meta, list(s.chunks))


def test_invalid_missing_or_swapped_chunks():
    _, _, s = snap()
    with pytest.raises(InvalidSnapshot, match="chunks for a snapshot"):
        compute_snapshot_state(s.meta, list(s.chunks[:-1]))
    # A meta that lists the chunks swapped: each hashes fine, the order does not hold.
    chunks = [s.chunks[1], s.chunks[0], *s.chunks[2:]]
    meta = dataclasses.replace(s.meta, chunk_hashes=(s.meta.chunk_hashes[1], s.meta.chunk_hashes[0],
                                                      *s.meta.chunk_hashes[2:]))
    with pytest.raises(InvalidSnapshot, match="do not follow"):
        compute_snapshot_state(meta, chunks)


@pytest.mark.parametrize("payload,reason", [
    (b"\xc1", "not msgpack"),
    (msgpack.packb({"a": 1}), "not an array"),
    (msgpack.packb([[b"k", "str"]]), "pair of bytes"),
    (msgpack.packb([[b"b", b"1"], [b"a", b"2"]]), "ascending"),
    (msgpack.packb([[TREE + bytes(32), b"x"]]), "not a state entry"),
    (msgpack.packb([[META_STATE_HASH, b"x"]]), "not a state entry"),
])
def test_invalid_chunk_payloads(payload: bytes, reason: str):
    with pytest.raises(InvalidSnapshot, match=reason):
        decode_chunk(payload)


def test_invalid_header_for_another_height_or_root():
    _, root, s = snap(10)
    verify_snapshot_header(s.meta, 8, root)
    with pytest.raises(InvalidSnapshot, match="does not carry"):
        verify_snapshot_header(s.meta, 7, root)
    with pytest.raises(InvalidSnapshot, match="commits to"):
        verify_snapshot_header(s.meta, 8, bytes(32))


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.binary(min_size=1, max_size=20).map(lambda b: b"k/" + b), st.binary(max_size=300),
                       max_size=60),
       st.integers(min_value=1, max_value=4000))
def test_any_state_and_chunk_size_round_trips(items: dict[bytes, bytes], chunk_bytes: int):
    root, _ = compute_tree_build(items.items())
    s = compute_snapshot(1, root, items.items(), chunk_bytes)
    state = compute_snapshot_state(s.meta, list(s.chunks))
    assert {k: v for k, v in state.items() if k in items} == items
    assert decode_value(state[META_STATE_HASH]) == root
