"""Receive keys: the commune data key's copies sealed to keys the holders delete at a cut
(docs/privacy.md "Receive keys")."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.unit.tokens.commune import VALIDATORS, ZERO_SIG, Chain, cosign, make_genesis, make_genesis_doc, sign
from tests.unit.tokens.test_sealing import SECRET, SealChain
from tokens import InvalidTx, check_tx
from tokens import txs as T
from tokens.genesis import GenesisError, parse_genesis
from tokens.queries import get_sealing
from tokens.sealing import Keyring, compute_genesis_keyring, compute_keyring, read_receive_keys, seal_to_holders
from wire.seal import NO_LINK, compute_commune_public, compute_x25519_public, seal_link


def new_receive_key() -> tuple[bytes, bytes]:
    """(public, secret) of a fresh X25519 receive key."""
    secret = os.urandom(32)
    return compute_commune_public(secret), secret


class ReceiveChain(SealChain):
    """A sealing chain whose validators keep receive keys, as their nodes do."""

    def __init__(self, genesis_receive: bool = True, params: dict | None = None) -> None:
        self.receive = {v.public: dict([new_receive_key()]) for v in VALIDATORS}
        super().__init__(genesis_receive={v: next(iter(keys)) for v, keys in self.receive.items()}
                         if genesis_receive else None, params=params)
        self.keys = compute_keyring(self.kv, VALIDATORS[0].seed, VALIDATORS[0].public,
                                    receive=self.receive[VALIDATORS[0].public])
        self.rk_nonce = 0

    def set_receive_key(self, holder, public: bytes | None = None, signer=None) -> bytes:
        if public is None:
            public, secret = new_receive_key()
            self.receive[holder.public][public] = secret
            if holder.public == self.keys.holder[1]:       # as the node adds the key it made
                self.keys.receive[public] = secret
        self.rk_nonce += 1
        tx = T.SetReceiveKey(signer=holder.public, nonce=self.rk_nonce, public=public, sig=ZERO_SIG)
        return sign(tx, self.genesis, signer or holder)

    def rotation(self, new_secret: bytes, cut: bool, receive: dict | None = None) -> bytes:
        holders = tuple(v.public for v in VALIDATORS)
        published = {h: rec[0] for h, rec in read_receive_keys(self.kv).items()} if receive is None else receive
        sealed, named = seal_to_holders(holders, published, new_secret, [self.fresh(32) for _ in holders])
        link = NO_LINK if cut else seal_link(new_secret, self.keys.secrets[self.epoch], self.fresh(24))
        tx = T.RotateDataKey(nonce=self.epoch + 1, public=compute_commune_public(new_secret), holders=holders,
                             sealed=sealed, receive=named, link=link, sigs=())
        return cosign(self.genesis, tx, VALIDATORS[:3])

    def commit_rotation(self, new_secret: bytes, cut: bool) -> None:
        self.block([self.rotation(new_secret, cut)])
        self.epoch, self.public = self.epoch + 1, compute_commune_public(new_secret)


def secret_of(n: int) -> bytes:
    return hashlib.sha256(b"commune secret %d" % n).digest()


def test_genesis_seals_epoch_0_to_the_receive_keys():
    c = ReceiveChain()
    v0 = VALIDATORS[0]
    assert c.keys.secrets == {0: SECRET}
    # The identity key alone no longer opens epoch 0: not from the state, not from genesis.json.
    assert compute_keyring(c.kv, v0.seed, v0.public).secrets == {}
    assert compute_genesis_keyring(c.genesis, v0.seed, v0.public).secrets == {}
    assert compute_genesis_keyring(c.genesis, v0.seed, v0.public, c.receive[v0.public]).secrets == {0: SECRET}
    receive = read_receive_keys(c.kv)
    assert receive[v0.public] == (next(iter(c.receive[v0.public])), 0)     # published, used by epoch 0
    assert get_sealing(c.kv)["receive"][v0.public.hex()]["used"] == 0


def test_a_rotation_seals_to_the_published_receive_keys():
    c = ReceiveChain()
    c.block([c.set_receive_key(v) for v in VALIDATORS])
    assert all(used is None for _, used in read_receive_keys(c.kv).values())
    # Sealed to the identity keys while receive keys are published: refused.
    c.expect_invalid(c.rotation(secret_of(1), cut=False, receive={}), "wrong_receive_key")
    c.commit_rotation(secret_of(1), cut=False)
    assert all(used == 1 for _, used in read_receive_keys(c.kv).values())
    v1 = VALIDATORS[1]
    assert compute_keyring(c.kv, v1.seed, v1.public, receive=c.receive[v1.public]).secrets == {0: SECRET,
                                                                                               1: secret_of(1)}
    assert compute_keyring(c.kv, v1.seed, v1.public).secrets == {}


def test_invalid_cut_to_a_used_receive_key():
    c = ReceiveChain()
    # Every validator's key was used by epoch 0 (genesis): a cut to them is refused.
    c.expect_invalid(c.rotation(secret_of(1), cut=True), "stale_receive_key")
    # ... and so while one validator's key is still the used one.
    c.block([c.set_receive_key(v) for v in VALIDATORS[:3]])
    c.expect_invalid(c.rotation(secret_of(1), cut=True), "stale_receive_key")
    c.block([c.set_receive_key(VALIDATORS[3])])
    c.commit_rotation(secret_of(1), cut=True)
    # The cut epoch opens with the fresh keys alone; the keyring tells which keys opened what.
    v0 = VALIDATORS[0]
    keys = compute_keyring(c.kv, v0.seed, v0.public, receive=c.receive[v0.public])
    assert keys.secrets == {1: secret_of(1)}
    genesis_key = next(iter(c.receive[v0.public]))
    assert sorted(keys.receive_used.values()) == [1] and genesis_key not in keys.receive_used


def test_cut_opens_while_applying_with_the_receive_key():
    c = ReceiveChain()
    genesis_key = next(iter(c.receive[VALIDATORS[0].public]))
    c.block([c.set_receive_key(v) for v in VALIDATORS])
    fresh = [p for p in c.receive[VALIDATORS[0].public] if p != genesis_key]
    c.commit_rotation(secret_of(1), cut=True)
    c.keys = compute_keyring(c.kv, VALIDATORS[0].seed, VALIDATORS[0].public, c.keys)
    assert sorted(c.keys.secrets) == [0, 1]
    assert c.keys.receive_used == {genesis_key: 0, fresh[0]: 1}
    # What the node deletes at the cut: the older epochs, and the receive key they went to.
    assert c.keys.forget_before(1) == [0]
    assert c.keys.forget_receive_before(1) == [genesis_key]
    assert list(c.keys.receive) == fresh
    # A node without the receive key its copy names cannot compute the cut's state.
    lacking = Keyring(holder=(VALIDATORS[1].seed, VALIDATORS[1].public))
    assert compute_keyring(c.kv, VALIDATORS[1].seed, VALIDATORS[1].public, lacking).secrets == {}


def test_invalid_set_receive_key():
    c = ReceiveChain()
    v0, household = VALIDATORS[0], c.households[0]
    public, _ = new_receive_key()
    # Signed by another key than the holder it names: the signature does not verify.
    c.expect_invalid(c.set_receive_key(v0, public, signer=VALIDATORS[1]), "bad_signature")
    # A household is no holder.
    c.expect_invalid(sign(T.SetReceiveKey(signer=household.public, nonce=1, public=public, sig=ZERO_SIG),
                          c.genesis, household), "not_a_holder")
    c.expect_invalid(c.set_receive_key(v0, bytes(32)), "bad_receive_key")
    c.expect_invalid(c.set_receive_key(v0, compute_x25519_public(v0.public)), "bad_receive_key")
    c.expect_invalid(c.set_receive_key(v0, next(iter(c.receive[v0.public]))), "receive_key_exists")
    c.block([c.set_receive_key(v0, public)])
    again = T.SetReceiveKey(signer=v0.public, nonce=c.rk_nonce, public=new_receive_key()[0], sig=ZERO_SIG)
    c.expect_invalid(sign(again, c.genesis, v0), "stale_nonce")


def test_invalid_set_receive_key_on_a_chain_that_does_not_seal():
    c = Chain(make_genesis(2)[0])
    tx = T.SetReceiveKey(signer=VALIDATORS[0].public, nonce=1, public=new_receive_key()[0], sig=ZERO_SIG)
    with pytest.raises(InvalidTx) as info:
        check_tx(c.kv, c.genesis, sign(tx, c.genesis, VALIDATORS[0]), (c.time_s + 1) * 1000)
    assert info.value.reason == "sealing_off"


def test_identity_copies_where_no_receive_key_is_published():
    # A chain whose genesis names none (made before receive keys): copies go to the
    # identity keys until a holder publishes one, and a cut may still seal to them.
    c = ReceiveChain(genesis_receive=False)
    assert read_receive_keys(c.kv) == {}
    c.block([c.set_receive_key(VALIDATORS[0])])
    c.commit_rotation(secret_of(1), cut=True)
    tx = T.decode_tx(c.blocks[-1][1][0])
    assert [r is None for r in tx.receive] == [h != VALIDATORS[0].public for h in tx.holders]
    v2 = VALIDATORS[2]
    assert compute_keyring(c.kv, v2.seed, v2.public).secrets == {1: secret_of(1)}


@pytest.mark.parametrize("receive, error", [
    ("x", "sealing.receive: expected"),
    ({"00" * 32: "11" * 32}, "not a genesis validator's key"),
    ({VALIDATORS[0].public.hex(): "zz"}, "expected a 64-character lowercase hex key"),
    ({VALIDATORS[0].public.hex(): "00" * 32}, "32 zero bytes"),
])
def test_invalid_genesis_receive(receive, error):
    doc, _ = make_genesis_doc(1, commune_secret=SECRET)
    doc["sealing"]["receive"] = receive
    with pytest.raises(GenesisError, match=error):
        parse_genesis(json.dumps(doc).encode())
