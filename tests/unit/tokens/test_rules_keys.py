"""RotateKey, RecoverKey and CancelRecovery (DESIGN §12)."""

from __future__ import annotations

import pytest

from tests.unit.tokens.commune import REGISTRAR, balances, expect_invalid
from tests.unit.tokens.membership import (
    DELAY, NEW, NEXT, ballot, deregister, members, recover, register, rotate, state, transfer,
)
from tests.unit.tokens.commune import Chain, make_genesis
from tokens import BlockContext, apply_block, get_account, get_household, get_interval_at, get_proposals
from tokens import layout as L
from tokens.queries import get_registrar_set
from tokens import txs as T
from wire import sign_message

__all__ = ["members"]


def test_rotate_moves_balances_gifts_ballot_delegations_and_energy(members):
    chain, keys = members
    t0 = chain.time_s
    propose = chain.tx(T.Propose, keys[0], param="levy_bp", value="500", voting_end=t0 + 5000)
    chain.block([chain.reading(k, i, 1, t0 + 1, 0, 0) for i, k in enumerate(keys)] + [propose], dt_s=2)
    chain.block([
        chain.tx(T.Vote, keys[2], proposal=T.decode_tx(propose).id(), choice="no"),
        transfer(chain, keys[0], keys[2], 400),
        chain.tx(T.StandingGift, keys[2], beneficiary=keys[0].public, bp=500, until=t0 + 9000),
        chain.tx(T.StandingGift, keys[1], beneficiary=keys[2].public, bp=700, until=t0 + 9000),
        ballot(chain, keys[2], pensions=5000, energy=1000, roads=1000, startups=1000, canteen=1000, security=1000),
        chain.tx(T.Delegate, keys[2], topic="params", to=keys[0].public),
        chain.tx(T.Delegate, keys[3], topic="*", to=keys[2].public),
        chain.reading(keys[2], 2, 2, t0 + 20, 30, 0),
        chain.reading(keys[0], 0, 2, t0 + 20, 0, 30),
    ], dt_s=20)
    total = sum(balances(chain, k)[0] for k in keys)
    chain.block([rotate(chain, keys[2], NEW)])
    old, new = get_account(chain.kv, keys[2].public), get_account(chain.kv, NEW.public)
    assert old["household"] is None and old["rotated_to"] == NEW.public.hex() and old["balances"]["kwh"] == 0
    assert new["household"]["meter"] == "021400000002" and new["balances"]["kwh"] == 400
    assert new["ballot"] == {"pensions": 5000, "energy": 1000, "roads": 1000, "startups": 1000, "canteen": 1000,
                             "security": 1000}
    assert new["delegations"] == {"params": keys[0].public.hex()}
    assert [g["bp"] for g in new["gifts"]] == [500]
    assert get_account(chain.kv, keys[1].public)["gifts"][0]["beneficiary"] == NEW.public.hex()
    assert get_account(chain.kv, keys[3].public)["delegations"] == {"*": NEW.public.hex()}
    assert get_proposals(chain.kv)[0]["votes"] == {NEW.public.hex(): "no"}
    assert state(chain, L.key_meter("021400000002")) == NEW.public == state(chain, L.key_prm("30000000000002"))
    start = (t0 + 20) - (t0 + 20) % 1800
    assert NEW.public.hex() in get_interval_at(chain.kv, start)["households"]
    assert sum(balances(chain, k)[0] for k in keys[:2] + keys[3:] + [NEW]) == total
    assert chain.state_hash() == chain.full_hash()
    # The meter keeps counting under the new key; the interval settles to it.
    chain.block([chain.reading(NEW, 2, 3, t0 + 40, 60, 0)])
    chain.block(at=t0 + 1800 + 400)
    assert balances(chain, NEW)[0] == 400 - 30 and state(chain, L.key_account(keys[2].public)) is None
    expect_invalid(chain, transfer(chain, keys[2], keys[0]), "key_rotated")


