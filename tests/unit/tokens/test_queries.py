"""Read helpers for the API: accounts, intervals, consumers, allocation, proposals."""

from __future__ import annotations

from tests.unit.tokens.commune import Chain, make_genesis
from tokens import (
    get_account, get_allocation, get_household_intervals, get_interval, get_interval_at, get_proposals, get_totals,
)


def test_household_intervals_in_a_range():
    genesis, keys = make_genesis(3)
    chain = Chain(genesis)
    t0 = chain.time_s
    chain.block([chain.reading(keys[0], 0, 1, t0 + 1, 0, 0), chain.reading(keys[2], 2, 1, t0 + 1, 0, 0)], dt_s=2)
    for n in range(1, 5):      # at 901, 1801, 2701, 3601 s: 100 Wh each, in intervals 0, 1, 1, 2
        t = t0 + 1 + n * 900
        chain.block([chain.reading(keys[0], 0, n + 1, t, 0, 100 * n), chain.reading(keys[2], 2, n + 1, t, 50 * n, 0)],
                    at=t + 1)
    rows = get_household_intervals(chain.kv, keys[0].public, t0, t0 + 1800)
    assert [(r["start"] - t0, r["export_wh"]) for r in rows] == [(0, 100), (1800, 200)]
    assert rows[0]["settled"] and rows[0]["minted_wh"] == 90
    assert get_household_intervals(chain.kv, keys[0].public, t0 + 1, t0 + 1799) == []
    assert get_household_intervals(chain.kv, keys[1].public, t0, t0 + 10**6) == []


def test_interval_without_energy_reads_as_zeros():
    genesis, _ = make_genesis(2)
    chain = Chain(genesis)
    chain.block(at=chain.time_s + 4000)
    k = chain.genesis.genesis_time // 1800
    iv = get_interval(chain.kv, k)
    assert (iv["k"], iv["sum_e"], iv["sum_i"], iv["m"], iv["households"]) == (k, 0, 0, 0, {})
    assert iv["settled"]
    assert not get_interval_at(chain.kv, chain.genesis.genesis_time + 3600)["settled"]


def test_genesis_reads():
    genesis, keys = make_genesis(2)
    chain = Chain(genesis)
    assert sum(get_allocation(chain.kv).values()) == 10_000
    assert get_totals(chain.kv) == {"minted": 0, "allocated": 0}
    assert get_proposals(chain.kv) == []
    acct = get_account(chain.kv, keys[0].public)
    assert acct["gifts"] == [] and acct["delegations"] == {} and acct["ballot"] is None
