"""Auditors appointed by a passed proposal, sealed Reconcile, remote co-signing on a
sealing chain (docs/privacy.md "Auditors", "What is sealed")."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from tests.unit.tokens.commune import REGISTRAR, VALIDATORS, ZERO_SIG, Chain, balances, cosign, keypair, make_genesis
from tests.unit.tokens.test_sealing import SECRET, SealChain, rotate
from tokens import InvalidTx, check_tx, get_rescanned_state_hash
from tokens import layout as L
from tokens import txs as T
from tokens.kv import decode_value
from tokens.queries import get_sealing
from tokens.rules_auditors import MAX_AUDITORS_PER_PROPOSAL, AuditorProposal
from tokens.sealing import add_cosig, build_commune_sealed, build_sealed_cosigned, compute_keyring
from wire import sign_message
from wire.seal import compute_commune_public, seal_to_commune

AUDITOR = keypair("auditor", 1)
OUTSIDER = keypair("auditor", 2)
WINDOW_S = 60


def propose(c: Chain, value: str, by=None) -> bytes:
    return c.tx(T.Propose, by or c.households[0], param="auditors", value=value, voting_end=c.time_s + WINDOW_S)


def appoint(c: SealChain, add=(), remove=()) -> None:
    """A proposal every household votes yes on, tallied past its window."""
    data = propose(c, AuditorProposal(tuple(k.public for k in add), tuple(k.public for k in remove)).to_value())
    c.block([data])
    pid = T.decode_tx(data).id()
    c.block([c.tx(T.Vote, k, proposal=pid, choice="yes") for k in c.households])
    c.block(dt_s=WINDOW_S + 1)
    assert decode_value(c.kv.get(L.key_proposal(pid)))[L.P_STATUS] == "passed"


@pytest.fixture
def chain() -> SealChain:
    c = SealChain()
    c.block([c.set_data_key(k) for k in c.households])
    return c


def test_passed_proposal_appoints_an_auditor_and_the_next_rotation_seals_to_it(chain):
    h0 = chain.households[0]
    old = chain.seal(chain.inner_transfer(0, 1, 10), h0)
    chain.block([old])
    assert get_sealing(chain.kv)["rotation_due"] is False
    appoint(chain, add=[AUDITOR])
    assert decode_value(chain.kv.get(L.key_auditor(AUDITOR.public)))[0] == chain.height   # the tally block
    sealing = get_sealing(chain.kv)
    assert [a["key"] for a in sealing["auditors"]] == [AUDITOR.public.hex()] and sealing["rotation_due"] is True
    assert AUDITOR.public.hex() in sealing["next_holders"]
    # Before the rotation the auditor holds nothing.
    assert compute_keyring(chain.kv, AUDITOR.seed, AUDITOR.public).secrets == {}
    new_secret = hashlib.sha256(b"commune secret 1").digest()
    # Sealed to the validators only: refused, the auditor is a holder now.
    chain.expect_invalid(rotate(chain, new_secret, VALIDATORS, VALIDATORS[:3]), "bad_holders")
    chain.block([rotate(chain, new_secret, VALIDATORS + [AUDITOR], VALIDATORS[:3])])
    assert get_sealing(chain.kv)["rotation_due"] is False
    auditor = compute_keyring(chain.kv, AUDITOR.seed, AUDITOR.public)
    assert auditor.secrets == {0: SECRET, 1: new_secret}
    # The auditor re-checks in full: every block from genesis, opening every payload.
    assert chain.replay(auditor) == chain.state_hash()
    assert get_rescanned_state_hash(chain.kv, auditor) == chain.state_hash()
    assert compute_keyring(chain.kv, OUTSIDER.seed, OUTSIDER.public).secrets == {}


def test_removed_auditor_gets_no_copy_of_the_next_epoch(chain):
    appoint(chain, add=[AUDITOR])
    s1, s2 = (hashlib.sha256(b"commune secret %d" % i).digest() for i in (1, 2))
    chain.block([rotate(chain, s1, VALIDATORS + [AUDITOR], VALIDATORS[:3])])
    chain.epoch = 1
    appoint(chain, remove=[AUDITOR])
    assert chain.kv.get(L.key_auditor(AUDITOR.public)) is None and get_sealing(chain.kv)["rotation_due"] is True
    tx = T.RotateDataKey(nonce=2, public=compute_commune_public(s2), holders=tuple(k.public for k in VALIDATORS),
                         sealed=tuple(T.decode_tx(rotate(chain, s2, VALIDATORS, VALIDATORS)).sealed),
                         receive=(None,) * len(VALIDATORS),
                         link=T.decode_tx(rotate(chain, s2, VALIDATORS, VALIDATORS)).link, sigs=())
    chain.block([cosign(chain.genesis, tx, VALIDATORS[:3])])
    assert sorted(compute_keyring(chain.kv, AUDITOR.seed, AUDITOR.public).secrets) == [0, 1]


@pytest.mark.parametrize("value, reason", [
    ("{", "bad_value"),
    (json.dumps({"add": ["zz"]}), "bad_value"),
    (json.dumps({"add": [], "remove": []}), "bad_auditor_set"),
    (json.dumps({"add": [AUDITOR.public.hex()] * 2}), "bad_auditor_set"),
    (json.dumps({"add": [keypair("auditor", 10 + i).public.hex() for i in range(MAX_AUDITORS_PER_PROPOSAL + 1)]}),
     "bad_auditor_set"),
    (json.dumps({"remove": [AUDITOR.public.hex()]}), "unknown_auditor"),
])
def test_invalid_auditor_proposal(chain, value, reason):
    chain.expect_invalid(propose(chain, value), reason)


def test_invalid_auditor_proposal_twice_and_on_a_clear_chain(chain):
    appoint(chain, add=[AUDITOR])
    chain.expect_invalid(propose(chain, AuditorProposal((AUDITOR.public,), ()).to_value()), "already_auditor")
    genesis, households = make_genesis(4)
    clear = Chain(genesis)
    data = propose(clear, AuditorProposal((AUDITOR.public,), ()).to_value(), households[0])
    with pytest.raises(InvalidTx) as info:
        check_tx(clear.kv, clear.genesis, data, (clear.time_s + 1) * 1000)
    assert info.value.reason == "sealing_off"


# -- sealed Reconcile ---------------------------------------------------------------------------------

def reconcile_tx(chain: SealChain, i: int, start: int, export, imp, nonce: int | None = None) -> T.Reconcile:
    return T.Reconcile(signer=REGISTRAR.public, nonce=chain.nonce(REGISTRAR) if nonce is None else nonce,
                       prm=f"300000{i:08d}", start=start, export_wh=tuple(export), import_wh=tuple(imp), sig=ZERO_SIG)


def seal_registrar(chain: SealChain, inner: T.Tx, public: bytes | None = None) -> bytes:
    return build_commune_sealed(inner, REGISTRAR, chain.genesis.chain_id, chain.epoch, public or chain.public,
                                chain.fresh(32)).encode()


def test_sealed_reconcile_corrects_like_a_clear_one_and_clear_is_refused(chain):
    t0 = chain.time_s
    h0, h2 = chain.households[0], chain.households[2]
    chain.block([seal_registrar(chain, T.Consent(signer=REGISTRAR.public, nonce=chain.nonce(REGISTRAR),
                                                 prm=f"300000{i:08d}", granted=True, memo="", sig=ZERO_SIG))
                 for i in (0, 2)])
    chain.block([chain.seal(chain.inner_reading(0, 1, t0, 0, 0), h0), chain.seal(chain.inner_reading(2, 1, t0, 0, 0), h2)])
    chain.block([chain.seal(chain.inner_reading(0, 2, t0 + 600, 0, 800), h0),
                 chain.seal(chain.inner_reading(2, 2, t0 + 600, 500, 0), h2)], dt_s=600)
    chain.block(dt_s=1800 + 300)
    start = t0 - t0 % 1800
    clear = sign_message(reconcile_tx(chain, 0, start, [400], [0], nonce=chain.nonces[REGISTRAR.public] + 1),
                         chain.genesis.chain_id, REGISTRAR).encode()
    chain.expect_invalid(clear, "must_seal")
    data = seal_registrar(chain, reconcile_tx(chain, 0, start, [400], [0]))
    assert b"300000" not in data
    before = balances(chain, h0)[0]
    chain.block([data])
    assert balances(chain, h0)[0] < before
    entry = decode_value(chain.kv.get(L.key_entry(start, h0.public)))
    assert entry[L.IE_E] == 400
    assert get_rescanned_state_hash(chain.kv, chain.keys) == chain.state_hash()


def test_invalid_sealed_reconcile(chain):
    nonce = chain.nonces.get(REGISTRAR.public, 0) + 1
    inner = reconcile_tx(chain, 0, chain.time_s, [1], [0], nonce=nonce)
    good = T.decode_tx(seal_registrar(chain, inner))
    other = compute_commune_public(hashlib.sha256(b"not the commune").digest())
    chain.expect_invalid(seal_registrar(chain, inner, public=other), "seal_does_not_open")
    chain.expect_invalid(sign_message(dataclasses.replace(good, nonce=nonce + 1), chain.genesis.chain_id,
                                      REGISTRAR).encode(), "nonce_mismatch")
    chain.expect_invalid(sign_message(dataclasses.replace(good, epoch=1), chain.genesis.chain_id,
                                      REGISTRAR).encode(), "wrong_epoch")
    # A household tx boxed to the commune is not a registrar tx it may carry.
    transfer = chain.inner_transfer(0, 1, 5, nonce=1)
    box = seal_to_commune(chain.public, transfer.encode(), chain.fresh(32))
    bad = T.CommuneSealed(signer=chain.households[0].public, nonce=1, epoch=0, box=box, sig=ZERO_SIG)
    chain.expect_invalid(sign_message(bad, chain.genesis.chain_id, chain.households[0]).encode(), "malformed_payload")


def test_invalid_sealed_reconcile_on_a_clear_chain():
    genesis, _ = make_genesis(2)
    clear = Chain(genesis)
    inner = T.Reconcile(signer=REGISTRAR.public, nonce=1, prm="30000000000000", start=0, export_wh=(1,),
                        import_wh=(0,), sig=ZERO_SIG)
    data = build_commune_sealed(inner, REGISTRAR, genesis.chain_id, 0, compute_commune_public(SECRET),
                                bytes(32)).encode()
    with pytest.raises(InvalidTx) as info:
        check_tx(clear.kv, clear.genesis, data, (clear.time_s + 1) * 1000)
    assert info.value.reason == "sealing_off"


# -- remote co-signing on a sealing chain -------------------------------------------------------------

def half_sealed(chain: SealChain, minutes: int = 30, provider=None):
    h0, h1 = chain.households[0], provider or chain.households[1]
    inner = T.Service(signer=h0.public, nonce=chain.nonce(h0), provider=h1.public, minutes=minutes, memo="",
                      provider_sig=ZERO_SIG, sig=ZERO_SIG)
    inner = sign_message(inner, chain.genesis.chain_id, h0)
    return inner, build_sealed_cosigned(inner, h0, chain.genesis.chain_id, chain.epoch, chain.fresh(24))


def test_provider_cosigns_the_sealed_service_on_its_own_machine(chain):
    h1 = chain.households[1]
    inner, envelope = half_sealed(chain)
    # The beneficiary's half alone does not apply: the co-signature is missing.
    chain.expect_invalid(envelope.encode(), "cosig_does_not_open")
    done = add_cosig(envelope, inner, h1, chain.genesis.chain_id, chain.public, chain.fresh(32))
    data = done.encode()
    assert h1.public not in data and envelope.sig == done.sig
    chain.block([data])
    assert balances(chain, h1)[1] == 30


def test_invalid_cosig(chain):
    h1, h2 = chain.households[1], chain.households[2]
    inner, envelope = half_sealed(chain)
    # Another household's signature, or one over another service, does not verify.
    wrong_key = add_cosig(envelope, inner, h2, chain.genesis.chain_id, chain.public, chain.fresh(32))
    chain.expect_invalid(wrong_key.encode(), "bad_signature")
    other = dataclasses.replace(inner, minutes=600)
    wrong_tx = add_cosig(envelope, other, h1, chain.genesis.chain_id, chain.public, chain.fresh(32))
    chain.expect_invalid(wrong_tx.encode(), "bad_signature")
    # Sealed to another key: it does not open.
    stranger = compute_commune_public(hashlib.sha256(b"x").digest())
    chain.expect_invalid(add_cosig(envelope, inner, h1, chain.genesis.chain_id, stranger, chain.fresh(32)).encode(),
                         "cosig_does_not_open")
    # A transfer has no second signer: it is sealed as tx/sealed.
    transfer = chain.inner_transfer(0, 1, 5, nonce=inner.nonce)
    env = build_sealed_cosigned(transfer, chain.households[0], chain.genesis.chain_id, 0, chain.fresh(24))
    chain.expect_invalid(add_cosig(env, transfer, h1, chain.genesis.chain_id, chain.public, chain.fresh(32)).encode(),
                         "not_cosigned")
