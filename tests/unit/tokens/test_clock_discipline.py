"""Nonces and meter seqs taken from a clock may not run ahead of the chain
(tokens/ledger.py check_not_ahead, genesis max_nonce_ahead_s)."""

from __future__ import annotations

import pytest

from tests.unit.tokens.commune import Chain, expect_invalid, make_genesis
from tokens import get_account, get_household
from tokens import txs as T

AHEAD_S = 600


@pytest.fixture
def setup():
    genesis, keys = make_genesis(4)
    return Chain(genesis), keys


def transfer(chain: Chain, key, to, nonce: int) -> bytes:
    return chain.tx(T.Transfer, key, to=to.public, cls="kwh", amount=1, memo="", nonce=nonce)


def block_ms(chain: Chain, dt_s: int = 1) -> int:
    return (chain.time_s + dt_s) * 1000


def test_a_nonce_at_the_limit_is_accepted(setup):
    chain, keys = setup
    nonce = block_ms(chain) + AHEAD_S * 1000
    chain.block([transfer(chain, keys[0], keys[1], nonce)])
    assert get_account(chain.kv, keys[0].public)["nonce"] == nonce


@pytest.mark.parametrize("ahead_ms", [AHEAD_S * 1000 + 1, 365 * 86_400_000], ids=["one_ms_past", "a_year"])
def test_invalid_nonce_ahead_of_the_chain(setup, ahead_ms):
    chain, keys = setup
    expect_invalid(chain, transfer(chain, keys[0], keys[1], block_ms(chain) + ahead_ms), "nonce_ahead")


def test_a_clock_set_back_after_a_jump_is_not_locked_out(setup):
    # The jumped tx is refused, so the signer's next tx with a right clock still passes.
    chain, keys = setup
    expect_invalid(chain, transfer(chain, keys[0], keys[1], block_ms(chain) + 365 * 86_400_000), "nonce_ahead")
    chain.block([transfer(chain, keys[0], keys[1], block_ms(chain))])
    assert get_account(chain.kv, keys[0].public)["nonce"] == block_ms(chain, 0)


def test_the_limit_is_a_parameter():
    genesis, keys = make_genesis(4, {"max_nonce_ahead_s": 5})
    chain = Chain(genesis)
    expect_invalid(chain, transfer(chain, keys[0], keys[1], block_ms(chain) + 5001), "nonce_ahead")
    chain.block([transfer(chain, keys[0], keys[1], block_ms(chain) + 5000)])


def test_invalid_nonce_ahead_detail_says_by_how_much(setup):
    chain, keys = setup
    from tokens import InvalidTx, check_tx
    data = transfer(chain, keys[0], keys[1], block_ms(chain) + 3_600_000)
    with pytest.raises(InvalidTx) as info:
        check_tx(chain.kv, chain.genesis, data, block_ms(chain))
    assert "3600 s ahead" in info.value.detail and f"at most {AHEAD_S} s" in info.value.detail


def reading(chain: Chain, key, seq: int, t: int) -> bytes:
    return chain.reading(key, 0, seq=seq, t=t, imp=0, exp=0)


@pytest.mark.parametrize("ahead_ms", [AHEAD_S * 1000 + 1, 365 * 86_400_000], ids=["one_ms_past", "a_year"])
def test_invalid_seq_ahead_of_the_chain(setup, ahead_ms):
    chain, keys = setup
    expect_invalid(chain, reading(chain, keys[0], block_ms(chain) + ahead_ms, chain.time_s), "seq_ahead")


def test_a_meter_whose_clock_jumped_is_not_locked_out(setup):
    chain, keys = setup
    expect_invalid(chain, reading(chain, keys[0], block_ms(chain) + 365 * 86_400_000, chain.time_s), "seq_ahead")
    chain.block([reading(chain, keys[0], block_ms(chain), chain.time_s)])
    assert get_household(chain.kv, keys[0].public)["last_reading"]["seq"] == block_ms(chain, 0)
