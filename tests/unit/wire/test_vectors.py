"""Golden vectors: bytes in, object out, and back again, for every message type."""

import json

import pytest

from tests.unit.wire.vectors import VECTORS, load_all_types, to_json
from wire import decode
from wire.limits import MAX_BLOCK_BYTES

GOLDEN = json.loads(VECTORS.read_text())


def test_every_registered_type_has_a_vector():
    missing = sorted(set(load_all_types()) - set(GOLDEN))
    assert missing == [], f"add golden vectors for {missing} (python -m tests.unit.wire.vectors)"


@pytest.mark.parametrize("tag", sorted(GOLDEN))
def test_vector_decodes_to_the_recorded_object_and_back(tag):
    data = bytes.fromhex(GOLDEN[tag]["encoded"])
    msg = decode(data, limit=MAX_BLOCK_BYTES)
    assert msg.TAG == tag
    assert to_json(msg) == GOLDEN[tag]["decoded"]
    assert msg.encode() == data


@pytest.mark.parametrize("tag", sorted(GOLDEN))
def test_vector_id_is_sha256_of_the_encoding(tag):
    import hashlib

    data = bytes.fromhex(GOLDEN[tag]["encoded"])
    assert decode(data, limit=MAX_BLOCK_BYTES).id() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("tag", sorted(GOLDEN))
def test_signing_bytes_cut_from_the_encoding_are_the_encoded_ones(tag):
    from wire import signing_bytes, slice_signing_bytes

    data = bytes.fromhex(GOLDEN[tag]["encoded"])
    msg = decode(data, limit=MAX_BLOCK_BYTES)
    assert slice_signing_bytes(b"c" * 32, msg, data) == signing_bytes(b"c" * 32, msg)


def test_signing_bytes_are_cut_for_the_sealed_envelope():
    # The envelope is the type the cut is for: it must take the fast path, not the fallback.
    from wire import registered

    assert registered()["tx/sealed"]._SIG_LAST_HEAD == bytes.fromhex(GOLDEN["tx/sealed"]["encoded"])[0]
    assert registered()["tx/sealed-cosigned"]._SIG_LAST_HEAD == 0   # its cosig is left out too
