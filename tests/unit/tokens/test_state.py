"""apply_block, check_tx, select_txs, genesis state and the state hash."""

from __future__ import annotations

import hashlib
import inspect

import pytest

from tests.unit.tokens.commune import REGISTRAR, VALIDATORS, ZERO_SIG, Chain, balances, keypair, make_genesis, sign
from tokens import (
    BlockContext, InvalidLedgerBlock, InvalidTx, MemoryKV, apply_block, check_tx, get_rescanned_state_hash,
    genesis_writes, get_account, get_funds, get_height, get_params, get_state_hash, get_time_ms, get_treasury, select_txs,
)
from tokens import txs as T
from tokens.kv import decode_value
from tokens.state import HANDLERS
from wire import DecodeError, compute_id


@pytest.fixture
def setup():
    genesis, keys = make_genesis(4)
    return Chain(genesis), keys


def transfer(chain, key, to, amount=10, nonce=None, cls="hour"):
    fields = {} if nonce is None else {"nonce": nonce}
    return chain.tx(T.Transfer, key, to=to.public, cls=cls, amount=amount, memo="", **fields)


# --- genesis ------------------------------------------------------------------------


def test_genesis_state_holds_households_funds_params_and_its_hash(setup):
    chain, keys = setup
    assert get_height(chain.kv) == 0 and get_time_ms(chain.kv) == chain.genesis.genesis_time * 1000
    assert get_account(chain.kv, keys[3].public)["household"]["meter"] == "021400000003"
    assert get_account(chain.kv, REGISTRAR.public)["registrar"]
    assert set(get_funds(chain.kv)) == {"pensions", "energy", "roads", "startups", "canteen", "security"}
    assert get_params(chain.kv) == chain.genesis.params
    assert get_treasury(chain.kv) == {"kwh": 0, "hour": 0}
    assert get_state_hash(chain.kv) == get_rescanned_state_hash(chain.kv)


def test_genesis_writes_are_deterministic_and_commune_specific():
    g1, _ = make_genesis(3)
    g2, _ = make_genesis(4)
    assert genesis_writes(g1) == genesis_writes(g1)
    assert get_state_hash(MemoryKV(genesis_writes(g1))) != get_state_hash(MemoryKV(genesis_writes(g2)))


# --- apply_block --------------------------------------------------------------------


def test_block_result_lists_tx_ids_and_changes(setup):
    chain, keys = setup
    data = transfer(chain, keys[0], keys[1])
    result = chain.block([data])
    assert result.tx_ids == [hashlib.sha256(data).digest()]
    assert decode_value(result.writes[b"meta/height"]) == 1
    assert decode_value(result.writes[b"meta/state_hash"]) == result.state_hash == chain.state_hash()


def test_invalid_block_bad_height(setup):
    chain, _ = setup
    with pytest.raises(InvalidLedgerBlock) as info:
        apply_block(chain.kv, chain.genesis, BlockContext(2, (chain.time_s + 1) * 1000, b""), [])
    assert info.value.reason == "bad_height" and info.value.index is None


def test_invalid_block_time_not_rising(setup):
    chain, _ = setup
    chain.block(dt_s=5)
    with pytest.raises(InvalidLedgerBlock) as info:
        apply_block(chain.kv, chain.genesis, BlockContext(2, chain.time_s * 1000, b""), [])
    assert info.value.reason == "time_not_rising"


def test_invalid_block_on_empty_state(setup):
    chain, _ = setup
    with pytest.raises(InvalidLedgerBlock) as info:
        apply_block(MemoryKV(), chain.genesis, chain.ctx(), [])
    assert info.value.reason == "no_state"


def test_invalid_block_too_many_txs():
    genesis, keys = make_genesis(2, {"block_max_txs": 2})
    chain = Chain(genesis)
    txs = [transfer(chain, keys[0], keys[1]) for _ in range(3)]
    with pytest.raises(InvalidLedgerBlock) as info:
        apply_block(chain.kv, genesis, chain.ctx(), txs)
    assert info.value.reason == "too_many_txs"


