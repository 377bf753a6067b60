"""Governance transactions in the ledger (DESIGN §5): Delegate, AllocationBallot,
Propose, Vote; the standing allocation at each epoch and proposal tallies."""

from __future__ import annotations

import json

import pytest

from tests.unit.tokens.commune import Chain, expect_invalid, keypair, make_genesis, who
from tokens import get_account, get_allocation, get_params, get_proposals
from tokens import txs as T
from wire import compute_id

DAY = 86_400
STRANGER = keypair("stranger")


@pytest.fixture
def setup():
    genesis, keys = make_genesis(5)
    return Chain(genesis), keys


NAMES = ["pensions", "energy", "roads", "startups", "canteen", "security"]


def ballot(chain, key, bps):
    """``bps``: {name: bp}, or bp per default category in genesis order (zeros left out)."""
    by_name = bps if isinstance(bps, dict) else dict(zip(NAMES, bps))
    return entries_ballot(chain, key, [(n, bp) for n, bp in sorted(by_name.items()) if bp])


def entries_ballot(chain, key, pairs):
    """A ballot with exactly these (name, bp) entries, in this order."""
    return chain.tx(T.AllocationBallot, key, entries=tuple(T.BallotEntry(category=n, bp=bp) for n, bp in pairs))


def delegate(chain, key, topic, to):
    return chain.tx(T.Delegate, key, topic=topic, to=None if to is None else to.public)


# --- Delegate -----------------------------------------------------------------------


def test_delegate_is_stored_and_replaceable(setup):
    chain, keys = setup
    chain.block([delegate(chain, keys[0], "*", keys[1]), delegate(chain, keys[0], "params", None)])
    assert get_account(chain.kv, keys[0].public)["delegations"] == {"*": keys[1].public.hex(), "params": None}
    chain.block([delegate(chain, keys[0], "*", keys[2]), delegate(chain, keys[0], "params", keys[0])])
    assert get_account(chain.kv, keys[0].public)["delegations"] == {"*": keys[2].public.hex()}


@pytest.mark.parametrize("signer, topic, to, reason", [
    (0, "roads", 1, "bad_topic"),
    (0, "*", STRANGER, "unknown_delegate"),
    (STRANGER, "*", 0, "unknown_signer"),
], ids=["bad_topic", "to_unknown", "by_unknown"])
def test_invalid_delegate(setup, signer, topic, to, reason):
    chain, keys = setup
    expect_invalid(chain, delegate(chain, who(keys, signer), topic, who(keys, to)), reason)


# --- AllocationBallot and the standing allocation -------------------------------------


@pytest.mark.parametrize("pairs, reason", [
    ([("pensions", 5000), ("energy", 5000)], "bad_ballot"),
    ([("energy", 5000), ("energy", 5000)], "bad_ballot"),
    ([("energy", 5000), ("pensions", 4999)], "bad_ballot"),
    ([("energy", 0), ("pensions", 10_000)], "bad_ballot"),
    ([("energy", 5000), ("parks", 5000)], "unknown_category"),
    ([], "bad_ballot"),
], ids=["unsorted", "named_twice", "wrong_sum", "zero_entry", "unknown_category", "empty"])
def test_invalid_ballot(setup, pairs, reason):
    chain, keys = setup
    expect_invalid(chain, entries_ballot(chain, keys[0], pairs), reason)


def test_ballot_is_stored_by_name_and_shown_by_name(setup):
    chain, keys = setup
    chain.block([ballot(chain, keys[0], {"roads": 6000, "canteen": 4000})])
    assert get_account(chain.kv, keys[0].public)["ballot"] == {"canteen": 4000, "roads": 6000}


def test_allocation_without_ballots_stays_the_genesis_default(setup):
    chain, _ = setup
    chain.block(at=chain.time_s + DAY)
    assert get_allocation(chain.kv) == {"pensions": 4000, "energy": 1000, "roads": 1000, "startups": 2000,
                                        "canteen": 1000, "security": 1000}


def test_allocation_follows_ballots_and_delegations_at_the_epoch(setup):
    chain, keys = setup
    everything_to_roads = [0, 0, 10_000, 0, 0, 0]
    chain.block([ballot(chain, keys[0], everything_to_roads), ballot(chain, keys[1], everything_to_roads),
                 delegate(chain, keys[2], "allocation", keys[0])])
    # The allocation only changes at the epoch.
    assert get_allocation(chain.kv)["roads"] == 1000
    result = chain.block(at=chain.time_s + DAY)
    assert [e.allocation for e in result.events if e.kind == "epoch"] == [(0, 0, 10_000, 0, 0, 0)]
    assert get_allocation(chain.kv)["roads"] == 10_000


