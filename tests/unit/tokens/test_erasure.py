"""Erasure of a deregistered household's private data (docs/privacy.md "Erasure")."""

from __future__ import annotations

import hashlib

import pytest

from node.service.sealing import forget_erased, get_erased
from tests.unit.tokens.commune import REGISTRAR, VALIDATORS, ZERO_SIG, Chain, keypair, make_genesis
from tests.unit.tokens.membership import NEW, deregister, recover, register, rotate, state, transfer
from tests.unit.tokens.test_properties import check_conservation
from tests.unit.tokens.test_sealing import SECRET, SealChain
from tokens import InvalidLedgerBlock, InvalidTx, check_tx, get_rescanned_state_hash
from tokens import layout as L
from tokens import txs as T
from tokens.due import get_next_due_ms
from tokens.genesis import GenesisError
from tokens.ledger import Ledger
from tokens.rules_erasure import HouseholdErased, compute_key_hash
from tokens.rules_ibc import compute_receive
from tokens.sealing import compute_keyring
from wire.seal import compute_commune_public

# The interval history leaves the state before the erasure.
RETENTION = 3600
ERASE_AFTER = RETENTION + 1800
PARAMS = {"history_retention_s": RETENTION, "erasure_after_s": ERASE_AFTER}


class ErasureChain(SealChain):
    """A sealing chain whose erasure comes after ERASE_AFTER seconds."""

    def __init__(self) -> None:
        genesis, self.households = make_genesis(4, PARAMS, commune_secret=SECRET)
        Chain.__init__(self, genesis)
        self.keys = compute_keyring(self.kv, VALIDATORS[0].seed, VALIDATORS[0].public)
        self.epoch, self.counter, self.blocks = 0, 0, []
        self.public = compute_commune_public(SECRET)


@pytest.fixture
def chain() -> ErasureChain:
    c = ErasureChain()
    c.block([c.set_data_key(k) for k in c.households])
    return c


def owned_entries(chain, addr: bytes) -> list[bytes]:
    """Every state entry that names ``addr`` in its key."""
    return [key for key, _ in chain.kv.iter_prefix(b"") if addr in key and not key.startswith(L.TREE)]


def test_deregistered_household_is_erased_when_due_and_not_before(chain):
    h0, h2, h3 = chain.households[0], chain.households[2], chain.households[3]
    t0 = chain.time_s
    # h2 has readings, a settled interval, contributions, a balance, a delegation to it.
    chain.block([chain.seal(chain.inner_reading(0, 1, t0, 0, 0), h0), chain.seal(chain.inner_reading(2, 1, t0, 0, 0), h2)])
    chain.block([chain.seal(chain.inner_reading(0, 2, t0 + 600, 0, 800), h0),
                 chain.seal(chain.inner_reading(2, 2, t0 + 600, 500, 0), h2)], dt_s=600)
    chain.block(dt_s=1800 + 300)
    chain.block([chain.seal(chain.inner_transfer(0, 2, 900), h0), chain.tx(T.Delegate, h3, topic="*", to=h2.public)])
    balance = state(chain, L.key_account(h2.public))
    assert balance[0] == -500 + 900
    chain.block([deregister(chain, h2)])
    erase_at = chain.time_s + ERASE_AFTER
    assert state(chain, L.key_status(h2.public)) == [L.KS_DEREGISTERED, chain.height, erase_at]
    assert state(chain, L.key_erase_due(erase_at, h2.public)) == 1
    assert get_next_due_ms(chain.kv) <= erase_at * 1000
    treasury = state(chain, L.TREASURY)
    pooled = state(chain, L.POOL) or [0, 0, 0, [], []]

    # One second before: nothing is erased (the interval history left meanwhile).
    chain.block(at=erase_at - 1)
    assert state(chain, L.key_account(h2.public)) == balance
    assert state(chain, L.key_household_data_key(h2.public, 0)) is not None
    assert not any(isinstance(e, HouseholdErased) for e in chain.results[-1].events)
    assert get_next_due_ms(chain.kv) == erase_at * 1000

    result = chain.block(dt_s=1)
    [event] = [e for e in result.events if isinstance(e, HouseholdErased)]
    assert event.key == h2.public and (event.kwh, event.hour) == (balance[0], balance[1]) and event.entries >= 3
    # Gone: account, key status, sealed data key (and with it the salt), contributions, queue.
    assert owned_entries(chain, h2.public) == []
    assert state(chain, L.key_erased(hashlib.sha256(h2.public).digest())) == [chain.height, chain.time_s]
    assert state(chain, L.key_delegation(h3.public, "*")) == b""
    # Its balance goes to the treasury through the levy pool, counted by its key's hash
    # (docs/privacy.md "Public aggregates"): the treasury's step would be its balance.
    # Every class's supply holds, the pool counted.
    assert state(chain, L.TREASURY) == treasury
    pool = state(chain, L.POOL)
    assert pool[L.PL_LEVY] == pooled[L.PL_LEVY] + balance[0]
    assert compute_key_hash(h2.public) in pool[L.PL_PRODUCERS] and h2.public not in pool[L.PL_PRODUCERS]
    check_conservation(chain.kv)
    # The state root is the one rebuilt from the entries with the salts left.
    assert get_rescanned_state_hash(chain.kv, chain.keys) == chain.state_hash()
    assert get_next_due_ms(chain.kv) != erase_at * 1000


