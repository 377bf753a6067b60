"""Sealed payloads and salted leaves (docs/privacy.md "Sealed payloads", "Private state leaves")."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from tests.unit.tokens.commune import (GENESIS_TIME, REGISTRAR, VALIDATORS, ZERO_SIG, Chain, balances, cosign, keypair,
                                      make_genesis, sign)
from tokens import InvalidLedgerBlock, InvalidTx, apply_block, check_tx, get_rescanned_state_hash
from tokens import layout as L
from tokens.indexkeys import key_by_prm_entry, key_meter_entry, key_prm_entry
from tokens import txs as T
from tokens.kv import decode_value, encode_value
from tokens.queries import get_interval_at
from tokens.lightstate import (
    InvalidProof, ProvenEntries, ProvenEntry, ProvenPrefix, get_own_salt_of, verify_entries,
)
from tokens.sealing import (
    build_commune_sealed,
    Keyring, MissingCommuneKey, build_sealed, build_set_data_key, compute_keyring, open_own_sealed,
    read_aggregate_salt,
)
from tokens.statetree import compute_proof
from wire import sign_message
from wire.merkle import encode_proof, verify_proof
from wire.seal import (
    compute_commune_public, derive_household_keys, open_commune_secret, seal_commune_secret,
    seal_link, seal_payload,
)

SECRET = hashlib.sha256(b"commune secret 0").digest()
NEWCOMER = keypair("validator", 9)


class SealChain(Chain):
    """A chain that seals payloads, applied with a validator's keyring."""

    def __init__(self, n_households: int = 4, classes: list | None = None,
                 genesis_receive: dict[bytes, bytes] | None = None, params: dict | None = None) -> None:
        genesis, self.households = make_genesis(n_households, params, commune_secret=SECRET, classes=classes,
                                                receive=genesis_receive)
        super().__init__(genesis, Keyring({0: SECRET}))
        self.keys = compute_keyring(self.kv, VALIDATORS[0].seed, VALIDATORS[0].public)
        self.epoch = 0
        self.public = compute_commune_public(SECRET)
        self.counter = 0
        self.blocks: list = []

    def block(self, txs=(), dt_s: int = 1, at: int | None = None, **kw):
        if at is not None:
            dt_s = at - self.time_s
        ctx = self.ctx(dt_s)
        result = super().block(txs, dt_s, keys=self.keys, **kw)
        self.blocks.append((ctx, list(txs)))
        return result

    def replay(self, keys: Keyring) -> bytes:
        """Every block again from genesis with ``keys``: the state hash it reaches."""
        kv = Chain(self.genesis).kv
        for ctx, txs in self.blocks:
            kv.apply(apply_block(kv, self.genesis, ctx, txs, keys=keys).writes)
        return decode_value(kv.get(L.META_STATE_HASH))

    def sealed_reading(self, i: int, seq: int, t: int, imp: int, exp: int) -> bytes:
        """Household ``i``'s reading of its genesis meter, sealed as its node sends it."""
        key = self.households[i]
        return self.seal(T.MeterReading(signer=key.public, meter=f"0214{i:08d}", seq=seq, t=t, import_wh=imp,
                                        export_wh=exp, sig=ZERO_SIG), key)

    def meter_entry(self, meter: str) -> bytes:
        """The state key of ``meter``'s index entry: a hash under the commune key here."""
        return key_meter_entry(self.get, self.keys, True, meter)

    def prm_entry(self, prm: str) -> bytes:
        return key_prm_entry(self.get, self.keys, True, prm)

    def get(self, key: bytes):
        raw = self.kv.get(key)
        return None if raw is None else decode_value(raw)

    def fresh(self, n: int) -> bytes:
        self.counter += 1
        return hashlib.sha256(b"rand%d" % self.counter).digest()[:n]

    def set_data_key(self, key, epoch=None, public=None) -> bytes:
        return build_set_data_key(key, self.genesis.chain_id, self.nonce(key), self.epoch if epoch is None else epoch,
                                  public or self.public, self.fresh(32)).encode()

    def seal(self, inner: T.Tx, key, epoch=None) -> bytes:
        return build_sealed(inner, key, self.genesis.chain_id, self.epoch if epoch is None else epoch,
                            self.fresh(24)).encode()

    def registrar_tx(self, tx_type: type[T.Tx], by, **fields) -> bytes:
        """A registrar tx of ``by`` with its next nonce, sealed to the commune key
        (``CommuneSealed``), as a sealing chain takes it."""
        inner = tx_type(signer=by.public, nonce=self.nonce(by), sig=ZERO_SIG, **fields)
        return build_commune_sealed(inner, by, self.genesis.chain_id, self.epoch, self.public, self.fresh(32)).encode()

    def inner_reading(self, i: int, seq: int, t: int, imp: int, exp: int) -> T.MeterReading:
        key = self.households[i]
        return T.MeterReading(signer=key.public, meter=f"0214{i:08d}", seq=seq, t=t, import_wh=imp, export_wh=exp,
                              sig=ZERO_SIG)

    def inner_transfer(self, i: int, to: int, amount: int, nonce: int | None = None) -> T.Transfer:
        key = self.households[i]
        return T.Transfer(signer=key.public, nonce=self.nonce(key) if nonce is None else nonce,
                          to=self.households[to].public, cls="kwh", amount=amount, memo="", sig=ZERO_SIG)

    def expect_invalid(self, data: bytes, reason: str) -> None:
        before = self.kv.items()
        with pytest.raises(InvalidTx) as info:
            check_tx(self.kv, self.genesis, data, (self.time_s + 1) * 1000, keys=self.keys)
        assert info.value.reason == reason, info.value
        with pytest.raises(InvalidLedgerBlock) as block_info:
            apply_block(self.kv, self.genesis, self.ctx(1), [data], keys=self.keys)
        assert block_info.value.reason == reason
        assert self.kv.items() == before