def test_rotate_moves_the_contributions_that_weigh_the_vote():
    genesis, keys = make_genesis(4, {"vote_weight": "contribution"})
    chain = Chain(genesis)
    t0 = chain.time_s
    chain.block([chain.reading(keys[0], 0, 1, t0 + 1, 0, 0)], dt_s=2)
    chain.block([chain.reading(keys[0], 0, 2, t0 + 600, 0, 900)], dt_s=600)
    chain.block(at=t0 + 1800 + 400)
    day = L.key_contribution(keys[0].public, (t0 + 600) // 86_400)
    levy = state(chain, day)
    assert levy[0] == 90
    chain.block([rotate(chain, keys[0], NEW)])
    assert state(chain, day) is None and state(chain, L.key_contribution(NEW.public, (t0 + 600) // 86_400)) == levy


@pytest.mark.parametrize("case, reason", [
    ("new_is_household", "key_in_use"),
    ("new_is_registrar", "key_in_use"),
    ("unknown_signer", "unknown_signer"),
    ("new_key_did_not_sign", "bad_signature"),
], ids=lambda v: v)
def test_invalid_rotate(members, case, reason):
    chain, keys = members
    data = {"new_is_household": lambda: rotate(chain, keys[1], keys[2]),
            "new_is_registrar": lambda: rotate(chain, keys[1], REGISTRAR),
            "unknown_signer": lambda: rotate(chain, NEXT, NEW),
            "new_key_did_not_sign": lambda: rotate(chain, keys[1], NEW, new_signer=keys[1])}[case]()
    expect_invalid(chain, data, reason)


def test_invalid_register_a_rotated_key(members):
    chain, keys = members
    chain.block([rotate(chain, keys[1], NEW)])
    data = chain.tx(T.RegisterHousehold, REGISTRAR, key=keys[1].public, meter="021466666666",
                    prm="30000066666666", label="x", kva=6, peak_w=0)
    expect_invalid(chain, data, "key_rotated")


def test_recovery_completes_at_the_delay_not_a_second_before(members):
    chain, keys = members
    chain.block([transfer(chain, keys[0], keys[1], 250)])
    chain.block([recover(chain, keys[1], NEW)])
    start = chain.time_s
    recovery = get_account(chain.kv, keys[1].public)["recovery"]
    assert recovery == {"new_key": NEW.public.hex(), "start": start, "completes_at": start + DELAY}
    # The old key may only cancel; the new key is not the household yet.
    expect_invalid(chain, transfer(chain, keys[1], keys[0]), "recovery_pending")
    expect_invalid(chain, transfer(chain, NEW, keys[0]), "unknown_signer")
    chain.block(at=start + DELAY - 1)
    assert get_household(chain.kv, keys[1].public) is not None
    # The block at exactly start + delay completes it, before its txs: the new key acts in it.
    chain.block([transfer(chain, NEW, keys[0], 50)], at=start + DELAY)
    assert get_account(chain.kv, keys[1].public)["rotated_to"] == NEW.public.hex()
    assert balances(chain, NEW)[0] == 200 and list(chain.kv.iter_prefix(L.RECOVERY_DUE)) == []
    assert [e.kind for e in chain.results[-1].events] == ["key_moved"]


def test_recovery_pending_one_millisecond_before(members):
    chain, keys = members
    chain.block([recover(chain, keys[1], NEW)])
    due_ms = (chain.time_s + DELAY) * 1000
    result = apply_block(chain.kv, chain.genesis, BlockContext(chain.height + 1, due_ms - 1, b""), [])
    assert not any(e.kind == "key_moved" for e in result.events)
    result = apply_block(chain.kv, chain.genesis, BlockContext(chain.height + 1, due_ms, b""), [])
    assert any(e.kind == "key_moved" for e in result.events)


def test_cancel_recovery_restores_the_old_key(members):
    chain, keys = members
    chain.block([recover(chain, keys[1], NEW)])
    chain.block([chain.tx(T.CancelRecovery, keys[1])])
    assert get_account(chain.kv, keys[1].public)["recovery"] is None
    chain.block([transfer(chain, keys[1], keys[0], 5)], dt_s=DELAY)
    assert get_household(chain.kv, NEW.public) is None and get_household(chain.kv, keys[1].public) is not None
    assert chain.state_hash() == chain.full_hash()


def test_recovery_is_dropped_if_its_new_key_was_taken(members):
    chain, keys = members
    chain.block([recover(chain, keys[1], NEW)])
    chain.block([chain.tx(T.RegisterHousehold, REGISTRAR, key=NEW.public, meter="021477777777",
                          prm="30000077777777", label="x", kva=6, peak_w=0)])
    chain.block(dt_s=DELAY)
    assert [e.kind for e in chain.results[-1].events] == ["recovery_dropped"]
    assert get_account(chain.kv, keys[1].public)["recovery"] is None
    chain.block([transfer(chain, keys[1], keys[0], 5)])


def test_deregister_ends_a_pending_recovery(members):
    chain, keys = members
    chain.block([recover(chain, keys[1], NEW)])
    chain.block([deregister(chain, keys[1])])
    assert list(chain.kv.iter_prefix(L.RECOVERY_DUE)) == []
    chain.block(dt_s=DELAY)
    assert get_household(chain.kv, NEW.public) is None
    chain.block([register(chain, NEXT, 1)])


@pytest.mark.parametrize("case, reason", [
    ("by_household", "not_registrar"),
    ("unknown_household", "unknown_household"),
    ("new_key_in_use", "key_in_use"),
    ("already_pending", "recovery_pending"),
    ("to_the_solidarity_key", "reserved_key"),
], ids=lambda v: v)
def test_invalid_recover(members, case, reason):
    chain, keys = members
    if case == "already_pending":
        chain.block([recover(chain, keys[1], NEW)])
    data = {"by_household": lambda: recover(chain, keys[1], NEW, signer=keys[0]),
            "unknown_household": lambda: recover(chain, NEXT, NEW),
            "new_key_in_use": lambda: recover(chain, keys[1], keys[2]),
            "already_pending": lambda: recover(chain, keys[1], NEXT),
            "to_the_solidarity_key": lambda: chain.tx(T.RecoverKey, REGISTRAR, key=keys[1].public,
                                                      new_key=T.SOLIDARITY)}[case]()
    expect_invalid(chain, data, reason)


def test_invalid_cancel_without_recovery(members):
    chain, keys = members
    expect_invalid(chain, chain.tx(T.CancelRecovery, keys[1]), "no_recovery")


def test_invalid_service_cosigned_by_a_key_under_recovery(members):
    chain, keys = members
    chain.block([recover(chain, keys[1], NEW)])
    tx = T.Service(signer=keys[0].public, nonce=chain.nonce(keys[0]), provider=keys[1].public, minutes=5, memo="",
                   provider_sig=bytes(64), sig=bytes(64))
    tx = sign_message(sign_message(tx, chain.genesis.chain_id, keys[1], "provider_sig"), chain.genesis.chain_id,
                      keys[0])
    expect_invalid(chain, tx.encode(), "recovery_pending")


def test_recovery_delay_is_a_governed_parameter(members):
    chain, keys = members
    chain.block([chain.tx(T.Propose, keys[0], param="recovery_delay_s", value="86400",
                          voting_end=chain.time_s + 100)])
    expect_invalid(chain, chain.tx(T.Propose, keys[0], param="recovery_delay_s", value="-1",
                                   voting_end=chain.time_s + 100), "bad_value")


def test_registrar_desk_lists_pending_recoveries_and_moves(members):
    # GET /registrars (tokens.queries.get_registrar_set): the delay, each pending recovery
    # with when it completes and the old key that may cancel it, and who moved out.
    chain, keys = members
    desk = get_registrar_set(chain.kv)
    assert (desk["recovery_delay_s"], desk["recoveries"], desk["moved_out"]) == (DELAY, [], [])
    chain.block([recover(chain, keys[1], NEW)])
    started = chain.time_s
    chain.block([deregister(chain, keys[3])])
    moved_at = chain.height
    desk = get_registrar_set(chain.kv)
    assert desk["recoveries"] == [{"household": keys[1].public.hex(), "label": get_household(
        chain.kv, keys[1].public)["label"], "new_key": NEW.public.hex(), "start": started,
        "completes_at": started + DELAY, "cancellable_by": keys[1].public.hex()}]
    assert desk["moved_out"] == [{"key": keys[3].public.hex(), "height": moved_at}]
    chain.block([chain.tx(T.CancelRecovery, keys[1])])
    assert get_registrar_set(chain.kv)["recoveries"] == []
