"""Gifts to any account (tokens/rules_assoc.py, docs/euro.md): associations registered by
the registrar, and standing gifts to a category fund, an association or the solidarity
target, flowing at mint time."""

from __future__ import annotations

import pytest

from tests.unit.tokens.commune import REGISTRAR, Chain, expect_invalid, keypair, make_genesis
from tests.unit.tokens.test_properties import check_conservation, check_settled_intervals
from tokens import get_account
from tokens import layout as L
from tokens import txs as T
from tokens.kv import decode_value
from tokens.rules_assoc import compute_fund_address
from wire import compute_id

EXPORT_WH = 1_501
NET_WH = EXPORT_WH - EXPORT_WH // 10        # 1 351 after the 10 % levy
CLUB = keypair("association", 0)
OTHER_CLUB = keypair("association", 1)


@pytest.fixture
def setup():
    genesis, keys = make_genesis(4)
    return Chain(genesis), keys


def add(chain: Chain, key=CLUB, name: str = "Les Amis du Four", by=REGISTRAR) -> bytes:
    return chain.tx(T.RegisterAssociation, by, key=key.public, name=name)


def remove(chain: Chain, key=CLUB, by=REGISTRAR) -> bytes:
    return chain.tx(T.RemoveAssociation, by, key=key.public, memo="dissoute")


def gift(chain: Chain, giver, to: bytes, bp: int = 5000) -> bytes:
    return chain.tx(T.StandingGift, giver, beneficiary=to, bp=bp, until=chain.time_s + 86_400)


def produce_and_settle(chain: Chain, keys) -> None:
    t0 = chain.time_s
    chain.block([chain.reading(keys[0], 0, 1, t0 + 1, 0, 0)], at=t0 + 1)
    chain.block([chain.reading(keys[0], 0, 2, t0 + 1000, 0, EXPORT_WH)], at=t0 + 1000)
    chain.block(at=t0 + 1800 + 300)


def kwh(chain: Chain, addr: bytes) -> int:
    return get_account(chain.kv, addr)["balances"]["kwh"]


def fund(chain: Chain, name: str) -> list[int]:
    return decode_value(chain.kv.get(L.key_fund(name)))


def test_registrar_registers_and_strikes_off_an_association(setup):
    chain, _ = setup
    chain.block([add(chain)])
    assert decode_value(chain.kv.get(L.key_association(CLUB.public))) == ["Les Amis du Four", chain.height, 0]
    chain.block([remove(chain)])
    assert decode_value(chain.kv.get(L.key_association(CLUB.public)))[2] == chain.height
    expect_invalid(chain, remove(chain), "unknown_association")
    chain.block([add(chain, name="Les Amis du Four, refondée")])     # a removed key may come back
    assert decode_value(chain.kv.get(L.key_association(CLUB.public)))[2] == 0


@pytest.mark.parametrize("case, reason", [
    ("household", "not_registrar"),
    ("blank", "bad_name"),
    ("household_key", "key_in_use"),
    ("registrar_key", "key_in_use"),
    ("solidarity", "reserved_key"),
    ("fund", "reserved_key"),
    ("twice", "already_registered"),
    ("same_name", "name_taken"),
])
def test_bad_association_registrations_are_refused(setup, case, reason):
    chain, keys = setup
    chain.block([add(chain)])
    key = {"household_key": keys[1], "registrar_key": REGISTRAR, "twice": CLUB}.get(case, OTHER_CLUB)
    if case == "solidarity":
        data = chain.tx(T.RegisterAssociation, REGISTRAR, key=T.SOLIDARITY, name="x")
    elif case == "fund":
        data = chain.tx(T.RegisterAssociation, REGISTRAR, key=compute_fund_address("roads"), name="x")
    else:
        data = add(chain, key, "   " if case == "blank" else "Les Amis du Four" if case == "same_name" else "Club",
                   keys[0] if case == "household" else REGISTRAR)
    expect_invalid(chain, data, reason)


def test_a_household_cannot_be_registered_under_an_associations_key(setup):
    chain, _ = setup
    chain.block([add(chain)])
    data = chain.tx(T.RegisterHousehold, REGISTRAR, key=CLUB.public, meter="021499999999", prm="30000099999999",
                    label="x", kva=6, peak_w=0)
    expect_invalid(chain, data, "key_in_use")


