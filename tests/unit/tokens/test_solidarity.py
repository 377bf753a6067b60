"""Standing gifts to the solidarity target (tokens/txs.py SOLIDARITY): at each mint the
gift's share is split equally among the households flagged solidarity (UpdateHousehold),
largest remainder tie-broken by address; with none flagged it stays with the producer."""

from __future__ import annotations

import json

import pytest

from governance.rounding import compute_largest_remainder
from tests.unit.tokens.commune import REGISTRAR, Chain, expect_invalid, make_genesis
from tests.unit.tokens.test_properties import check_conservation, check_settled_intervals
from tokens import get_account
from tokens import txs as T
from tokens.genesis import GenesisError, parse_genesis

EXPORT_WH = 1_501       # household 0's export in the interval: net 1 351 after the 10 % levy


@pytest.fixture
def setup():
    genesis, keys = make_genesis(5)
    return Chain(genesis), keys


def flag(chain: Chain, i: int, on: bool = True) -> bytes:
    h = chain.genesis.households[i]
    return chain.tx(T.UpdateHousehold, REGISTRAR, key=h.key, meter=h.meter, kva=h.kva, peak_w=h.peak_w,
                    solidarity=on)


def solidarity_gift(chain: Chain, key, bp: int) -> bytes:
    return chain.tx(T.StandingGift, key, beneficiary=T.SOLIDARITY, bp=bp, until=chain.time_s + 86_400)


def kwh(chain: Chain, key) -> int:
    return get_account(chain.kv, key.public)["balances"]["kwh"]


def produce_and_settle(chain: Chain, keys) -> None:
    """Household 0 exports EXPORT_WH in the first interval, which then settles."""
    t0 = chain.time_s
    chain.block([chain.reading(keys[0], 0, 1, t0 + 1, 0, 0)], at=t0 + 1)
    chain.block([chain.reading(keys[0], 0, 2, t0 + 1000, 0, EXPORT_WH)], at=t0 + 1000)
    chain.block(at=t0 + 1800 + 300)


def test_a_solidarity_gift_is_split_among_the_flagged_households_by_largest_remainder(setup):
    chain, keys = setup
    chain.block([flag(chain, 2), flag(chain, 3), flag(chain, 4), solidarity_gift(chain, keys[0], 5000)])
    produce_and_settle(chain, keys)
    net = EXPORT_WH - EXPORT_WH * 1000 // 10_000
    share = net * 5000 // 10_000
    needy = sorted(k.public for k in keys[2:])
    expected = dict(zip(needy, compute_largest_remainder(share, [(a, 1) for a in needy])))
    assert {k.public: kwh(chain, k) for k in keys[2:]} == expected
    assert sorted(expected.values()) == [225, 225, 225] and share == 675
    assert kwh(chain, keys[0]) == net - share
    check_conservation(chain.kv)
    check_settled_intervals(chain.kv)


def test_the_remainder_goes_to_the_smallest_addresses(setup):
    chain, keys = setup
    chain.block([flag(chain, 2), flag(chain, 3), flag(chain, 4), solidarity_gift(chain, keys[0], 5010)])
    produce_and_settle(chain, keys)
    share = (EXPORT_WH - 150) * 5010 // 10_000          # 676: one unit over three equal parts
    got = {k.public: kwh(chain, k) for k in keys[2:]}
    assert sum(got.values()) == share == 676
    assert got[min(got)] == 226 and sorted(got.values()) == [225, 225, 226]


def test_with_no_household_flagged_the_share_stays_with_the_producer(setup):
    chain, keys = setup
    chain.block([solidarity_gift(chain, keys[0], 5000)])
    produce_and_settle(chain, keys)
    assert kwh(chain, keys[0]) == EXPORT_WH - 150
    check_conservation(chain.kv)


def test_a_flagged_giver_gives_to_the_others_only(setup):
    chain, keys = setup
    chain.block([flag(chain, 0), flag(chain, 2), solidarity_gift(chain, keys[0], 10_000)])
    produce_and_settle(chain, keys)
    assert (kwh(chain, keys[0]), kwh(chain, keys[2])) == (0, EXPORT_WH - 150)


def test_a_household_unflagged_before_the_mint_gets_nothing(setup):
    chain, keys = setup
    chain.block([flag(chain, 2), flag(chain, 3), solidarity_gift(chain, keys[0], 10_000)])
    chain.block([flag(chain, 3, on=False)])
    produce_and_settle(chain, keys)
    assert (kwh(chain, keys[2]), kwh(chain, keys[3])) == (EXPORT_WH - 150, 0)


def test_the_gift_shows_its_solidarity_target(setup):
    chain, keys = setup
    chain.block([solidarity_gift(chain, keys[0], 100)])
    [gift] = get_account(chain.kv, keys[0].public)["gifts"]
    assert gift["solidarity"] is True and gift["beneficiary"] == "00" * 32


def test_invalid_register_the_solidarity_key(setup):
    chain, _ = setup
    data = chain.tx(T.RegisterHousehold, REGISTRAR, key=T.SOLIDARITY, meter="021499999999", prm="30000099999999",
                    label="", kva=6, peak_w=0)
    expect_invalid(chain, data, "reserved_key")


def test_invalid_genesis_household_with_the_solidarity_key():
    doc = {"commune": {"name": "T", "insee": "99999"}, "genesis_time": 0, "validators": [
        {"key": "11" * 32, "addr": "/ip4/127.0.0.1/tcp/1"}], "registrars": ["22" * 32],
        "households": [{"key": "00" * 32, "meter": "021400000000", "prm": "30000000000000", "kva": 6}]}
    with pytest.raises(GenesisError, match="reserved"):
        parse_genesis(json.dumps(doc).encode())