@pytest.fixture
def chain() -> SealChain:
    c = SealChain()
    c.block([c.set_data_key(k) for k in c.households])
    return c


def test_sealed_readings_settle_like_clear_ones(chain):
    t0 = chain.time_s
    h0, h2 = chain.households[0], chain.households[2]
    chain.block([chain.seal(chain.inner_reading(0, 1, t0, 0, 0), h0), chain.seal(chain.inner_reading(2, 1, t0, 0, 0), h2)])
    chain.block([chain.seal(chain.inner_reading(0, 2, t0 + 600, 0, 800), h0),
                 chain.seal(chain.inner_reading(2, 2, t0 + 600, 500, 0), h2)], dt_s=600)
    chain.block(dt_s=1800 + 300)     # past the interval's end and grace: it settles
    assert balances(chain, h0)[0] == 720          # 800 exported, 10 % levy
    assert balances(chain, h2)[0] == -500         # 500 imported, all matched locally
    # The state root holds: rebuilt from every entry with the salts, it is the same.
    assert get_rescanned_state_hash(chain.kv, chain.keys) == chain.state_hash()


def test_invalid_clear_household_tx_on_sealing_chain(chain):
    h0 = chain.households[0]
    chain.expect_invalid(sign(chain.inner_reading(0, 1, chain.time_s, 0, 0), chain.genesis, h0), "must_seal")
    chain.expect_invalid(sign(chain.inner_transfer(0, 1, 5), chain.genesis, h0), "must_seal")


def test_public_offer_may_stay_in_clear(chain):
    h0 = chain.households[0]
    offer = T.Offer(signer=h0.public, nonce=chain.nonce(h0), give_cls="kwh", give_amount=10, want_cls="hour",
                    want_amount=1, counterparty=None, expires=chain.time_s + 3600, sig=ZERO_SIG)
    chain.block([sign(offer, chain.genesis, h0)])
    named = dataclasses.replace(offer, nonce=chain.nonce(h0), counterparty=chain.households[1].public)
    chain.expect_invalid(sign(named, chain.genesis, h0), "must_seal")
    chain.block([chain.seal(named, h0)])
    assert len(list(chain.kv.iter_prefix(L.OFFER))) == 2


def test_sealed_transfer_moves_balances_and_household_reads_it_back(chain):
    h0, h1 = chain.households[0], chain.households[1]
    data = chain.seal(chain.inner_transfer(0, 1, 250), h0)
    chain.block([data])
    assert balances(chain, h0)[0] == -250 and balances(chain, h1)[0] == 250
    envelope = T.decode_tx(data)
    assert b"0214" not in data and open_own_sealed(h0.seed, envelope).amount == 250