def test_a_gift_to_a_category_fund_flows_into_the_fund_at_mint(setup):
    chain, keys = setup
    chain.block([gift(chain, keys[0], compute_fund_address("roads"), 2000)])
    produce_and_settle(chain, keys)
    share = NET_WH * 2000 // 10_000
    assert fund(chain, "roads") == [share, share, 0] and kwh(chain, keys[0].public) == NET_WH - share
    check_conservation(chain.kv)
    check_settled_intervals(chain.kv)


def test_a_gift_to_an_association_flows_to_its_account_which_may_spend_it_without_credit(setup):
    chain, keys = setup
    chain.block([add(chain), gift(chain, keys[0], CLUB.public, 5000)])
    produce_and_settle(chain, keys)
    share = NET_WH * 5000 // 10_000
    assert kwh(chain, CLUB.public) == share
    chain.block([chain.tx(T.Transfer, CLUB, to=keys[3].public, cls="kwh", amount=100, memo="fournil")])
    assert kwh(chain, CLUB.public) == share - 100
    expect_invalid(chain, chain.tx(T.Transfer, CLUB, to=keys[3].public, cls="kwh", amount=share, memo=""),
                   "insufficient_balance")
    chain.block([chain.tx(T.Transfer, keys[0], to=CLUB.public, cls="kwh", amount=50, memo="don")])
    assert kwh(chain, CLUB.public) == share - 50
    check_conservation(chain.kv)


def test_a_struck_off_association_gets_nothing_and_the_share_stays_with_the_producer(setup):
    chain, keys = setup
    chain.block([add(chain), gift(chain, keys[0], CLUB.public, 5000)])
    chain.block([remove(chain)])
    produce_and_settle(chain, keys)
    assert kwh(chain, CLUB.public) == 0 and kwh(chain, keys[0].public) == NET_WH
    expect_invalid(chain, gift(chain, keys[1], CLUB.public), "unknown_recipient")
    expect_invalid(chain, chain.tx(T.Transfer, keys[0], to=CLUB.public, cls="kwh", amount=1, memo=""),
                   "unknown_recipient")
    check_conservation(chain.kv)


def test_a_gift_to_a_fund_removed_by_governance_stays_with_the_producer(setup):
    chain, keys = setup
    chain.block([gift(chain, keys[0], compute_fund_address("canteen"), 5000)])
    cats = '[["pensions",5000],["energy",1000],["roads",1000],["startups",2000],["security",1000]]'
    propose = chain.tx(T.Propose, keys[0], param="allocation_categories", value=cats, voting_end=chain.time_s + 60)
    chain.block([propose])
    chain.block([chain.tx(T.Vote, k, proposal=compute_id(propose), choice="yes") for k in keys])
    chain.block(dt_s=120)
    chain.block()
    produce_and_settle(chain, keys)
    assert kwh(chain, keys[0].public) == NET_WH
    check_conservation(chain.kv)


@pytest.mark.parametrize("target, reason", [
    ("outsider", "unknown_recipient"),
    ("unknown_fund", "unknown_recipient"),
    ("self", "self_payment"),
])
def test_gifts_to_unknown_targets_are_refused(setup, target, reason):
    chain, keys = setup
    to = {"outsider": keypair("outsider").public, "unknown_fund": compute_fund_address("fêtes"),
          "self": keys[0].public}[target]
    expect_invalid(chain, gift(chain, keys[0], to), reason)


def test_gifts_split_between_a_fund_an_association_and_solidarity_conserve_value(setup):
    chain, keys = setup
    h = chain.genesis.households[3]
    flag = chain.tx(T.UpdateHousehold, REGISTRAR, key=h.key, meter=h.meter, kva=h.kva, peak_w=h.peak_w,
                    solidarity=True)
    chain.block([flag, add(chain)])
    chain.block([gift(chain, keys[0], compute_fund_address("energy"), 1000), gift(chain, keys[0], CLUB.public, 2000),
                 gift(chain, keys[0], T.SOLIDARITY, 3000)])
    produce_and_settle(chain, keys)
    parts = [NET_WH * bp // 10_000 for bp in (1000, 2000, 3000)]
    assert (fund(chain, "energy")[0], kwh(chain, CLUB.public), kwh(chain, keys[3].public)) == tuple(parts)
    assert kwh(chain, keys[0].public) == NET_WH - sum(parts)
    check_conservation(chain.kv)
    check_settled_intervals(chain.kv)
