"""Token classes from genesis (docs/classes.md): the ``classes`` section, Issue, and the
class-generic rules (Transfer, Offer/Accept, credit limits) on a commune-defined class."""

from __future__ import annotations

import json

import pytest

from tests.unit.tokens.commune import REGISTRAR, Chain, expect_invalid, keypair, make_genesis
from tests.unit.tokens.membership import rotate
from tests.unit.tokens.test_properties import check_conservation
from tests.unit.tokens.test_sealing import SealChain
from tokens import get_account, genesis_writes, get_rescanned_state_hash
from tokens import layout as L
from tokens import txs as T
from tokens.genesis import GenesisError
from tokens.queries import get_class_supply, get_classes
from tokens.visibility import get_entry_reader
from wire import compute_id

CLASSES = [
    {"name": "recycled", "unit": "g", "label": "kg recycled", "decimals": 3, "issued_by": "registrar"},
    {"name": "points", "unit": "pt", "credit_limit": 50},
    {"name": "sel", "unit": "grain", "credit_limit": 200, "issued_by": "none"},
]
CLUB = keypair("association", 0)


@pytest.fixture
def setup():
    genesis, keys = make_genesis(4, classes=CLASSES)
    return Chain(genesis), keys


def bal(chain: Chain, key, cls: str) -> int:
    return get_account(chain.kv, key.public)["balances"].get(cls, 0)


def issue(chain: Chain, cls: str, to, amount: int, by=REGISTRAR) -> bytes:
    return chain.tx(T.Issue, by, cls=cls, to=to.public, amount=amount, memo="déchetterie")


# --- the genesis section ---------------------------------------------------------------


def test_genesis_declares_classes_with_their_credit_limits():
    genesis, _ = make_genesis(2, classes=CLASSES)
    assert genesis.class_names == ("kwh", "hour", "recycled", "points", "sel")
    assert genesis.get_class("recycled").decimals == 3 and genesis.get_class("recycled").label == "kg recycled"
    assert genesis.get_class("points").label == "pt" and genesis.get_class("points").issued_by == "registrar"
    assert genesis.params["credit_limit"] == {"kwh": 50_000, "hour": 600, "recycled": 0, "points": 50, "sel": 200}


def test_a_genesis_without_classes_is_unchanged():
    # Existing communes: no classes section, the same parameters and state entries.
    plain, _ = make_genesis(2)
    empty, _ = make_genesis(2, classes=[])
    assert plain.classes == () and plain.class_names == ("kwh", "hour")
    assert plain.params["credit_limit"] == {"kwh": 50_000, "hour": 600}
    # Only what hangs on the chain id (the genesis bytes differ) may differ.
    chain_bound = (L.META_CHAIN, L.META_STATE_HASH, L.TREE)
    same = [{k: v for k, v in genesis_writes(g).items() if not k.startswith(chain_bound)} for g in (plain, empty)]
    assert same[0] == same[1] and len(same[0]) > 10
    assert not any(k.startswith((L.CLASS_BALANCE, L.CLASS_SUPPLY)) for k in genesis_writes(plain))


@pytest.mark.parametrize("classes, message", [
    ({"name": "points"}, "classes: expected a list"),
    ([{"name": "Points", "unit": "pt"}], "classes[0].name: expected 1 to 8 lowercase"),
    ([{"name": "recycled_kg", "unit": "g"}], "classes[0].name: expected 1 to 8"),
    ([{"name": "9lives", "unit": "pt"}], "classes[0].name"),
    ([{"name": "kwh", "unit": "Wh"}], "classes[0].name: kwh is built in"),
    ([{"name": "hour", "unit": "min"}], "hour is built in"),
    ([{"name": "points", "unit": "pt"}, {"name": "points", "unit": "p"}], "classes: duplicate class 'points'"),
    ([{"name": "points"}], "classes[0].unit: expected a unit name"),
    ([{"name": "points", "unit": ""}], "classes[0].unit"),
    ([{"name": "points", "unit": "pt", "credit_limit": -1}], "classes[0].credit_limit: expected an integer >= 0"),
    ([{"name": "points", "unit": "pt", "decimals": 12}], "classes[0].decimals: at most 9"),
    ([{"name": "points", "unit": "pt", "issued_by": "mayor"}], "classes[0].issued_by: one of registrar, none"),
    ([{"name": "points", "unit": "pt", "rate": 3}], "classes[0]: unknown field 'rate'"),
    (["points"], "classes[0]: expected {name"),
    ([{"name": f"c{i}", "unit": "u"} for i in range(17)], "at most 16"),
], ids=["not_a_list", "uppercase", "too_long", "digit_first", "kwh", "hour", "duplicate", "no_unit", "empty_unit",
        "negative_limit", "decimals", "issuer", "unknown_field", "not_an_object", "too_many"])
def test_invalid_genesis_classes(classes, message):
    with pytest.raises(GenesisError) as info:
        make_genesis(2, classes=classes)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_invalid_genesis_class_limit_given_twice():
    with pytest.raises(GenesisError, match=r"params.credit_limit.points: set it in the class's own credit_limit"):
        make_genesis(2, {"credit_limit": {"kwh": 1, "hour": 1, "points": 5}}, classes=[{"name": "points", "unit": "pt"}])