def test_invalid_replayed_sealed_nonce(chain):
    data = chain.seal(chain.inner_transfer(0, 1, 10), chain.households[0])
    chain.block([data])
    chain.expect_invalid(data, "stale_nonce")


def test_invalid_seal_does_not_open(chain):
    h0 = chain.households[0]
    envelope = T.decode_tx(chain.seal(chain.inner_transfer(0, 1, 10), h0))
    box = envelope.box[:-1] + bytes([envelope.box[-1] ^ 1])
    chain.expect_invalid(sign(dataclasses.replace(envelope, box=box), chain.genesis, h0), "seal_does_not_open")


def test_invalid_payload_hash_mismatch(chain):
    h0 = chain.households[0]
    envelope = T.decode_tx(chain.seal(chain.inner_transfer(0, 1, 10), h0))
    chain.expect_invalid(sign(dataclasses.replace(envelope, mac=bytes(32)), chain.genesis, h0),
                         "payload_hash_mismatch")


def test_invalid_signer_mismatch(chain):
    h0, h1 = chain.households[0], chain.households[1]
    inner = chain.inner_transfer(1, 2, 10, nonce=5)          # h1's transfer...
    data_key, _ = derive_household_keys(h0.seed, 0)          # ...sealed and signed by h0
    mac, box = seal_payload(data_key, inner.encode(), bytes(24))
    envelope = T.Sealed(signer=h0.public, nonce=5, epoch=0, mac=mac, box=box, sig=ZERO_SIG)
    chain.expect_invalid(sign(envelope, chain.genesis, h0), "signer_mismatch")
    assert balances(chain, h1)[0] == 0


def test_invalid_nonce_mismatch(chain):
    h0 = chain.households[0]
    envelope = T.decode_tx(chain.seal(chain.inner_transfer(0, 1, 10), h0))
    chain.expect_invalid(sign(dataclasses.replace(envelope, nonce=envelope.nonce + 7), chain.genesis, h0),
                         "nonce_mismatch")


def test_invalid_wrong_epoch(chain):
    chain.expect_invalid(chain.seal(chain.inner_transfer(0, 1, 10), chain.households[0], epoch=1), "wrong_epoch")


def test_invalid_no_data_key():
    c = SealChain()
    c.expect_invalid(c.seal(c.inner_transfer(0, 1, 10), c.households[0]), "no_data_key")


def test_invalid_data_key_twice_or_not_opening():
    c = SealChain()
    h0 = c.households[0]
    c.expect_invalid(c.set_data_key(h0, public=compute_commune_public(bytes(31) + b"\x07")),
                     "data_key_does_not_open")
    c.block([c.set_data_key(h0)])
    c.expect_invalid(c.set_data_key(h0), "data_key_exists")
    c.expect_invalid(c.set_data_key(keypair("stranger")), "unknown_signer")


def test_invalid_sealing_txs_on_a_clear_chain():
    c = Chain(make_genesis(2)[0])
    key = keypair("household", 0)
    data = build_set_data_key(key, c.genesis.chain_id, 1, 0, compute_commune_public(SECRET), bytes(32)).encode()
    with pytest.raises(InvalidTx) as info:
        check_tx(c.kv, c.genesis, data, (c.time_s + 1) * 1000)
    assert info.value.reason == "sealing_off"


def test_sealed_service_still_needs_the_provider_signature(chain):
    h0, h1 = chain.households[0], chain.households[1]
    inner = T.Service(signer=h0.public, nonce=chain.nonce(h0), provider=h1.public, minutes=30, memo="",
                      provider_sig=ZERO_SIG, sig=ZERO_SIG)
    chain.expect_invalid(chain.seal(inner, h0), "bad_signature")
    signed = sign_message(inner, chain.genesis.chain_id, h1, "provider_sig")
    chain.block([chain.seal(signed, h0)])
    assert balances(chain, h1)[1] == 30


def test_a_node_without_the_commune_key_cannot_apply_nor_admit(chain):
    data = chain.seal(chain.inner_transfer(0, 1, 10), chain.households[0])
    with pytest.raises(InvalidTx) as info:
        check_tx(chain.kv, chain.genesis, data, (chain.time_s + 1) * 1000)
    assert info.value.reason == "no_commune_key"
    with pytest.raises(MissingCommuneKey):
        apply_block(chain.kv, chain.genesis, chain.ctx(1), [data])
    with pytest.raises(MissingCommuneKey):
        get_rescanned_state_hash(chain.kv)