@pytest.mark.parametrize("garbage", [b"", b"\x93\x01\x02\x03", b"\xc1", "not bytes", b"\x92\xaatx/reading\x01"])
def test_invalid_block_with_malformed_tx_leaves_state_untouched(setup, garbage):
    chain, keys = setup
    before = chain.kv.items()
    good = transfer(chain, keys[0], keys[1])
    with pytest.raises(InvalidLedgerBlock) as info:
        apply_block(chain.kv, chain.genesis, chain.ctx(), [good, garbage])
    assert info.value.reason == "malformed" and info.value.index == 1
    assert chain.kv.items() == before


def test_one_invalid_tx_refuses_the_whole_block(setup):
    chain, keys = setup
    before = chain.kv.items()
    txs = [transfer(chain, keys[0], keys[1]), transfer(chain, keys[1], keys[2]),
           transfer(chain, keys[2], keys[3], amount=10**6)]
    with pytest.raises(InvalidLedgerBlock) as info:
        apply_block(chain.kv, chain.genesis, chain.ctx(), txs)
    assert (info.value.reason, info.value.index) == ("over_credit_limit", 2)
    assert "tx 2" in str(info.value)
    assert chain.kv.items() == before


def test_verified_ids_skip_signature_checks(setup):
    chain, keys = setup
    tx = T.Transfer(signer=keys[0].public, nonce=1, to=keys[1].public, cls="hour", amount=5, memo="", sig=ZERO_SIG)
    data = tx.encode()
    with pytest.raises(InvalidLedgerBlock):
        apply_block(chain.kv, chain.genesis, chain.ctx(), [data])
    chain.block([data], verified={compute_id(data)})
    assert balances(chain, keys[1])[1] == 5


def test_verified_dict_of_decoded_txs_is_neither_decoded_nor_verified_again(setup, monkeypatch):
    chain, keys = setup
    data = transfer(chain, keys[0], keys[1], amount=7)
    known = {compute_id(data): T.decode_tx(data)}

    def refuse(_data):
        raise AssertionError("decoded again")

    monkeypatch.setattr("tokens.state.decode_tx", refuse)
    chain.block([data], verified=known)
    assert balances(chain, keys[1])[1] == 7


# --- check_tx -----------------------------------------------------------------------


def test_check_tx_returns_the_decoded_tx(setup):
    chain, keys = setup
    tx = check_tx(chain.kv, chain.genesis, transfer(chain, keys[0], keys[1]), (chain.time_s + 1) * 1000)
    assert isinstance(tx, T.Transfer) and tx.amount == 10


def test_invalid_check_tx_malformed_is_a_decode_error(setup):
    chain, _ = setup
    with pytest.raises(DecodeError):
        check_tx(chain.kv, chain.genesis, b"\x00garbage", chain.time_s * 1000)


def test_check_tx_verified_skips_the_signature(setup):
    chain, keys = setup
    data = T.Transfer(signer=keys[0].public, nonce=1, to=keys[1].public, cls="hour", amount=5, memo="",
                      sig=ZERO_SIG).encode()
    with pytest.raises(InvalidTx) as info:
        check_tx(chain.kv, chain.genesis, data, chain.time_s * 1000)
    assert info.value.reason == "bad_signature"
    assert check_tx(chain.kv, chain.genesis, data, chain.time_s * 1000, verified=True).amount == 5


def test_check_tx_never_writes(setup):
    chain, keys = setup
    before = chain.kv.items()
    check_tx(chain.kv, chain.genesis, transfer(chain, keys[0], keys[1]), chain.time_s * 1000)
    assert chain.kv.items() == before


# --- select_txs ---------------------------------------------------------------------