def test_erased_key_is_never_registered_again(chain):
    h2 = chain.households[2]
    chain.block([deregister(chain, h2)])
    chain.block(dt_s=ERASE_AFTER)
    data = register(chain, h2, 2)
    with pytest.raises(InvalidTx) as info:
        check_tx(chain.kv, chain.genesis, data, (chain.time_s + 1) * 1000, keys=chain.keys)
    assert info.value.reason == "key_erased"
    # Nor made an association's account.
    assoc = chain.tx(T.RegisterAssociation, REGISTRAR, key=h2.public, name="Les Amis")
    with pytest.raises(InvalidTx) as info:
        check_tx(chain.kv, chain.genesis, assoc, (chain.time_s + 1) * 1000, keys=chain.keys)
    assert info.value.reason == "key_erased"
    # Nor taken over by a rotation (its old signed txs would replay on a fresh nonce).
    h1 = chain.households[1]
    with pytest.raises(InvalidLedgerBlock) as block_info:
        chain.block([rotate(chain, h1, h2)])
    assert block_info.value.reason == "key_erased"


def test_registering_again_cancels_the_erasure(chain):
    h2 = chain.households[2]
    chain.block([deregister(chain, h2)])
    erase_at = chain.time_s + ERASE_AFTER
    chain.block([register(chain, h2, 2)])
    assert state(chain, L.key_erase_due(erase_at, h2.public)) is None
    chain.block(dt_s=ERASE_AFTER + 1)
    assert state(chain, L.key_household(h2.public)) is not None
    assert state(chain, L.key_household_data_key(h2.public, 0)) is not None
    assert state(chain, L.key_erased(compute_key_hash(h2.public))) is None


def test_envelope_of_an_erased_household_no_longer_opens(chain):
    h2 = chain.households[2]
    t0 = chain.time_s
    envelope = chain.seal(chain.inner_reading(2, 1, t0, 0, 0), h2)
    # The keyring opens it (and caches what it opened) while the household is there.
    check_tx(chain.kv, chain.genesis, envelope, (chain.time_s + 1) * 1000, keys=chain.keys)
    assert chain.keys.opened
    chain.block([deregister(chain, h2)])
    chain.block(dt_s=ERASE_AFTER)
    with pytest.raises(InvalidTx) as info:
        check_tx(chain.kv, chain.genesis, envelope, (chain.time_s + 1) * 1000, keys=chain.keys)
    assert info.value.reason == "household_erased" and "erased at height" in info.value.detail
    # What the node drops at the erasure's commit (node/service/sealing.py).
    assert chain.keys.forget_household(h2.public) >= 2
    assert not any(inner.signer == h2.public for inner in chain.keys.opened.values())