# -- salted leaves -------------------------------------------------------------------------------

def test_salted_proofs_verify_with_the_salt_only(chain):
    h0 = chain.households[0]
    chain.block([chain.seal(chain.inner_transfer(0, 1, 10), h0)])
    chain.block()      # the header of the next block carries this root
    root = chain.state_hash()
    key = L.key_account(h0.public)
    value, proof = compute_proof(chain.kv, root, key)
    _, salt = derive_household_keys(h0.seed, 0)
    assert verify_proof(root, key, value, encode_proof(proof), salt)
    assert not verify_proof(root, key, value, encode_proof(proof))
    # A public entry still verifies without a salt.
    value, proof = compute_proof(chain.kv, root, L.TREASURY)
    assert verify_proof(root, L.TREASURY, value, encode_proof(proof))


def test_a_proof_reveals_no_neighbour_value_hash(chain):
    h0, h1 = chain.households[0], chain.households[1]
    chain.block([chain.seal(chain.inner_transfer(0, 1, 10), h0)])
    root = chain.state_hash()
    # The leaf of h1's record, as a proof of a neighbouring key would carry it: its
    # value hash is not sha256(value), so guesses of the value cannot be tested.
    neighbour = L.key_household(h1.public)
    value, proof = compute_proof(chain.kv, root, neighbour)
    assert value == chain.kv.get(neighbour)
    assert not verify_proof(root, neighbour, value, encode_proof(proof))
    assert verify_proof(root, neighbour, value, encode_proof(proof), derive_household_keys(h1.seed, 0)[1])
    assert not verify_proof(root, neighbour, value, encode_proof(proof), derive_household_keys(h0.seed, 0)[1])
    assert root == get_rescanned_state_hash(chain.kv, chain.keys)


def test_entries_from_before_the_data_key_are_salted_when_it_arrives():
    c = SealChain()
    h0 = c.households[0]
    acct = L.key_account(h0.public)
    hh = L.key_household(h0.public)
    value = c.kv.get(hh)
    c.block([c.set_data_key(h0)])
    _, salt = derive_household_keys(h0.seed, 0)
    value, proof = compute_proof(c.kv, c.state_hash(), hh)
    assert verify_proof(c.state_hash(), hh, value, encode_proof(proof), salt)
    assert c.state_hash() == get_rescanned_state_hash(c.kv, c.keys)
    assert c.kv.get(acct) is not None


def test_meter_and_prm_indexes_are_salted_with_the_household_they_name():
    # docs/privacy.md "Private state leaves": meter/ serial and prm/ PRM -> household key.
    # A neighbouring proof shows their leaf hash; unsalted, anyone who guesses a PRM (an
    # address) could confirm which household key lives there.
    c = SealChain()
    h0 = c.households[0]
    record = decode_value(c.kv.get(L.key_household(h0.public)))
    indexes = [c.meter_entry(record[L.HH_METER]), c.prm_entry(record[L.HH_PRM])]
    c.block([c.set_data_key(h0)])
    _, salt = derive_household_keys(h0.seed, 0)
    root = c.state_hash()
    for key in indexes:
        value, proof = compute_proof(c.kv, root, key)
        assert value == encode_value(h0.public)
        assert verify_proof(root, key, value, encode_proof(proof), salt)
        assert not verify_proof(root, key, value, encode_proof(proof), b"")
    assert root == get_rescanned_state_hash(c.kv, c.keys)


