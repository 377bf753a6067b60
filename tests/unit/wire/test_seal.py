"""wire.seal: sealed boxes as libsodium makes them, data keys, payload boxes and links."""

from __future__ import annotations

import hashlib

import nacl.public
import pytest

from wire import Keypair
from wire.seal import (
    AGGREGATE_LABEL, LINK_LEN, NO_LINK, PAD, SEALED_DATA_KEY_LEN, SEALED_SECRET_LEN, SealError, compute_commune_public, compute_payload_mac,
    compute_wrap_label,
    derive_household_keys, open_commune_secret, open_data_key, open_link, open_payload, open_sealed, pad,
    seal_commune_secret, seal_data_key, seal_link, seal_payload, seal_to, unpad, unwrap_under_cut, wrap_under_cut,
)

SECRET = hashlib.sha256(b"commune").digest()
VALIDATOR = Keypair(hashlib.sha256(b"validator").digest())
HOUSEHOLD = Keypair(hashlib.sha256(b"household").digest())


def test_seal_to_is_libsodiums_sealed_box():
    sealed = seal_to(compute_commune_public(SECRET), b"bonjour", bytes(32))
    assert nacl.public.SealedBox(nacl.public.PrivateKey(SECRET)).decrypt(sealed) == b"bonjour"
    theirs = nacl.public.SealedBox(nacl.public.PrivateKey(SECRET).public_key).encrypt(b"salut")
    assert open_sealed(SECRET, theirs) == b"salut"
    # Deterministic from the ephemeral seed: a known answer.
    assert sealed == seal_to(compute_commune_public(SECRET), b"bonjour", bytes(32))


def test_commune_secret_opens_only_with_the_validators_key():
    sealed = seal_commune_secret(VALIDATOR.public, SECRET, bytes(range(32)))
    assert len(sealed) == SEALED_SECRET_LEN
    assert open_commune_secret(VALIDATOR.seed, sealed) == SECRET
    with pytest.raises(SealError):
        open_commune_secret(HOUSEHOLD.seed, sealed)


def test_household_keys_come_from_the_seed_and_the_salt_stays():
    k0, s0 = derive_household_keys(HOUSEHOLD.seed, 0)
    k1, s1 = derive_household_keys(HOUSEHOLD.seed, 1)
    assert k0 != k1 and s0 == s1 and len(k0) == len(s0) == 32
    assert derive_household_keys(VALIDATOR.seed, 0)[1] != s0
    sealed = seal_data_key(compute_commune_public(SECRET), k0, s0, bytes(32))
    assert len(sealed) == SEALED_DATA_KEY_LEN and open_data_key(SECRET, sealed) == (k0, s0)


def test_payload_box_pads_and_checks():
    key, _ = derive_household_keys(HOUSEHOLD.seed, 0)
    mac, box = seal_payload(key, b"x" * 70, bytes(24))
    assert (len(box) - 24 - 16) % PAD == 0
    assert open_payload(key, box) == b"x" * 70 and mac == compute_payload_mac(key, b"x" * 70)
    assert compute_payload_mac(derive_household_keys(VALIDATOR.seed, 0)[0], b"x" * 70) != mac
    with pytest.raises(SealError):
        open_payload(derive_household_keys(HOUSEHOLD.seed, 1)[0], box)
    with pytest.raises(SealError):
        open_payload(key, box[:-1] + bytes([box[-1] ^ 1]))
    with pytest.raises(SealError):
        open_payload(key, b"short")


@pytest.mark.parametrize("payload", [b"", b"\x80", b"a" * 63, b"a" * 64, b"\x00\x80"])
def test_pad_round_trips(payload):
    assert unpad(pad(payload)) == payload and len(pad(payload)) % PAD == 0


@pytest.mark.parametrize("bad", [b"", bytes(64), b"a" * 64, b"\x80" + bytes(62)])
def test_invalid_padding(bad):
    with pytest.raises(SealError):
        unpad(bad)


def test_link_walks_back_only():
    new = hashlib.sha256(b"next").digest()
    link = seal_link(new, SECRET, bytes(24))
    assert len(link) == LINK_LEN and open_link(new, link) == SECRET
    with pytest.raises(SealError):
        open_link(SECRET, link)


def test_cut_wrap_is_deterministic_and_opens_only_under_its_epoch_and_label():
    cut = hashlib.sha256(b"cut epoch").digest()
    addr = bytes(range(32))
    label = compute_wrap_label(addr, 3)
    wrapped = wrap_under_cut(cut, label, b"k" * 64)
    assert wrapped == wrap_under_cut(cut, label, b"k" * 64)      # every holder writes the same bytes
    assert unwrap_under_cut(cut, label, wrapped) == b"k" * 64
    for secret, other in ((SECRET, label), (cut, compute_wrap_label(addr, 2)), (cut, AGGREGATE_LABEL)):
        with pytest.raises(SealError):
            unwrap_under_cut(secret, other, wrapped)


def test_invalid_link_of_a_cut_opens_nothing():
    with pytest.raises(SealError):
        open_link(SECRET, NO_LINK)
