"""``voisinage validator rotate-data-key`` / ``cosign-data-key``: what the operators check
offline before a new commune data key reaches the chain (docs/privacy.md "Rotation")."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from node.commands.cosigned import Change, decode_change, encode_change
from node.commands.datakey import (
    build_receive_key_tx, build_rotation, check_rotation, describe, describe_identity_copies, is_fresh,
)
from node.home.homedir import is_private
from node.home.receivekeys import load_receive_keys
from node.errors import UserError
from node.meter.sealing import ChainSealing
from tokens.txs import RotateDataKey, SetReceiveKey
from wire import Keypair, verify_message
from wire.seal import (
    NO_LINK, SealError, compute_commune_public, open_commune_secret, open_link, seal_commune_secret, seal_to,
)

KEYS = [Keypair(hashlib.sha256(b"validator %d" % i).digest()) for i in range(4)]
OLD = hashlib.sha256(b"epoch 0").digest()
SEALING = ChainSealing(0, compute_commune_public(OLD))


def rotation(latest=KEYS[:3], cut_due: bool = False) -> Change:
    basis = {"latest": [k.public.hex() for k in latest], "validators": [k.public.hex() for k in KEYS], "quorum": 3,
             "cut_due": cut_due}
    own = seal_commune_secret(KEYS[0].public, OLD, bytes(32))
    tx = build_rotation(KEYS[0], basis, SEALING, own)
    return Change(bytes(32), tuple(k.public for k in KEYS), 3, tx)


def test_rotation_seals_a_new_key_to_the_latest_set_and_links_back():
    change = decode_change(encode_change(rotation()), RotateDataKey)
    tx = change.tx
    assert tx.nonce == 1 and sorted(tx.holders) == sorted(k.public for k in KEYS[:3])
    for key in KEYS[:3]:
        new = open_commune_secret(key.seed, tx.sealed[tx.holders.index(key.public)])
        assert compute_commune_public(new) == tx.public and open_link(new, tx.link) == OLD
        check_rotation(change, key, OLD)


def test_rotation_after_an_erasure_is_a_cut_that_links_back_to_nothing():
    change = decode_change(encode_change(rotation(cut_due=True)), RotateDataKey)
    assert change.tx.link == NO_LINK and "a cut" in describe(change)
    for key in KEYS[:3]:
        check_rotation(change, key, OLD)     # each co-signer checks its own copy, and no link
    assert "a cut" not in describe(rotation())


def test_invalid_cosign_by_a_validator_left_out_of_the_new_key():
    with pytest.raises(UserError, match="not among the holders"):
        check_rotation(rotation(), KEYS[3], OLD)


def test_invalid_cosign_of_a_copy_that_does_not_hold_the_announced_key():
    change = rotation()
    forged = dataclasses.replace(change.tx, public=compute_commune_public(bytes(31) + b"\x01"))
    with pytest.raises(UserError, match="announced public key"):
        check_rotation(dataclasses.replace(change, tx=forged), KEYS[1], OLD)


def test_invalid_cosign_of_a_link_that_loses_old_payloads():
    change = rotation()
    with pytest.raises(UserError, match="current commune secret"):
        check_rotation(change, KEYS[1], hashlib.sha256(b"another").digest())


def test_invalid_rotation_by_an_operator_whose_copy_does_not_open():
    basis = {"latest": [k.public.hex() for k in KEYS[:3]]}
    with pytest.raises(UserError, match="does not open"):
        build_rotation(KEYS[1], basis, SEALING, seal_commune_secret(KEYS[0].public, OLD, bytes(32)))


# -- receive keys (docs/privacy.md "Receive keys") --------------------------------------------------

RECEIVE = {k.public: hashlib.sha256(b"receive %d" % i).digest() for i, k in enumerate(KEYS)}


def published(used: int | None = None) -> dict:
    return {k.hex(): {"public": compute_commune_public(s).hex(), "used": used} for k, s in RECEIVE.items()}


def receive_rotation(cut_due: bool = False, used: int | None = None) -> Change:
    basis = {"latest": [k.public.hex() for k in KEYS[:3]], "validators": [k.public.hex() for k in KEYS],
             "quorum": 3, "cut_due": cut_due, "receive": published(used)}
    own = seal_to(compute_commune_public(RECEIVE[KEYS[0].public]), OLD, bytes(32))
    tx = build_rotation(KEYS[0], basis, SEALING, own, receive={compute_commune_public(RECEIVE[KEYS[0].public]):
                                                               RECEIVE[KEYS[0].public]})
    return Change(bytes(32), tuple(k.public for k in KEYS), 3, tx)


def own_receive(key: Keypair) -> dict[bytes, bytes]:
    return {compute_commune_public(RECEIVE[key.public]): RECEIVE[key.public]}


def test_rotation_seals_to_the_published_receive_keys_not_the_identity_keys():
    change = decode_change(encode_change(receive_rotation(cut_due=True)), RotateDataKey)
    tx = change.tx
    assert tx.receive == tuple(compute_commune_public(RECEIVE[h]) for h in tx.holders)
    assert describe_identity_copies(tx) is None
    for key in KEYS[:3]:
        with pytest.raises(SealError):
            open_commune_secret(key.seed, tx.sealed[tx.holders.index(key.public)])
        check_rotation(change, key, OLD, own_receive(key))
        # A co-signer without the receive key its copy names is told so.
        with pytest.raises(UserError, match="not among your receive keys"):
            check_rotation(change, key, OLD)


def test_invalid_cut_to_used_receive_keys():
    receive_rotation(cut_due=False, used=0)      # a linked rotation may reuse them
    with pytest.raises(UserError, match="used for epoch 0"):
        receive_rotation(cut_due=True, used=0)


def test_rotation_says_which_holders_get_their_identity_key():
    note = describe_identity_copies(rotation().tx)
    assert note is not None and note.startswith("3 holder(s) published no receive key")


def test_publish_receive_key_saves_the_key_before_signing_it(tmp_path):
    directory = tmp_path / "receive_keys"
    tx = build_receive_key_tx(KEYS[0], bytes(32), {"public": "00" * 32, "used": 3, "nonce": 9_999_999}, 5_000,
                              directory)
    assert isinstance(tx, SetReceiveKey) and tx.signer == KEYS[0].public and tx.nonce == 10_000_000
    assert verify_message(tx, bytes(32))
    held = load_receive_keys(directory)
    assert list(held) == [tx.public] and is_private(directory / f"{tx.public.hex()}.key")
    # Fresh: published, unused and held here; used or held elsewhere: not.
    entry = {"public": tx.public.hex(), "used": None, "nonce": tx.nonce}
    assert is_fresh(entry, held)
    assert not is_fresh({**entry, "used": 4}, held) and not is_fresh(entry, {}) and not is_fresh(None, held)
    assert build_receive_key_tx(KEYS[0], bytes(32), None, 5_000, directory).nonce == 5_000