def test_consent_and_reconciliation_entries_are_salted_with_the_occupant():
    # docs/privacy.md "Private state leaves": cons/ and rcs/ of a delivery point, keyed by
    # its prm/ entry's tag, are the occupant's leaves. Unsalted, a neighbouring proof's
    # leaf hash of a small record (a consent's height and time) could be tested by guesses.
    from tests.unit.tokens.membership import NEXT, deregister, register
    c = SealChain()
    h0 = c.households[0]
    prm = decode_value(c.kv.get(L.key_household(h0.public)))[L.HH_PRM]
    c.block([c.set_data_key(k) for k in c.households])
    c.block([c.registrar_tx(T.Consent, REGISTRAR, prm=prm, granted=True, memo="")])
    c.block(at=GENESIS_TIME + 3600)
    c.block([c.registrar_tx(T.Reconcile, REGISTRAR, prm=prm, start=GENESIS_TIME, export_wh=(), import_wh=(100,))])
    entries = list(key_by_prm_entry(c.prm_entry(prm)))

    def check_salted(salt: bytes) -> None:
        root = c.state_hash()
        for key in entries:
            value, proof = compute_proof(c.kv, root, key)
            assert value is not None
            assert verify_proof(root, key, value, encode_proof(proof), salt)
            assert not verify_proof(root, key, value, encode_proof(proof), b"" if salt else b"x" * 32)
        assert root == get_rescanned_state_hash(c.kv, c.keys)
    check_salted(derive_household_keys(h0.seed, 0)[1])
    # The occupant moves out: nobody is at the delivery point, the entries stay, unsalted.
    c.block([deregister(c, h0)])
    check_salted(b"")
    # The next occupant: its salt once its data key is in a block.
    c.block([register(c, NEXT, 0)])
    c.block([c.set_data_key(NEXT)])
    check_salted(derive_household_keys(NEXT.seed, 0)[1])
    assert c.replay(c.keys) == c.state_hash()


def is_salted_with(c: SealChain, key: bytes, salt: bytes) -> bool:
    """Whether ``key``'s leaf in the current state is sha256(0x00 ‖ sha256(key) ‖
    sha256(salt ‖ value)): its proof, as a neighbour's proof would carry the leaf, checks
    out with ``salt`` (b"": the unsalted leaf, whose value hash is sha256(value))."""
    root = c.state_hash()
    value, proof = compute_proof(c.kv, root, key)
    assert value is not None, key
    return verify_proof(root, key, value, encode_proof(proof), salt)


def offer(c: SealChain, maker, counterparty=None, expires: int | None = None) -> T.Offer:
    return T.Offer(signer=maker.public, nonce=c.nonce(maker), give_cls="kwh", give_amount=10, want_cls="hour",
                   want_amount=1, counterparty=None if counterparty is None else counterparty.public,
                   expires=expires or c.time_s + 86_400, sig=ZERO_SIG)


def offers_of(c: SealChain, maker) -> list[bytes]:
    return [key for key, raw in c.kv.iter_prefix(L.OFFER) if decode_value(raw)[0] == maker.public]


