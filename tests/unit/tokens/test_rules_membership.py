"""Deregister, RotateKey, RecoverKey, CancelRecovery and the PRM index (DESIGN §12)."""

from __future__ import annotations

import pytest

from tests.unit.tokens.commune import REGISTRAR, Chain, expect_invalid, make_genesis
from tests.unit.tokens.membership import (
    NEW, NEXT, ballot, deregister, ledger, members, register, state, transfer,
)
from tokens import get_account, get_household, get_proposals
from tokens import layout as L
from tokens import txs as T
from tokens.rules_gov import get_vote_weights

__all__ = ["members"]


# --- onboarding: the PRM is unique --------------------------------------------------


def test_invalid_register_prm_in_use(members):
    chain, keys = members
    data = chain.tx(T.RegisterHousehold, REGISTRAR, key=NEXT.public, meter="021499999999",
                    prm="30000000000002", label="x", kva=6, peak_w=0)
    expect_invalid(chain, data, "prm_in_use")


# --- moving out and in --------------------------------------------------------------


def test_deregister_frees_meter_and_prm_for_the_next_block(members):
    chain, keys = members
    chain.block([transfer(chain, keys[0], keys[2], 500)])
    chain.block([deregister(chain, keys[2])])
    assert get_household(chain.kv, keys[2].public) is None
    assert state(chain, L.key_meter("021400000002")) is None and state(chain, L.key_prm("30000000000002")) is None
    account = get_account(chain.kv, keys[2].public)
    assert account["balances"]["kwh"] == 500 and account["deregistered_at"] == chain.height
    chain.block([register(chain, NEXT, 2)])
    assert get_household(chain.kv, NEXT.public)["prm"] == "30000000000002"
    assert state(chain, L.key_prm("30000000000002")) == NEXT.public
    assert chain.state_hash() == chain.full_hash()


def test_deregister_then_register_in_the_same_block(members):
    chain, keys = members
    chain.block([deregister(chain, keys[3]), register(chain, NEXT, 3)])
    assert state(chain, L.key_meter("021400000003")) == NEXT.public


def test_deregister_ends_gifts_ballot_delegations_and_votes(members):
    chain, keys = members
    chain.block([
        chain.tx(T.StandingGift, keys[1], beneficiary=keys[0].public, bp=500, until=chain.time_s + 9000),
        chain.tx(T.StandingGift, keys[0], beneficiary=keys[1].public, bp=500, until=chain.time_s + 9000),
        ballot(chain, keys[1], pensions=5000, energy=1000, roads=1000, startups=1000, canteen=1000, security=1000),
        chain.tx(T.Delegate, keys[1], topic="*", to=keys[2].public),
        chain.tx(T.Delegate, keys[3], topic="*", to=keys[1].public),
    ])
    chain.block([deregister(chain, keys[1])])
    prefixes = [L.GIFT + keys[1].public, L.DELEGATION + keys[1].public, L.BALLOT + keys[1].public]
    assert all(not list(chain.kv.iter_prefix(p)) for p in prefixes)
    # Gifts to it end too; a delegation to it stays and now ends at a non-voter.
    assert get_account(chain.kv, keys[0].public)["gifts"] == []
    assert get_account(chain.kv, keys[3].public)["delegations"] == {"*": keys[1].public.hex()}
    assert sorted(get_vote_weights(ledger(chain))) == sorted(k.public for k in (keys[0], keys[2], keys[3]))


def test_a_household_that_left_leaves_the_quorum(members):
    # quorum 60 %: 2 yes of 4 households is 50 % (rejected); of 3 it is 67 % (passed).
    outcomes = []
    for leave in (False, True):
        genesis, keys = make_genesis(4, {"proposal_quorum_bp": 6000})
        chain = Chain(genesis)
        end = chain.time_s + 100
        propose = chain.tx(T.Propose, keys[0], param="levy_bp", value="500", voting_end=end)
        chain.block([propose])
        pid = T.decode_tx(propose).id()
        chain.block([chain.tx(T.Vote, keys[i], proposal=pid, choice="yes") for i in (0, 1)]
                    + ([deregister(chain, keys[3])] if leave else []))
        chain.block(at=end + 1)
        outcomes.append(get_proposals(chain.kv)[0]["status"])
    assert outcomes == ["rejected", "passed"]


def test_former_household_transfers_what_it_holds_and_registers_again(members):
    chain, keys = members
    chain.block([transfer(chain, keys[0], keys[2], 300)])
    chain.block([deregister(chain, keys[2])])
    expect_invalid(chain, transfer(chain, keys[2], keys[1], 301), "insufficient_balance")
    expect_invalid(chain, ballot(chain, keys[2], pensions=10_000), "unknown_signer")
    chain.block([transfer(chain, keys[2], keys[1], 100)])
    data = chain.tx(T.RegisterHousehold, REGISTRAR, key=keys[2].public, meter="021455555555",
                    prm="30000055555555", label="Ailleurs", kva=6, peak_w=0)
    chain.block([data])
    account = get_account(chain.kv, keys[2].public)
    assert account["balances"]["kwh"] == 200 and account["deregistered_at"] is None
    assert account["household"]["meter"] == "021455555555"


@pytest.mark.parametrize("who, signer, reason", [
    ("stranger", REGISTRAR, "unknown_household"),
    ("household", "household", "not_registrar"),
], ids=["unknown_household", "by_household"])
def test_invalid_deregister(members, who, signer, reason):
    chain, keys = members
    key = NEW if who == "stranger" else keys[1]
    expect_invalid(chain, deregister(chain, key, keys[0] if signer == "household" else signer), reason)


def test_invalid_deregister_twice(members):
    chain, keys = members
    chain.block([deregister(chain, keys[1])])
    expect_invalid(chain, deregister(chain, keys[1]), "unknown_household")
