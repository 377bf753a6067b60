"""wire.merkle: the light client's side of the state tree. Proof decoding is strict and
bounded; ``verify_proof`` answers False, never raises, on anything hostile."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import DecodeError
from wire.merkle import (
    EMPTY, END_EMPTY, END_LEAF, END_OTHER, MAX_PROOF_BYTES, Proof, compute_internal_hash, compute_key_hash,
    compute_leaf_hash, decode_proof, encode_proof, is_prefix_shared, verify_proof,
)

H = compute_key_hash


def two_leaf_tree() -> tuple[bytes, bytes, bytes]:
    """A root over the keys b"a" and b"b" (paths differ in the first bit), and their leaves."""
    leaf_a, leaf_b = compute_leaf_hash(H(b"a"), H(b"1")), compute_leaf_hash(H(b"b"), H(b"2"))
    left, right = (leaf_a, leaf_b) if H(b"a")[0] < 0x80 else (leaf_b, leaf_a)
    assert (H(b"a")[0] < 0x80) != (H(b"b")[0] < 0x80)
    return compute_internal_hash(left, right), leaf_a, leaf_b


def test_a_hand_built_tree_proves_both_keys():
    root, leaf_a, leaf_b = two_leaf_tree()
    assert verify_proof(root, b"a", b"1", encode_proof(Proof(END_LEAF, (leaf_b,))))
    assert verify_proof(root, b"b", b"2", encode_proof(Proof(END_LEAF, (leaf_a,))))
    assert not verify_proof(root, b"a", b"2", encode_proof(Proof(END_LEAF, (leaf_b,))))


@settings(max_examples=300)
@given(st.binary(max_size=MAX_PROOF_BYTES + 8), st.binary(max_size=40), st.one_of(st.none(), st.binary(max_size=8)))
def test_invalid_random_bytes_never_crash_and_never_prove(raw, key, value):
    assert verify_proof(bytes(32), key, value, raw) in (False, True)
    try:
        proof = decode_proof(raw)
    except DecodeError:
        return
    assert encode_proof(proof) == raw     # what decodes is canonical


@pytest.mark.parametrize("raw, reason", [
    (b"", "outside"),
    (b"\x03\x00\x00", "unknown kind"),
    (b"\x00\x01\x01" + bytes(32), "depth 257"),
    (b"\x00\x00\x02\x20", "bitmap bits"),
    (b"\x00\x00\x01\x80", "expected 36"),
    (b"\x00\x00\x00" + bytes(32), "expected 3"),
    (bytes(MAX_PROOF_BYTES + 1), "outside"),
])
def test_invalid_proofs_are_refused_with_a_reason(raw, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_proof(raw)


def test_invalid_non_bytes_arguments_are_not_proofs():
    root, _, leaf_b = two_leaf_tree()
    raw = encode_proof(Proof(END_LEAF, (leaf_b,)))
    assert not verify_proof(root, b"a", b"1", bytearray(raw))
    assert not verify_proof(root[:31], b"a", b"1", raw)
    assert not verify_proof(root, "a", b"1", raw)
    assert not verify_proof(root, b"a", "1", raw)


def test_invalid_absence_by_a_leaf_off_the_path():
    # The other key's leaf must sit on the asked key's path, and must not be that key.
    root, leaf_a, leaf_b = two_leaf_tree()
    assert verify_proof(root, b"a", None, encode_proof(Proof(END_EMPTY, ()))) is False
    same = Proof(END_OTHER, (leaf_b,), H(b"a"), H(b"1"))
    assert not verify_proof(root, b"a", None, encode_proof(same))
    lone = compute_leaf_hash(H(b"a"), H(b"1"))
    assert verify_proof(lone, b"b", None, encode_proof(Proof(END_OTHER, (), H(b"a"), H(b"1"))))
    off_path = Proof(END_OTHER, (leaf_a,), H(b"b"), H(b"2"))
    assert not verify_proof(root, b"b", None, encode_proof(off_path))


def test_invalid_non_canonical_end_under_an_empty_sibling():
    leaf = compute_leaf_hash(H(b"a"), H(b"1"))
    padded = compute_internal_hash(leaf, EMPTY) if H(b"a")[0] < 0x80 else compute_internal_hash(EMPTY, leaf)
    assert not verify_proof(padded, b"a", b"1", encode_proof(Proof(END_LEAF, (EMPTY,))))


def test_empty_tree_proves_every_absence():
    assert verify_proof(EMPTY, b"anything", None, encode_proof(Proof(END_EMPTY, ())))
    assert not verify_proof(EMPTY, b"anything", b"", encode_proof(Proof(END_EMPTY, ())))


def test_prefix_sharing_counts_bits():
    assert is_prefix_shared(b"\xf0" + bytes(31), b"\xff" + bytes(31), 4)
    assert not is_prefix_shared(b"\xf0" + bytes(31), b"\xff" + bytes(31), 5)
    assert is_prefix_shared(bytes(32), bytes(32), 256)