def test_offers_are_salted_with_their_maker():
    # docs/privacy.md "Private state leaves": an offer's value names its maker, what it
    # gives and wants, and to whom. Unsalted, a neighbouring proof's leaf hash of it could
    # be tested against guesses (known household keys, small amounts).
    from tests.unit.tokens.membership import NEW, deregister, rotate
    from tests.unit.tokens.test_erasure import ERASE_AFTER, PARAMS
    c = SealChain(params=PARAMS)
    h0, h1 = c.households[0], c.households[1]
    salt0, salt1 = derive_household_keys(h0.seed, 0)[1], derive_household_keys(h1.seed, 0)[1]
    far = c.time_s + 10 * ERASE_AFTER
    # A public offer in clear, before h0 has a data key: no salt to take yet.
    c.block([sign(offer(c, h0, expires=far), c.genesis, h0)])
    [first] = offers_of(c, h0)
    assert is_salted_with(c, first, b"")
    # Its first data key: the offer's leaf is hashed anew with its salt in that block.
    c.block([c.set_data_key(k) for k in c.households])
    assert is_salted_with(c, first, salt0) and not is_salted_with(c, first, b"")
    # A sealed offer reserved for h1: salted with its maker's salt, not the counterparty's.
    c.block([c.seal(offer(c, h0, h1, expires=far), h0)])
    made = offers_of(c, h0)
    assert len(made) == 2
    for key in made:
        assert is_salted_with(c, key, salt0)
        assert not is_salted_with(c, key, b"") and not is_salted_with(c, key, salt1)
    # The expiry index holds a constant (1): nothing to guess, not salted.
    for key, _ in c.kv.iter_prefix(L.OFFER_EXPIRY):
        assert is_salted_with(c, key, b"")
    assert c.state_hash() == get_rescanned_state_hash(c.kv, c.keys)
    # A light node checks its own offer with its salt, told by its proven data key listing.
    root = c.state_hash()
    listing = ProvenPrefix(prefix=L.HOUSEHOLD_DATA_KEY + h0.public, complete=True, entries=tuple(
        proven_entry(c, root, key) for key, _ in c.kv.iter_prefix(L.HOUSEHOLD_DATA_KEY + h0.public)))
    answer = ProvenEntries(height=c.height, entries=tuple(proven_entry(c, root, key) for key in made),
                           prefixes=(listing,), refused=())
    got = verify_entries(root, c.height, made, [listing.prefix], answer, get_own_salt_of(answer, h0.public, salt0))
    assert got.values == {key: c.kv.get(key) for key in made}
    with pytest.raises(InvalidProof):
        verify_entries(root, c.height, made, [listing.prefix], answer, get_own_salt_of(answer, h1.public, salt1))
    # h0 moves to a new key: its offers stay the old key's (they lapse), and so does their
    # salt: the old key's data key stays in the state.
    c.block([rotate(c, h0, NEW)])
    c.block([c.set_data_key(NEW)])
    assert all(is_salted_with(c, key, salt0) for key in made)
    # Its erasure takes the old key's data keys: the offers' leaves lose the salt in that block.
    c.block([deregister(c, NEW)])
    c.block(dt_s=ERASE_AFTER)
    assert list(c.kv.iter_prefix(L.HOUSEHOLD_DATA_KEY + h0.public)) == []
    assert offers_of(c, h0) == made
    assert all(is_salted_with(c, key, b"") for key in made)
    assert c.state_hash() == get_rescanned_state_hash(c.kv, c.keys)
    assert c.replay(compute_keyring(c.kv, VALIDATORS[1].seed, VALIDATORS[1].public)) == c.state_hash()


def proven_entry(c: SealChain, root: bytes, key: bytes) -> ProvenEntry:
    value, proof = compute_proof(c.kv, root, key)
    return ProvenEntry(key=key, value=value, proof=encode_proof(proof))


def test_euro_records_are_salted_with_the_commune_salt_through_an_erasure_and_a_cut():
    # docs/privacy.md "Private state leaves": a payout and a debt payment name a household
    # and an amount in euros, and outlive the household's erasure (accounting): they take
    # the commune's aggregate salt, which a cut carries over (meta/aggregate_key).
    from tests.unit.tokens.membership import deregister
    from tests.unit.tokens.test_erasure import ERASE_AFTER, PARAMS
    from tests.unit.tokens.test_receive_keys import ReceiveChain, secret_of
    c = ReceiveChain(params=PARAMS)
    h0, h1, h2 = c.households[:3]
    far = c.time_s + 10 * ERASE_AFTER
    c.block([c.set_data_key(k) for k in c.households])
    c.block([c.seal(c.inner_transfer(0, 1, 500), h0)])         # h0 owes 500 Wh, h1 holds them
    c.block([c.tx(T.Redeem, h1, cls="kwh", amount=300),        # in clear: a payout owed to h1
             c.seal(offer(c, h0, expires=far), h0), c.seal(offer(c, h2, expires=far), h2)])
    [payout] = [key for key, _ in c.kv.iter_prefix(L.PAYOUT)]
    c.block([c.registrar_tx(T.PayDebt, REGISTRAR, household=h0.public, cls="kwh", cents=4, ref="VIR-1")])
    c.block([c.registrar_tx(T.MarkPaid, REGISTRAR, payout=payout[len(L.PAYOUT):], ref="VIR-2")])
    [debtpay] = [key for key, _ in c.kv.iter_prefix(L.DEBT_PAYMENT)]
    records = [payout, debtpay]
    salts = {key: read_aggregate_salt(c.get, c.keys, key) for key in records}
    assert salts[payout] != salts[debtpay]

    def check(keys: Keyring) -> None:
        for key in records:
            assert is_salted_with(c, key, salts[key]) and not is_salted_with(c, key, b"")
        assert is_salted_with(c, offers_of(c, h2)[0], derive_household_keys(h2.seed, 0)[1])
        assert c.state_hash() == get_rescanned_state_hash(c.kv, keys)
    check(c.keys)
    # The debtor moves out and is erased: its salt leaves the state, its offer with it,
    # the euro records stay, under the commune's salt.
    c.block([deregister(c, h0)])
    c.block(dt_s=ERASE_AFTER)
    assert list(c.kv.iter_prefix(L.HOUSEHOLD_DATA_KEY + h0.public)) == [] and offers_of(c, h0) == []
    assert decode_value(c.kv.get(debtpay))[L.DP_HOUSEHOLD] == h0.public
    check(c.keys)
    # The erasure makes the next rotation a cut. A node that holds only the cut epoch
    # opens the same salts (the aggregate key wrapped under it) and rebuilds the same root.
    c.block([c.set_receive_key(v) for v in VALIDATORS])
    c.commit_rotation(secret_of(1), cut=True)
    c.block([c.tx(T.Redeem, h1, cls="kwh", amount=100)])
    v0 = VALIDATORS[0]
    after_cut = compute_keyring(c.kv, v0.seed, v0.public, receive=c.receive[v0.public])
    assert after_cut.secrets == {1: secret_of(1)}
    assert {key: read_aggregate_salt(c.get, after_cut, key) for key in records} == salts
    records = [key for key, _ in c.kv.iter_prefix(L.PAYOUT)] + [debtpay]
    salts = {key: read_aggregate_salt(c.get, after_cut, key) for key in records}
    assert len(records) == 3
    check(after_cut)