def test_select_txs_keeps_valid_ones_in_order_and_explains_the_rest(setup):
    chain, keys = setup
    a = transfer(chain, keys[0], keys[1], nonce=1)
    replay = transfer(chain, keys[0], keys[2], nonce=1)           # same nonce: valid alone, not after a
    too_much = transfer(chain, keys[1], keys[2], amount=10**6)
    b = transfer(chain, keys[2], keys[3])
    garbage = b"\x01"
    ctx = chain.ctx()
    kept, rejected = select_txs(chain.kv, chain.genesis, ctx, [a, replay, too_much, garbage, b], 100)
    assert kept == [a, b]
    assert [(data, exc.reason) for data, exc in rejected] == [
        (replay, "stale_nonce"), (too_much, "over_credit_limit"), (garbage, "malformed")]
    # The selection applies as a block with the same outcome.
    chain.block(kept)
    assert balances(chain, keys[1])[1] == 10 and balances(chain, keys[3])[1] == 10


def test_select_txs_stops_at_max_txs(setup):
    chain, keys = setup
    txs = [transfer(chain, keys[0], keys[1]) for _ in range(5)]
    kept, rejected = select_txs(chain.kv, chain.genesis, chain.ctx(), txs, 3)
    assert kept == txs[:3] and rejected == []


def test_select_txs_with_a_refused_tx_gives_the_same_state_as_without_it(setup):
    chain, keys = setup
    other = Chain(chain.genesis)
    good = transfer(chain, keys[0], keys[1], nonce=1)
    bad_gift = chain.tx(T.StandingGift, keys[2], beneficiary=keys[3].public, bp=20_000, until=chain.time_s + 99)
    kept, _ = select_txs(chain.kv, chain.genesis, chain.ctx(), [bad_gift, good], 10)
    assert kept == [good]
    assert chain.block(kept).state_hash == other.block([good]).state_hash


# --- state hash ---------------------------------------------------------------------


def test_incremental_hash_matches_full_recomputation_over_many_blocks(setup):
    chain, keys = setup
    t0 = chain.time_s
    chain.block([chain.reading(k, i, 1, t0 + 1, 0, 0) for i, k in enumerate(keys)], dt_s=2)
    for step in range(1, 8):
        t = t0 + 1 + step * 600
        chain.block([chain.reading(keys[0], 0, step + 1, t, 0, step * 300),
                     chain.reading(keys[2], 2, step + 1, t, step * 200, 0),
                     transfer(chain, keys[3], keys[1])], at=t + 1)
        assert chain.state_hash() == chain.full_hash()
    chain.block(at=t0 + 86_400)
    assert chain.state_hash() == chain.full_hash()


def test_two_fresh_states_fed_the_same_blocks_agree(setup):
    chain, keys = setup
    twin = Chain(chain.genesis)
    for n in range(3):
        data = transfer(chain, keys[n], keys[n + 1])
        assert chain.block([data]).state_hash == twin.block([data]).state_hash
    assert chain.kv.items() == twin.kv.items()


def test_different_blocks_give_different_hashes(setup):
    chain, keys = setup
    twin = Chain(chain.genesis)
    a = chain.block([transfer(chain, keys[0], keys[1], amount=1, nonce=1)])
    b = twin.block([transfer(twin, keys[0], keys[1], amount=2, nonce=1)])
    assert a.state_hash != b.state_hash


def test_account_of_a_stranger_reads_as_empty(setup):
    chain, _ = setup
    acct = get_account(chain.kv, keypair("nobody").public)
    assert acct["balances"] == {"kwh": 0, "hour": 0} and acct["household"] is None


def test_unknown_signature_validator_key_is_rejected_by_check_tx(setup):
    chain, keys = setup
    data = sign(T.Transfer(signer=VALIDATORS[0].public, nonce=1, to=keys[0].public, cls="kwh", amount=1, memo="",
                           sig=ZERO_SIG), chain.genesis, VALIDATORS[0])
    with pytest.raises(InvalidTx) as info:
        check_tx(chain.kv, chain.genesis, data, chain.time_s * 1000)
    assert info.value.reason == "unknown_signer"


def test_every_tx_type_has_one_handler_with_the_common_signature():
    assert set(HANDLERS) == set(T.TX_TYPES)
    for handler in HANDLERS.values():
        assert list(inspect.signature(handler).parameters) == ["lg", "tx", "tx_id"], handler.__name__