def test_erasure_on_a_chain_that_does_not_seal_conserves_value():
    genesis, keys = make_genesis(4, PARAMS)
    chain = Chain(genesis)
    chain.block([transfer(chain, keys[0], keys[3], 700)])
    chain.block([deregister(chain, keys[3])])
    chain.block([transfer(chain, keys[3], keys[1], 200)])    # a former household spends what it holds
    chain.block(dt_s=ERASE_AFTER)
    assert owned_entries(chain, keys[3].public) == []
    check_conservation(chain.kv)
    assert chain.state_hash() == chain.full_hash()
    # Its offers and votes went with it; a new occupant's key is unaffected.
    chain.block([register(chain, NEW, 3)])
    assert state(chain, L.key_household(NEW.public)) is not None


def test_erasure_within_the_interval_history_keeps_the_aggregate():
    # history_retention_s longer than erasure_after_s: the settled interval is still in
    # the state; the household's row goes, the interval's public aggregate stays.
    genesis, keys = make_genesis(4, {"history_retention_s": 10 * 86_400, "erasure_after_s": 3600})
    chain = Chain(genesis)
    t0 = chain.time_s
    chain.block([chain.reading(keys[0], 0, 1, t0, 0, 0), chain.reading(keys[2], 2, 1, t0, 0, 0)])
    chain.block([chain.reading(keys[0], 0, 2, t0 + 600, 0, 800), chain.reading(keys[2], 2, 2, t0 + 600, 500, 0)],
                dt_s=600)
    chain.block(dt_s=1800 + 300)
    [(ikey, iv)] = [(k, v) for k, v in chain.kv.iter_prefix(L.INTERVAL)]
    start = L.from_u64(ikey[len(L.INTERVAL):])
    assert state(chain, L.key_entry(start, keys[2].public)) is not None
    chain.block([deregister(chain, keys[2])])
    chain.block(dt_s=3600)
    assert state(chain, L.key_entry(start, keys[2].public)) is None
    assert state(chain, L.key_entry(start, keys[0].public)) is not None
    assert chain.kv.get(ikey) == iv
    assert owned_entries(chain, keys[2].public) == []
    check_conservation(chain.kv)
    assert chain.state_hash() == chain.full_hash()


def test_erasure_after_s_must_outlast_the_last_settlement():
    with pytest.raises(GenesisError, match="erasure_after_s"):
        make_genesis(2, {"erasure_after_s": 1800})
    genesis, _ = make_genesis(2)
    assert genesis.params["erasure_after_s"] == 2 * 365 * 86_400


def test_registrar_deregistering_queues_nothing_twice(chain):
    # A second Deregister of the same key is refused: one erasure per deregistration.
    h2 = chain.households[2]
    chain.block([deregister(chain, h2)])
    with pytest.raises(InvalidLedgerBlock) as info:
        chain.block([deregister(chain, h2)])
    assert info.value.reason == "unknown_household"
    assert len(list(chain.kv.iter_prefix(L.ERASE_DUE))) == 1


def test_a_transfer_from_another_commune_to_an_erased_key_is_refunded():
    genesis, keys = make_genesis(4, PARAMS)
    chain = Chain(genesis)
    packet = T.Packet(source=bytes(32), dest=genesis.chain_id, seq=1, sender=bytes(32), receiver=keys[3].public,
                      denom="kwh", amount=5, timeout_s=chain.time_s + 10 * ERASE_AFTER)

    def receive():
        return compute_receive(Ledger(chain.kv, genesis, chain.height + 1, (chain.time_s + 1) * 1000), packet)
    chain.block([deregister(chain, keys[3])])
    assert receive()[0] is True         # a former household still receives
    chain.block(dt_s=ERASE_AFTER)
    assert receive() == (False, "receiver_erased")