# -- rotation with the validator set ---------------------------------------------------------------

def rotate(c: SealChain, new_secret: bytes, holders, signers) -> bytes:
    sealed = tuple(seal_commune_secret(k.public, new_secret, c.fresh(32)) for k in holders)
    tx = T.RotateDataKey(nonce=c.epoch + 1, public=compute_commune_public(new_secret),
                         holders=tuple(k.public for k in holders), sealed=sealed, receive=(None,) * len(holders),
                         link=seal_link(new_secret, SECRET, c.fresh(24)), sigs=())
    return cosign(c.genesis, tx, signers)


def test_rotation_with_a_validator_set_change(chain):
    h0 = chain.households[0]
    old_tx = chain.seal(chain.inner_transfer(0, 1, 10), h0)
    chain.block([old_tx])
    leaving = VALIDATORS[3]
    vsc = T.ValidatorSetChange(nonce=1, add=(NEWCOMER.public,), add_addrs=("/ip4/127.0.0.1/tcp/27009",),
                               remove=(leaving.public,), sigs=())
    chain.block([cosign(chain.genesis, vsc, VALIDATORS[:3])])
    new_secret = hashlib.sha256(b"commune secret 1").digest()
    new_set = VALIDATORS[:3] + [NEWCOMER]
    # Sealed to the old set: refused, the leaving validator would keep reading.
    chain.expect_invalid(rotate(chain, new_secret, VALIDATORS, VALIDATORS[:3]), "bad_holders")
    chain.block([rotate(chain, new_secret, new_set, VALIDATORS[:3])])
    chain.epoch, chain.public = 1, compute_commune_public(new_secret)
    assert decode_value(chain.kv.get(L.META_DATA_EPOCH)) == 1
    # The newcomer opens the new epoch, and through the link the old one.
    newcomer = compute_keyring(chain.kv, NEWCOMER.seed, NEWCOMER.public)
    assert newcomer.secrets == {0: SECRET, 1: new_secret}
    # The removed validator holds no copy of the new epoch.
    assert compute_keyring(chain.kv, leaving.seed, leaving.public).secrets == {0: SECRET}
    assert chain.kv.get(L.key_data_key_sealed(1, leaving.public)) is None
    # Old ciphertext still opens for a current validator: it replays the chain from genesis.
    assert chain.replay(newcomer) == chain.state_hash()
    # Sealing under the old epoch is now refused; households publish epoch 1 keys.
    chain.expect_invalid(chain.seal(chain.inner_transfer(0, 1, 10), h0, epoch=0), "wrong_epoch")
    chain.expect_invalid(chain.seal(chain.inner_transfer(0, 1, 10), h0), "no_data_key")
    # A staying validator's node refreshes its keyring after the rotation's block.
    assert compute_keyring(chain.kv, VALIDATORS[0].seed, VALIDATORS[0].public, chain.keys) is chain.keys
    assert sorted(chain.keys.secrets) == [0, 1]
    chain.block([chain.set_data_key(h0)])
    chain.keys = newcomer
    chain.block([chain.seal(chain.inner_transfer(0, 1, 10), h0)])
    assert balances(chain, h0)[0] == -20
    assert open_commune_secret(NEWCOMER.seed, decode_value(chain.kv.get(L.key_data_key_sealed(1, NEWCOMER.public)))) \
        == new_secret
    assert get_rescanned_state_hash(chain.kv, newcomer) == chain.state_hash()
    assert chain.replay(newcomer) == chain.state_hash()


