"""Strict decoding: every way to be wrong is one DecodeError with a reason."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.wire.vectors import load_all_types, sample_message
from tokens.txs import MeterReading, Transfer, decode_tx
from wire import DecodeError, Keypair, decode, sign_message, signing_bytes, verify_message
from wire.limits import MAX_TX_BYTES

CHAIN = bytes(range(32))
KEY = Keypair(b"\x07" * 32)


def signed_transfer(**kw) -> Transfer:
    fields = dict(signer=KEY.public, nonce=1, to=b"\x02" * 32, cls="kwh", amount=5, memo="pain", sig=b"")
    fields.update(kw)
    return sign_message(Transfer(**fields), CHAIN, KEY)


def raw(arr) -> bytes:
    return msgpack.packb(arr, use_bin_type=True)


def test_roundtrip_of_a_signed_transfer():
    tx = signed_transfer()
    assert decode_tx(tx.encode()) == tx
    assert verify_message(decode_tx(tx.encode()), CHAIN)


def test_invalid_signature_from_another_chain():
    assert not verify_message(signed_transfer(), bytes(32))


def test_invalid_signature_replayed_as_another_type():
    # Same fields, other type tag: the domain separation must make the signature useless.
    tx = signed_transfer()
    assert signing_bytes(CHAIN, tx) != signing_bytes(CHAIN, sample_message(MeterReading))
    arr = tx.to_array()
    arr[0] = "tx/gift"
    with pytest.raises(DecodeError):
        decode_tx(raw(arr))


def test_invalid_signature_after_tampering():
    tx = signed_transfer()
    tampered = Transfer(**{**tx.__dict__, "amount": 6})
    assert not verify_message(tampered, CHAIN)


@pytest.mark.parametrize("mutate, reason", [
    (lambda a: a + [1], "expected 7 fields"),
    (lambda a: a[:-1], "expected 7 fields"),
    (lambda a: ["tx/nope"] + a[1:], "unknown type tag"),
    (lambda a: [a[0], 2] + a[2:], "unsupported version"),
    (lambda a: a[:3] + [-1] + a[4:], "out of range"),
    (lambda a: a[:3] + [1.0] + a[4:], "expected u64"),
    (lambda a: a[:3] + [True] + a[4:], "expected u64"),
    (lambda a: a[:2] + [b"short"] + a[3:], "expected 32 bytes"),
    (lambda a: a[:2] + ["x" * 32] + a[3:], "expected bytes"),
    (lambda a: a[:5] + [b"kwh"] + a[6:], "expected str"),
    (lambda a: a[:7] + ["x" * 141] + a[8:], "exceeds 140 bytes"),
    (lambda a: {"tag": a[0]}, "max_map_len"),
    (lambda a: a[0], r"expected \[tag, version"),
])
def test_invalid_field_layouts(mutate, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_tx(raw(mutate(signed_transfer().to_array())))


@pytest.mark.parametrize("make, reason", [
    (lambda: signed_transfer().encode() + b"\x00", "extra bytes"),
    (lambda: b"\x90" * (MAX_TX_BYTES + 1), "oversize"),
    (lambda: "text", "expected bytes"),
], ids=["extra_bytes", "oversize", "not_bytes"])
def test_invalid_input(make, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_tx(make())


def test_invalid_non_canonical_integer():
    arr = signed_transfer().to_array()
    # nonce=1 is a positive fixint; the same value as uint8 (0xcc 0x01) is not canonical.
    fields = [raw(x) for x in arr]
    good = b"\x99" + b"".join(fields)
    bad = b"\x99" + b"".join(fields[:3]) + b"\xcc\x01" + b"".join(fields[4:])
    assert decode_tx(good) == signed_transfer()
    with pytest.raises(DecodeError, match="non-canonical"):
        decode_tx(bad)


def test_invalid_unexpected_type():
    with pytest.raises(DecodeError, match="unexpected message type"):
        decode(signed_transfer().encode(), expect=MeterReading)


@given(st.binary(max_size=600))
def test_random_bytes_only_raise_decode_error(data):
    try:
        decode(data)
    except DecodeError as exc:
        assert exc.reason


_msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=40)
    | st.text(max_size=20) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=10) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=30,
)


@given(st.sampled_from(sorted(load_all_types())), st.lists(_msgpack_values, max_size=12))
def test_random_arrays_with_real_tags_only_raise_decode_error(tag, fields):
    data = raw([tag, 1, *fields])
    try:
        decode(data, limit=len(data))
    except DecodeError as exc:
        assert exc.reason


@given(st.sampled_from(sorted(load_all_types())), st.integers(0, 10_000), st.integers(0, 255))
def test_mutated_valid_messages_only_raise_decode_error(tag, pos, byte):
    data = bytearray(sample_message(load_all_types()[tag]).encode())
    data[pos % len(data)] = byte
    try:
        msg = decode(bytes(data), limit=len(data))
    except DecodeError:
        return
    assert msg.encode() == bytes(data)  # anything accepted is canonical