def test_invalid_credit_limit_for_an_undeclared_class():
    with pytest.raises(GenesisError, match=r"params.credit_limit: expected one limit per class \(kwh, hour\)"):
        make_genesis(2, {"credit_limit": {"kwh": 1, "hour": 1, "points": 5}})


# --- Issue -------------------------------------------------------------------------------


def test_registrar_issues_a_class_to_a_household_and_an_association(setup):
    chain, keys = setup
    chain.block([chain.tx(T.RegisterAssociation, REGISTRAR, key=CLUB.public, name="Ressourcerie")])
    chain.block([issue(chain, "recycled", keys[2], 12_500), issue(chain, "recycled", CLUB, 500)])
    assert bal(chain, keys[2], "recycled") == 12_500 and bal(chain, CLUB, "recycled") == 500
    assert get_class_supply(chain.kv, "recycled") == 13_000
    # The account record of kwh and hour is untouched; the class has its own entry.
    assert get_account(chain.kv, keys[2].public)["balances"] == {"kwh": 0, "hour": 0, "recycled": 12_500}
    check_conservation(chain.kv)


@pytest.mark.parametrize("cls, by, to, amount, reason", [
    ("recycled", 0, 1, 10, "not_registrar"),
    ("sel", REGISTRAR, 1, 10, "not_issuable"),
    ("kwh", REGISTRAR, 1, 10, "not_issuable"),
    ("hour", REGISTRAR, 1, 10, "not_issuable"),
    ("euro", REGISTRAR, 1, 10, "unknown_class"),
    ("recycled", REGISTRAR, "stranger", 10, "unknown_recipient"),
    ("recycled", REGISTRAR, 1, 0, "zero_amount"),
], ids=["household_signer", "mutual_credit_class", "kwh", "hour", "unknown_class", "unknown_recipient", "zero"])
def test_invalid_issue(setup, cls, by, to, amount, reason):
    chain, keys = setup
    signer = keys[by] if isinstance(by, int) else by
    target = keypair("stranger") if to == "stranger" else keys[to]
    expect_invalid(chain, issue(chain, cls, target, amount, by=signer), reason)


def test_invalid_issue_past_the_supply_bound(setup):
    chain, keys = setup
    chain.block([issue(chain, "points", keys[0], 2**63 - 1)])
    expect_invalid(chain, issue(chain, "points", keys[1], 1), "supply_overflow")


# --- class-generic rules -----------------------------------------------------------------


def test_transfer_of_an_issued_class_down_to_its_credit_limit(setup):
    chain, keys = setup
    chain.block([issue(chain, "points", keys[0], 100)])
    chain.block([chain.tx(T.Transfer, keys[0], to=keys[1].public, cls="points", amount=150, memo="merci")])
    assert bal(chain, keys[0], "points") == -50 and bal(chain, keys[1], "points") == 150
    expect_invalid(chain, chain.tx(T.Transfer, keys[0], to=keys[1].public, cls="points", amount=1, memo=""),
                   "over_credit_limit")
    # recycled has no credit line: nothing to spend before it is issued.
    expect_invalid(chain, chain.tx(T.Transfer, keys[2], to=keys[1].public, cls="recycled", amount=1, memo=""),
                   "over_credit_limit")
    check_conservation(chain.kv)


def test_a_balance_back_to_zero_leaves_the_state(setup):
    chain, keys = setup
    chain.block([issue(chain, "points", keys[0], 30)])
    chain.block([chain.tx(T.Transfer, keys[0], to=keys[1].public, cls="points", amount=30, memo="")])
    assert chain.kv.get(L.key_class_balance(keys[0].public, "points")) is None
    assert get_account(chain.kv, keys[0].public)["balances"] == {"kwh": 0, "hour": 0}


def test_a_mutual_credit_class_is_created_by_spending_into_credit(setup):
    chain, keys = setup
    chain.block([chain.tx(T.Transfer, keys[0], to=keys[1].public, cls="sel", amount=200, memo="pain")])
    assert (bal(chain, keys[0], "sel"), bal(chain, keys[1], "sel")) == (-200, 200)
    expect_invalid(chain, chain.tx(T.Transfer, keys[0], to=keys[2].public, cls="sel", amount=1, memo=""),
                   "over_credit_limit")
    check_conservation(chain.kv)


def test_invalid_transfer_of_an_undeclared_class(setup):
    chain, keys = setup
    data = chain.tx(T.Transfer, keys[0], to=keys[1].public, cls="euro", amount=1, memo="")
    expect_invalid(chain, data, "unknown_class")
    # The same name on a commune that does not declare it.
    plain = Chain(make_genesis(4)[0])
    expect_invalid(plain, plain.tx(T.Transfer, keys[0], to=keys[1].public, cls="points", amount=1, memo=""),
                   "unknown_class")