def test_key_owner_names_the_household_of_owned_families_only():
    a = bytes(range(32))
    owned = [L.key_account(a), L.key_household(a), L.key_status(a), L.key_gift(a, bytes(32)), L.key_entry(5, a),
             L.key_contribution(a, 9), L.key_recovery_due(3, a)]
    assert [L.get_key_owner(k) for k in owned] == [a] * len(owned)
    public = [L.TREASURY, L.key_interval(5), L.key_household_data_key(a, 0), L.key_meter("021400000001"),
              L.key_account(a) + b"x", b"acct/short", b"nofamily"]
    assert [L.get_key_owner(k) for k in public] == [None] * len(public)


def test_the_same_meter_history_settles_to_the_same_figures_clear_and_sealed():
    """One seeded meter history (readings every 5 minutes, transfers between them) on a
    clear chain and on one that seals: every interval settles to the same ΣE, ΣI, M and
    levy, each household's entry and balances are the same. The e2e runs cannot show this
    (their genesis time is the wall clock's, and which readings a block takes, their
    timing); the ledger applied block by block can."""
    import random

    clear_genesis, keys = make_genesis(4)
    clear, sealed = Chain(clear_genesis), SealChain()
    assert [k.public for k in sealed.households] == [k.public for k in keys]
    assert sealed.genesis.sealing is not None and clear_genesis.sealing is None
    sealed.block([sealed.set_data_key(k) for k in keys])
    clear.block()
    rng = random.Random(7)
    counters = {i: [0, 0] for i in range(4)}        # cumulative import, export (Wh)
    t0 = clear.time_s
    for step in range(3 * 6 + 2):                    # three 30-minute intervals and their grace
        t = t0 + 300 * (step + 1)
        clear_txs, sealed_txs = [], []
        for i, key in enumerate(keys):
            counters[i][0] += rng.randrange(0, 300)
            counters[i][1] += rng.randrange(0, 450) if i < 2 else 0     # households 0 and 1 produce
            imp, exp = counters[i]
            clear_txs.append(clear.reading(key, i, step + 1, t, imp, exp))
            sealed_txs.append(sealed.seal(sealed.inner_reading(i, step + 1, t, imp, exp), key))
        if step and step % 4 == 0:
            giver, taker = rng.sample(range(4), 2)
            clear_txs.append(clear.tx(T.Transfer, keys[giver], to=keys[taker].public, cls="kwh", amount=1, memo=""))
            sealed_txs.append(sealed.seal(sealed.inner_transfer(giver, taker, 1), keys[giver]))
        clear.block(clear_txs, dt_s=300)
        sealed.block(sealed_txs, dt_s=300)
    clear.block(dt_s=1800 + 300)
    sealed.block(dt_s=1800 + 300)
    starts = sorted(L.from_u64(k[len(L.INTERVAL):]) for k, _ in clear.kv.iter_prefix(L.INTERVAL))
    assert starts == sorted(L.from_u64(k[len(L.INTERVAL):]) for k, _ in sealed.kv.iter_prefix(L.INTERVAL))
    settled = 0
    for start in starts:
        a, b = get_interval_at(clear.kv, start), get_interval_at(sealed.kv, start)
        figures = ("sum_e", "sum_i", "m", "levy", "settled")
        assert {k: a[k] for k in figures} == {k: b[k] for k in figures}, start
        assert a["households"] == b["households"], start
        settled += a["settled"]
        if a["settled"]:
            assert a["sum_e"] > 0 and a["sum_i"] > 0
    assert settled >= 3
    assert [balances(clear, k) for k in keys] == [balances(sealed, k) for k in keys]
