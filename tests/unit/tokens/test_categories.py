"""Allocation categories changed by a proposal (DESIGN §5): ballots are keyed by name, and a
removed category's fund goes back to the treasury in the block that removes it."""

from __future__ import annotations

import json

import pytest

from tests.unit.tokens.commune import REGISTRAR, Chain, expect_invalid, make_genesis
from tests.unit.tokens.test_properties import check_conservation, scan
from tests.unit.tokens.test_rules_gov import DAY, ballot, delegate, propose, vote
from tokens import get_account, get_allocation, get_funds, get_params, get_treasury
from tokens import layout as L
from tokens import txs as T

DEFAULT = [["pensions", 4000], ["energy", 1000], ["roads", 1000], ["startups", 2000], ["canteen", 1000],
           ["security", 1000]]
WITHOUT_ROADS = [["pensions", 4000], ["energy", 2000], ["startups", 2000], ["canteen", 1000], ["security", 1000]]


@pytest.fixture
def setup():
    genesis, keys = make_genesis(5, {"allocation_rule": "mean"})
    return Chain(genesis), keys


def pass_categories(chain: Chain, keys, categories) -> list:
    """Propose and pass allocation_categories = ``categories``; the events of the tally block."""
    p = propose(chain, keys[0], "allocation_categories", categories)
    chain.block([p])
    chain.block([vote(chain, keys[i], p, "yes") for i in range(3)])
    events = chain.block(dt_s=3600).events
    assert get_params(chain.kv)["allocation_categories"] == categories
    return events


def fill_funds(chain: Chain, keys) -> None:
    """Household 0 exports 1.6 kWh; its levy reaches the treasury, then the funds at the epoch."""
    t0 = chain.time_s
    chain.block([chain.reading(keys[0], 0, 1, t0 + 1, 0, 0)], at=t0 + 1)
    chain.block([chain.reading(keys[0], 0, 2, t0 + 1000, 0, 1_600)], at=t0 + 1000)
    chain.block(at=t0 + DAY)
    assert get_funds(chain.kv)["roads"]["kwh"] > 0


def get_total_kwh(chain: Chain) -> int:
    check_conservation(chain.kv)
    accounts = sum(rec[0] for _, rec in scan(chain.kv, L.ACCOUNT))
    return accounts + get_treasury(chain.kv)["kwh"] + sum(f["kwh"] for f in get_funds(chain.kv).values())


def next_epoch_allocation(chain: Chain) -> dict[str, int]:
    chain.block(at=(chain.time_s // DAY + 1) * DAY)
    return get_allocation(chain.kv)


def test_reordering_categories_keeps_what_each_ballot_means(setup):
    chain, keys = setup
    chain.block([ballot(chain, keys[i], {"roads": 10_000}) for i in range(2)])
    reordered = list(reversed(DEFAULT))
    pass_categories(chain, keys, reordered)
    alloc = next_epoch_allocation(chain)
    assert list(alloc) == [name for name, _ in reordered]
    assert alloc["roads"] == 10_000


def test_an_added_category_gets_nothing_from_ballots_that_do_not_name_it(setup):
    chain, keys = setup
    chain.block([ballot(chain, keys[0], {"roads": 10_000})])
    pass_categories(chain, keys, DEFAULT[:-1] + [["security", 500], ["parks", 500]])
    alloc = next_epoch_allocation(chain)
    assert alloc["roads"] == 10_000 and alloc["parks"] == 0


def test_a_ballot_naming_a_removed_category_stops_counting(setup):
    chain, keys = setup
    # Mean of the two ballots would be canteen 5000; only the surviving one counts.
    chain.block([ballot(chain, keys[0], {"roads": 5000, "pensions": 5000}),
                 ballot(chain, keys[1], {"canteen": 10_000})])
    pass_categories(chain, keys, WITHOUT_ROADS)
    assert next_epoch_allocation(chain)["canteen"] == 10_000


def test_the_weight_of_a_ballot_that_stopped_counting_follows_its_delegation(setup):
    chain, keys = setup
    chain.block([ballot(chain, keys[0], {"roads": 10_000}), delegate(chain, keys[0], "allocation", keys[1]),
                 ballot(chain, keys[1], {"canteen": 10_000}), ballot(chain, keys[2], {"energy": 10_000})])
    pass_categories(chain, keys, WITHOUT_ROADS)
    alloc = next_epoch_allocation(chain)
    assert (alloc["canteen"], alloc["energy"]) == (6667, 3333)


def test_removing_a_category_moves_its_fund_to_the_treasury_in_the_same_block(setup):
    chain, keys = setup
    fill_funds(chain, keys)
    roads = get_funds(chain.kv)["roads"]["kwh"]
    treasury, total = get_treasury(chain.kv)["kwh"], get_total_kwh(chain)
    events = pass_categories(chain, keys, WITHOUT_ROADS)
    assert [(e.category, e.kwh) for e in events if e.kind == "fund_closed"] == [("roads", roads)]
    assert "roads" not in get_funds(chain.kv)
    assert get_treasury(chain.kv)["kwh"] == treasury + roads
    assert get_total_kwh(chain) == total
    # The next epoch splits it by the new categories.
    chain.block(at=(chain.time_s // DAY + 1) * DAY)
    assert get_treasury(chain.kv)["kwh"] == 0 and get_total_kwh(chain) == total


def test_invalid_spend_from_a_removed_category(setup):
    chain, keys = setup
    fill_funds(chain, keys)
    pass_categories(chain, keys, WITHOUT_ROADS)
    spend = chain.tx(T.Spend, REGISTRAR, category="roads", to=keys[1].public, amount=1, memo="")
    expect_invalid(chain, spend, "unknown_category")


def test_account_view_shows_the_ballot_by_name(setup):
    chain, keys = setup
    chain.block([ballot(chain, keys[0], {"roads": 10_000})])
    assert get_account(chain.kv, keys[0].public)["ballot"] == {"roads": 10_000}
    assert json.loads(json.dumps(get_account(chain.kv, keys[0].public)))["ballot"] == {"roads": 10_000}