def test_offer_and_accept_exchange_a_commune_class_for_kwh(setup):
    chain, keys = setup
    chain.block([issue(chain, "recycled", keys[2], 5_000)])
    offer = chain.tx(T.Offer, keys[2], give_cls="recycled", give_amount=2_000, want_cls="kwh", want_amount=700,
                     counterparty=None, expires=chain.time_s + 3600)
    chain.block([offer])
    chain.block([chain.tx(T.Accept, keys[3], offer=compute_id(offer))])
    assert bal(chain, keys[2], "recycled") == 3_000 and bal(chain, keys[3], "recycled") == 2_000
    assert bal(chain, keys[2], "kwh") == 700 and bal(chain, keys[3], "kwh") == -700
    check_conservation(chain.kv)


def test_invalid_accept_over_a_class_credit_limit(setup):
    chain, keys = setup
    offer = chain.tx(T.Offer, keys[0], give_cls="kwh", give_amount=100, want_cls="points", want_amount=51,
                     counterparty=None, expires=chain.time_s + 3600)
    chain.block([offer])
    expect_invalid(chain, chain.tx(T.Accept, keys[1], offer=compute_id(offer)), "over_credit_limit")


def test_invalid_offer_of_an_undeclared_class(setup):
    chain, keys = setup
    expect_invalid(chain, chain.tx(T.Offer, keys[0], give_cls="euro", give_amount=1, want_cls="kwh", want_amount=1,
                                   counterparty=None, expires=chain.time_s + 3600), "unknown_class")


def test_class_balances_move_with_a_rotated_key(setup):
    chain, keys = setup
    chain.block([issue(chain, "points", keys[0], 40)])
    new = keypair("rotated", 0)
    chain.block([rotate(chain, keys[0], new)])
    assert bal(chain, new, "points") == 40
    assert chain.kv.get(L.key_class_balance(keys[0].public, "points")) is None


def test_a_class_balance_is_readable_by_its_household_only(setup):
    chain, keys = setup
    chain.block([issue(chain, "points", keys[0], 40)])
    assert get_entry_reader(chain.kv, L.key_class_balance(keys[0].public, "points")) == keys[0].public
    assert get_entry_reader(chain.kv, L.key_class_supply("points")) is not None


def test_classes_view_lists_units_limits_and_supply(setup):
    chain, keys = setup
    chain.block([issue(chain, "recycled", keys[0], 1_250)])
    view = {c["name"]: c for c in get_classes(chain.kv, chain.genesis)}
    assert list(view) == ["kwh", "hour", "recycled", "points", "sel"]
    assert view["recycled"]["supply"] == 1_250 and view["sel"]["supply"] is None
    assert view["points"]["credit_limit"] == 50 and view["kwh"]["credit_limit"] == 50_000
    json.dumps(view)


def test_class_balances_are_salted_leaves_on_a_sealing_chain():
    # docs/privacy.md "Private state leaves": a cbal/ entry is the household's own.
    chain = SealChain(classes=CLASSES)
    h = chain.households
    chain.block([chain.set_data_key(k) for k in h])
    # An Issue names the household credited: sealed to the commune key on this chain.
    chain.expect_invalid(issue(chain, "points", h[0], 40), "must_seal")
    chain.block([chain.registrar_tx(T.Issue, REGISTRAR, cls="points", to=h[0].public, amount=40, memo="déchetterie")])
    inner = T.Transfer(signer=h[0].public, nonce=chain.nonce(h[0]), to=h[1].public, cls="points", amount=15, memo="",
                       sig=bytes(64))
    chain.block([chain.seal(inner, h[0])])
    assert (bal(chain, h[0], "points"), bal(chain, h[1], "points")) == (25, 15)
    assert get_rescanned_state_hash(chain.kv, chain.keys) == chain.state_hash()
    assert chain.replay(chain.keys) == chain.state_hash()


def test_a_proposal_changes_a_class_credit_limit_and_must_name_every_class(setup):
    chain, keys = setup
    limits = {"kwh": 50_000, "hour": 600, "recycled": 0, "points": 80, "sel": 200}
    ok = chain.tx(T.Propose, keys[0], param="credit_limit", value=json.dumps(limits), voting_end=chain.time_s + 10)
    chain.block([ok])
    expect_invalid(chain, chain.tx(T.Propose, keys[0], param="credit_limit", value=json.dumps(
        {"kwh": 1, "hour": 1}), voting_end=chain.time_s + 10), "bad_value")
    chain.block([chain.tx(T.Vote, k, proposal=compute_id(ok), choice="yes") for k in keys])
    chain.block(dt_s=20)
    assert {c["name"]: c["credit_limit"] for c in get_classes(chain.kv, chain.genesis)}["points"] == 80
    chain.block([chain.tx(T.Transfer, keys[0], to=keys[1].public, cls="points", amount=80, memo="")])
    assert bal(chain, keys[0], "points") == -80


def test_invalid_redeem_of_a_commune_class(setup):
    # docs/classes.md: only kwh has a euro price; a commune class is not redeemed.
    chain, keys = setup
    chain.block([issue(chain, "recycled", keys[0], 1_000)])
    expect_invalid(chain, chain.tx(T.Redeem, keys[0], cls="recycled", amount=500), "not_redeemable")