@pytest.mark.parametrize("rule", ["mean", "independent_markets"])
def test_allocation_rule_param_is_used(rule):
    genesis, keys = make_genesis(3, {"allocation_rule": rule})
    chain = Chain(genesis)
    chain.block([ballot(chain, keys[0], [10_000, 0, 0, 0, 0, 0]), ballot(chain, keys[1], [0, 10_000, 0, 0, 0, 0])])
    chain.block(at=chain.time_s + DAY)
    alloc = get_allocation(chain.kv)
    assert sum(alloc.values()) == 10_000
    if rule == "mean":
        assert alloc["pensions"] == alloc["energy"] == 5000


# --- Propose / Vote / tally ---------------------------------------------------------


def propose(chain, key, param="levy_bp", value=1500, end_in=3600):
    return chain.tx(T.Propose, key, param=param, value=json.dumps(value), voting_end=chain.time_s + end_in)


def vote(chain, key, proposal, choice):
    return chain.tx(T.Vote, key, proposal=compute_id(proposal), choice=choice)


def test_passed_proposal_changes_the_parameter_from_the_next_block(setup):
    chain, keys = setup
    p = propose(chain, keys[0])
    chain.block([p])
    chain.block([vote(chain, keys[0], p, "yes"), vote(chain, keys[1], p, "yes"), vote(chain, keys[2], p, "no")])
    assert get_params(chain.kv)["levy_bp"] == 1000
    result = chain.block(dt_s=3600)
    tallies = [e for e in result.events if e.kind == "proposal"]
    assert len(tallies) == 1 and tallies[0].passed and tallies[0].applied
    assert (tallies[0].yes, tallies[0].no, tallies[0].participation_bp) == (2, 1, 6000)
    assert get_params(chain.kv)["levy_bp"] == 1500
    assert get_proposals(chain.kv)[0]["status"] == "passed"


def test_delegated_weight_counts_in_the_tally(setup):
    chain, keys = setup
    p = propose(chain, keys[0])
    chain.block([p, delegate(chain, keys[1], "params", keys[0]), delegate(chain, keys[2], "*", keys[0])])
    chain.block([vote(chain, keys[0], p, "yes"), vote(chain, keys[3], p, "no")])
    tally = [e for e in chain.block(dt_s=3600).events if e.kind == "proposal"][0]
    assert (tally.yes, tally.no) == (3, 1) and tally.passed


def test_proposal_without_quorum_is_rejected():
    genesis, keys = make_genesis(10)
    chain = Chain(genesis)
    p = propose(chain, keys[0])
    chain.block([p])
    chain.block([vote(chain, keys[0], p, "yes")])        # 10 % participation < 20 % quorum
    tally = [e for e in chain.block(dt_s=3600).events if e.kind == "proposal"][0]
    assert not tally.passed
    assert get_params(chain.kv)["levy_bp"] == 1000
    assert get_proposals(chain.kv)[0]["status"] == "rejected"


def test_proposal_that_no_longer_fits_is_not_applied(setup):
    chain, keys = setup
    # Two proposals that are each valid but not together: grace must stay below the interval.
    a = propose(chain, keys[0], "settlement_grace_s", 1000)
    b = propose(chain, keys[1], "settlement_interval_s", 900, end_in=3601)
    chain.block([a, b])
    chain.block([vote(chain, keys[i], p, "yes") for i in range(3) for p in (a, b)])
    chain.block(dt_s=3600)
    chain.block(dt_s=1)
    statuses = {p["param"]: p["status"] for p in get_proposals(chain.kv)}
    assert statuses == {"settlement_grace_s": "passed", "settlement_interval_s": "failed"}
    assert get_params(chain.kv)["settlement_interval_s"] == 1800


def test_interval_change_settles_open_intervals_and_starts_the_new_grid(setup):
    chain, keys = setup
    t0 = chain.time_s
    p = propose(chain, keys[0], "settlement_interval_s", 900)
    chain.block([p, chain.reading(keys[0], 0, 1, t0 + 1, 0, 0), chain.reading(keys[2], 2, 1, t0 + 1, 0, 0)])
    chain.block([vote(chain, keys[i], p, "yes") for i in range(3)])
    chain.block([chain.reading(keys[0], 0, 2, t0 + 1000, 0, 500)], at=t0 + 1000)
    # At 3602 s the tally passes; interval [1800, 3600) is still in its grace period
    # and settles at once, before the 900 s grid starts.
    chain.block([chain.reading(keys[0], 0, 3, t0 + 3500, 0, 900), chain.reading(keys[2], 2, 2, t0 + 3500, 300, 0)],
                at=t0 + 3501)
    result = chain.block(at=t0 + 3602)
    kinds = [e.kind for e in result.events]
    assert "proposal" in kinds and get_params(chain.kv)["settlement_interval_s"] == 900
    settled = [e for e in result.events if e.kind == "settlement"]
    assert [(e.start - t0, e.sum_e, e.sum_i) for e in settled] == [(1800, 400, 300)]
    # Interval 0 had already settled at 2100 s.
    assert get_account(chain.kv, keys[0].public)["balances"]["kwh"] == 450 + 360
    # The new 900 s grid: [3600, 4500) settles at 4500 + 300.
    chain.block([chain.reading(keys[0], 0, 4, t0 + 3700, 0, 1000)], at=t0 + 3701)
    assert not [e for e in chain.block(at=t0 + 4799).events if e.kind == "settlement"]
    settled = [e for e in chain.block(at=t0 + 4800).events if e.kind == "settlement"]
    assert [(e.start - t0, e.end - t0, e.sum_e) for e in settled] == [(3600, 4500, 100)]