def test_commune_class_balances_are_written_off_their_supply():
    classes = [{"name": "recycled", "unit": "g", "issued_by": "registrar"},
               {"name": "points", "unit": "pt", "credit_limit": 50},
               {"name": "sel", "unit": "grain", "credit_limit": 200, "issued_by": "none"}]
    genesis, keys = make_genesis(4, PARAMS, classes=classes)
    chain = Chain(genesis)
    leaver = keys[3]
    chain.block([chain.registrar_tx(T.Issue, REGISTRAR, cls="recycled", to=leaver.public, amount=1000,
                                    memo="déchetterie")])
    chain.block([transfer(chain, leaver, keys[0], 150, cls="sel"), transfer(chain, leaver, keys[1], 30, cls="points"),
                 transfer(chain, leaver, keys[1], 400, cls="recycled")])
    assert state(chain, L.key_class_balance(leaver.public, "sel")) == -150
    chain.block([deregister(chain, leaver)])
    chain.block(dt_s=ERASE_AFTER)
    assert list(chain.kv.iter_prefix(L.CLASS_BALANCE + leaver.public)) == []
    assert owned_entries(chain, leaver.public) == []
    # Σ balances = csup/ per class: 600 recycled written off, a debt of 30 points and 150
    # grains of mutual credit too.
    assert state(chain, L.key_class_supply("recycled")) == 400
    assert state(chain, L.key_class_supply("points")) == 30
    assert state(chain, L.key_class_supply("sel")) == 150
    check_conservation(chain.kv)
    assert chain.state_hash() == chain.full_hash()


class MovingChain(SealChain):
    """A sealing chain whose erasure comes after ERASE_AFTER seconds and recoveries
    complete after RECOVERY_DELAY seconds."""

    def __init__(self) -> None:
        super().__init__(params=PARAMS | {"recovery_delay_s": RECOVERY_DELAY})


RECOVERY_DELAY = 600
RECOVERED = keypair("recovered-key")


def test_erasure_of_a_moved_household_takes_the_data_keys_of_its_former_keys():
    """docs/privacy.md "Moving a household to a new key": a household rotated, then
    recovered, leaves data keys under each key it held; its erasure takes them all, or
    its envelopes signed under a former key would still open (and a cut would wrap them)."""
    chain = MovingChain()
    h2 = chain.households[2]
    chain.block([chain.set_data_key(k) for k in chain.households])
    t0 = chain.time_s
    old_envelope = chain.seal(chain.inner_reading(2, 1, t0, 0, 0), h2)
    chain.block([old_envelope])
    chain.block([rotate(chain, h2, NEW)])
    chain.block([chain.set_data_key(NEW)])
    chain.block([chain.seal(T.MeterReading(signer=NEW.public, meter=f"0214{2:08d}", seq=2, t=chain.time_s,
                                           import_wh=1, export_wh=0, sig=ZERO_SIG), NEW)])
    chain.block([recover(chain, NEW, RECOVERED)])
    chain.block(dt_s=RECOVERY_DELAY)
    assert state(chain, L.key_household(RECOVERED.public)) is not None
    chain.block([chain.set_data_key(RECOVERED)])
    assert all(state(chain, L.key_household_data_key(k.public, 0)) is not None for k in (h2, NEW, RECOVERED))

    chain.block([deregister(chain, RECOVERED)])
    result = chain.block(dt_s=ERASE_AFTER)
    # No data key of any of its keys is left to open (or to wrap under a cut).
    for key in (h2, NEW, RECOVERED):
        assert list(chain.kv.iter_prefix(L.HOUSEHOLD_DATA_KEY + key.public)) == []
    [event] = [e for e in result.events if isinstance(e, HouseholdErased)]
    assert event.key == RECOVERED.public and set(event.former) == {h2.public, NEW.public}
    # The former keys keep their rotated status: they sign nothing, and are never taken again.
    assert state(chain, L.key_status(h2.public))[:2] == [L.KS_ROTATED, NEW.public]
    assert state(chain, L.key_status(NEW.public))[:2] == [L.KS_ROTATED, RECOVERED.public]
    with pytest.raises(InvalidLedgerBlock) as info:
        chain.block([rotate(chain, chain.households[1], h2)])
    assert info.value.reason == "key_rotated"
    # Their leaves lost their salt with the data keys: the root is the one rebuilt from
    # the entries, and every holder's replay from genesis reaches it.
    assert get_rescanned_state_hash(chain.kv, chain.keys) == chain.state_hash()
    assert chain.replay(compute_keyring(chain.kv, VALIDATORS[1].seed, VALIDATORS[1].public)) == chain.state_hash()
    # What the node forgets at the commit: the opened keys of every key the household held.
    assert set(get_erased(result.events)) == {RECOVERED.public, h2.public, NEW.public}
    forget_erased(chain.keys, get_erased(result.events))
    assert not any(addr in (h2.public, NEW.public, RECOVERED.public) for addr, _ in chain.keys._household)