def test_invalid_vote_after_the_window(setup):
    chain, keys = setup
    p = propose(chain, keys[0])
    chain.block([p])
    chain.block(dt_s=3599)
    expect_invalid(chain, vote(chain, keys[1], p, "yes"), "voting_closed")


def test_invalid_vote_bad_choice(setup):
    chain, keys = setup
    p = propose(chain, keys[0])
    chain.block([p])
    expect_invalid(chain, vote(chain, keys[1], p, "maybe"), "bad_choice")


def test_invalid_vote_unknown_proposal(setup):
    chain, keys = setup
    expect_invalid(chain, chain.tx(T.Vote, keys[1], proposal=bytes(32), choice="yes"), "unknown_proposal")


def test_invalid_propose_unknown_param(setup):
    chain, keys = setup
    expect_invalid(chain, propose(chain, keys[0], "mayor", "moi"), "unknown_param")


@pytest.mark.parametrize("param,value", [("levy_bp", 10_001), ("levy_bp", "ten"), ("allocation_rule", "dictator"),
                                         ("time_scale", 60), ("settlement_grace_s", 1800)])
def test_invalid_propose_bad_value(setup, param, value):
    chain, keys = setup
    expect_invalid(chain, propose(chain, keys[0], param, value), "bad_value")


def test_invalid_propose_value_not_json(setup):
    chain, keys = setup
    data = chain.tx(T.Propose, keys[0], param="levy_bp", value="{", voting_end=chain.time_s + 10)
    expect_invalid(chain, data, "bad_value")


@pytest.mark.parametrize("end_in", [1, 366 * DAY])
def test_invalid_propose_bad_window(setup, end_in):
    chain, keys = setup
    # The block is 1 s after the last: voting that ends then has already ended.
    expect_invalid(chain, propose(chain, keys[0], end_in=end_in), "bad_window")


def test_contribution_weights_count_levy_paid():
    genesis, keys = make_genesis(3, {"vote_weight": "contribution"})
    chain = Chain(genesis)
    t0 = chain.time_s
    chain.block([chain.reading(keys[0], 0, 1, t0 + 1, 0, 0)], dt_s=2)
    chain.block([chain.reading(keys[0], 0, 2, t0 + 1001, 0, 1000)], dt_s=1000)
    chain.block(at=t0 + 2100)            # settles: household 0 paid 100 Wh of levy
    p = propose(chain, keys[1])
    chain.block([p])
    chain.block([vote(chain, keys[0], p, "no"), vote(chain, keys[1], p, "yes"), vote(chain, keys[2], p, "yes")])
    tally = [e for e in chain.block(dt_s=3600).events if e.kind == "proposal"][0]
    assert (tally.yes, tally.no) == (2, 100) and not tally.passed


def test_contributions_older_than_365_days_stop_counting_and_are_pruned():
    genesis, keys = make_genesis(3, {"vote_weight": "contribution"})
    chain = Chain(genesis)
    t0 = chain.time_s
    chain.block([chain.reading(keys[0], 0, 1, t0 + 1, 0, 0)], dt_s=2)
    chain.block([chain.reading(keys[0], 0, 2, t0 + 1001, 0, 1000)], dt_s=1000)
    chain.block(at=t0 + 2100)
    assert list(chain.kv.iter_prefix(b"ctb/"))
    chain.block(at=t0 + 365 * DAY)               # the epoch prunes day 0
    assert not list(chain.kv.iter_prefix(b"ctb/"))
    p = propose(chain, keys[1])
    chain.block([p])
    chain.block([vote(chain, keys[0], p, "no"), vote(chain, keys[1], p, "yes")])
    tally = [e for e in chain.block(dt_s=3600).events if e.kind == "proposal"][0]
    assert (tally.yes, tally.no) == (1, 1)
