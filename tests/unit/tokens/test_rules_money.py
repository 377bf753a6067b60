"""Transfer, StandingGift, RevokeGift, Service, PublicService, Offer/Accept, Spend (DESIGN §4)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.unit.tokens.commune import (
    REGISTRAR, ZERO_SIG, Chain, balances, expect_invalid, keypair, make_genesis, who,
)
from tokens import InvalidTx, check_tx, get_account, get_funds, get_treasury
from tokens import txs as T
from wire import compute_id, sign_message

STRANGER = keypair("stranger")


@pytest.fixture
def setup():
    genesis, keys = make_genesis(4, {"credit_limit": {"kwh": 1000, "hour": 120}})
    return Chain(genesis), keys


# --- Transfer -----------------------------------------------------------------------


def test_transfer_moves_value_down_to_the_credit_limit(setup):
    chain, keys = setup
    chain.block([chain.tx(T.Transfer, keys[0], to=keys[1].public, cls="kwh", amount=1000, memo="merci")])
    chain.block([chain.tx(T.Transfer, keys[0], to=keys[1].public, cls="hour", amount=120, memo="")])
    assert balances(chain, keys[0]) == (-1000, -120)
    assert balances(chain, keys[1]) == (1000, 120)
    assert get_account(chain.kv, keys[0].public)["nonce"] == 2


@pytest.mark.parametrize("signer, to, cls, amount, reason", [
    (0, 1, "kwh", 1001, "over_credit_limit"),
    (0, 1, "eur", 1, "unknown_class"),
    (0, 1, "kwh", 0, "zero_amount"),
    (0, 0, "kwh", 1, "self_payment"),
    (0, STRANGER, "kwh", 1, "unknown_recipient"),
    (STRANGER, 0, "kwh", 1, "unknown_signer"),
], ids=["over_credit_limit", "unknown_class", "zero", "to_self", "to_unknown_recipient", "from_unknown_signer"])
def test_invalid_transfer(setup, signer, to, cls, amount, reason):
    chain, keys = setup
    data = chain.tx(T.Transfer, who(keys, signer), to=who(keys, to).public, cls=cls, amount=amount, memo="")
    expect_invalid(chain, data, reason)


def test_invalid_transfer_replayed(setup):
    chain, keys = setup
    data = chain.tx(T.Transfer, keys[0], to=keys[1].public, cls="kwh", amount=1, memo="")
    chain.block([data])
    expect_invalid(chain, data, "stale_nonce")


def test_invalid_transfer_lower_nonce_after_a_gap(setup):
    chain, keys = setup
    chain.block([chain.tx(T.Transfer, keys[0], to=keys[1].public, cls="kwh", amount=1, memo="", nonce=100)])
    expect_invalid(chain, chain.tx(T.Transfer, keys[0], to=keys[1].public, cls="kwh", amount=1, memo="", nonce=99),
                   "stale_nonce")


def test_invalid_transfer_tampered_amount(setup):
    chain, keys = setup
    tx = T.decode_tx(chain.tx(T.Transfer, keys[0], to=keys[1].public, cls="kwh", amount=1, memo=""))
    forged = dataclasses.replace(tx, amount=999).encode()
    expect_invalid(chain, forged, "bad_signature")


def test_invalid_transfer_signed_for_another_chain(setup):
    chain, keys = setup
    tx = T.Transfer(signer=keys[0].public, nonce=1, to=keys[1].public, cls="kwh", amount=1, memo="", sig=ZERO_SIG)
    other = sign_message(tx, bytes(32), keys[0]).encode()
    expect_invalid(chain, other, "bad_signature")


# --- StandingGift / RevokeGift ----------------------------------------------------


def gift(chain, keys, bp=1000, to=1, until=None, by=0):
    until = chain.time_s + 86_400 if until is None else until
    return chain.tx(T.StandingGift, keys[by], beneficiary=keys[to].public, bp=bp, until=until)


def test_several_gifts_up_to_ten_thousand_bp(setup):
    chain, keys = setup
    chain.block([gift(chain, keys, 6000, 1), gift(chain, keys, 4000, 2)])
    assert sorted(g["bp"] for g in get_account(chain.kv, keys[0].public)["gifts"]) == [4000, 6000]


def test_invalid_gift_over_ten_thousand_bp(setup):
    chain, keys = setup
    chain.block([gift(chain, keys, 6000, 1)])
    expect_invalid(chain, gift(chain, keys, 4001, 2), "gifts_over_100pct")


def test_revoking_a_gift_frees_its_bp(setup):
    chain, keys = setup
    first = gift(chain, keys, 6000, 1)
    chain.block([first])
    chain.block([chain.tx(T.RevokeGift, keys[0], gift=compute_id(first)), gift(chain, keys, 10_000, 2)])
    assert [g["bp"] for g in get_account(chain.kv, keys[0].public)["gifts"]] == [10_000]


@pytest.mark.parametrize("bp", [0, 10_001])
def test_invalid_gift_bp(setup, bp):
    chain, keys = setup
    expect_invalid(chain, gift(chain, keys, bp), "bad_bp")


def test_invalid_gift_already_expired(setup):
    chain, keys = setup
    expect_invalid(chain, gift(chain, keys, until=chain.time_s), "expired")


def test_invalid_gift_to_self(setup):
    chain, keys = setup
    expect_invalid(chain, gift(chain, keys, to=0), "self_payment")


def test_invalid_gift_to_unknown_beneficiary(setup):
    chain, keys = setup
    data = chain.tx(T.StandingGift, keys[0], beneficiary=STRANGER.public, bp=1, until=chain.time_s + 10)
    expect_invalid(chain, data, "unknown_recipient")


def test_invalid_revoke_unknown_gift(setup):
    chain, keys = setup
    expect_invalid(chain, chain.tx(T.RevokeGift, keys[0], gift=bytes(32)), "unknown_gift")


def test_invalid_revoke_someone_elses_gift(setup):
    chain, keys = setup
    first = gift(chain, keys)
    chain.block([first])
    expect_invalid(chain, chain.tx(T.RevokeGift, keys[1], gift=compute_id(first)), "unknown_gift")


# --- Service ------------------------------------------------------------------------


def service(chain, payer, provider, minutes, provider_key=None, nonce=None):
    tx = T.Service(signer=payer.public, nonce=nonce or chain.nonce(payer), provider=provider.public, minutes=minutes,
                   memo="jardinage", provider_sig=ZERO_SIG, sig=ZERO_SIG)
    tx = sign_message(tx, chain.genesis.chain_id, provider_key or provider, "provider_sig")
    return sign_message(tx, chain.genesis.chain_id, payer).encode()


def test_service_pays_the_provider_in_minutes(setup):
    chain, keys = setup
    chain.block([service(chain, keys[0], keys[1], 90)])
    assert balances(chain, keys[0])[1] == -90 and balances(chain, keys[1])[1] == 90


@pytest.mark.parametrize("provider, minutes, provider_key, reason", [
    (1, 90, 2, "bad_signature"),
    (1, 121, None, "over_credit_limit"),
    (1, 0, None, "zero_amount"),
    (STRANGER, 5, None, "unknown_provider"),
    (0, 5, None, "self_payment"),
], ids=["without_the_providers_signature", "over_credit_limit", "zero_minutes", "unknown_provider", "to_self"])
def test_invalid_service(setup, provider, minutes, provider_key, reason):
    chain, keys = setup
    key = who(keys, provider_key) if provider_key is not None else None
    expect_invalid(chain, service(chain, keys[0], who(keys, provider), minutes, provider_key=key), reason)


# --- PublicService ------------------------------------------------------------------


def public_service(chain, to, on_call_s, signer=REGISTRAR):
    return chain.tx(T.PublicService, signer, beneficiary=to.public, on_call_s=on_call_s, memo="pompiers")


def test_public_service_credits_hours_from_the_treasury(setup):
    chain, keys = setup
    # 5 h per 24 h on call: 48 h on call is 600 minutes.
    chain.block([public_service(chain, keys[2], 48 * 3600)])
    assert balances(chain, keys[2])[1] == 600
    assert get_treasury(chain.kv)["hour"] == -600


def test_public_service_rounds_down():
    genesis, keys = make_genesis(2)
    chain = Chain(genesis)
    chain.block([public_service(chain, keys[1], 17_279)])    # 0.9999 h
    assert balances(chain, keys[1])[1] == 59


@pytest.mark.parametrize("to, on_call_s, signer, reason", [
    (2, 3600, 0, "not_registrar"),
    (2, 100, REGISTRAR, "zero_amount"),
    (STRANGER, 86_400, REGISTRAR, "unknown_recipient"),
], ids=["by_household", "too_short", "unknown_beneficiary"])
def test_invalid_public_service(setup, to, on_call_s, signer, reason):
    chain, keys = setup
    expect_invalid(chain, public_service(chain, who(keys, to), on_call_s, signer=who(keys, signer)), reason)


# --- Offer / Accept -----------------------------------------------------------------


def offer(chain, keys, give=("kwh", 500), want=("hour", 60), counterparty=None, expires=None, by=0):
    expires = chain.time_s + 3600 if expires is None else expires
    return chain.tx(T.Offer, keys[by], give_cls=give[0], give_amount=give[1], want_cls=want[0],
                    want_amount=want[1], counterparty=counterparty, expires=expires)


def test_offer_accept_exchanges_both_legs(setup):
    chain, keys = setup
    o = offer(chain, keys)
    chain.block([o])
    chain.block([chain.tx(T.Accept, keys[1], offer=compute_id(o))])
    assert balances(chain, keys[0]) == (-500, 60)
    assert balances(chain, keys[1]) == (500, -60)


def test_invalid_accept_twice(setup):
    chain, keys = setup
    o = offer(chain, keys)
    chain.block([o])
    chain.block([chain.tx(T.Accept, keys[1], offer=compute_id(o))])
    expect_invalid(chain, chain.tx(T.Accept, keys[2], offer=compute_id(o)), "unknown_offer")


def test_invalid_accept_after_expiry(setup):
    chain, keys = setup
    o = offer(chain, keys, expires=chain.time_s + 10)
    chain.block([o])
    accept = chain.tx(T.Accept, keys[1], offer=compute_id(o))
    # At expiry the offer is refused in the mempool and dropped from the state.
    with pytest.raises(InvalidTx) as info:
        check_tx(chain.kv, chain.genesis, accept, (chain.time_s + 9) * 1000)
    assert info.value.reason == "expired"
    chain.block(dt_s=9)
    expect_invalid(chain, accept, "unknown_offer")


def test_invalid_accept_by_other_than_counterparty(setup):
    chain, keys = setup
    o = offer(chain, keys, counterparty=keys[1].public)
    chain.block([o])
    expect_invalid(chain, chain.tx(T.Accept, keys[2], offer=compute_id(o)), "not_counterparty")
    chain.block([chain.tx(T.Accept, keys[1], offer=compute_id(o))])


def test_invalid_accept_own_offer(setup):
    chain, keys = setup
    o = offer(chain, keys)
    chain.block([o])
    expect_invalid(chain, chain.tx(T.Accept, keys[0], offer=compute_id(o)), "self_payment")


def test_invalid_accept_when_makers_leg_passes_the_limit(setup):
    chain, keys = setup
    o = offer(chain, keys, give=("kwh", 900))
    chain.block([o, chain.tx(T.Transfer, keys[0], to=keys[3].public, cls="kwh", amount=200, memo="")])
    expect_invalid(chain, chain.tx(T.Accept, keys[1], offer=compute_id(o)), "over_credit_limit")


def test_invalid_accept_when_takers_leg_passes_the_limit(setup):
    chain, keys = setup
    o = offer(chain, keys, want=("hour", 121))
    chain.block([o])
    expect_invalid(chain, chain.tx(T.Accept, keys[1], offer=compute_id(o)), "over_credit_limit")


def test_same_class_exchange_is_checked_on_the_net_result(setup):
    chain, keys = setup
    o = offer(chain, keys, give=("kwh", 1500), want=("kwh", 1000))
    chain.block([o])
    # Only the net result counts: the maker ends at -500 Wh, within the 1000 Wh limit.
    chain.block([chain.tx(T.Accept, keys[1], offer=compute_id(o))])
    assert balances(chain, keys[0])[0] == -500 and balances(chain, keys[1])[0] == 500


@pytest.mark.parametrize("change, reason", [
    ({"expires": 0}, "expired"),
    ({"give": ("kwh", 0)}, "zero_amount"),
    ({"want": ("gold", 1)}, "unknown_class"),
    ({"counterparty": STRANGER.public}, "unknown_counterparty"),
], ids=["expired", "zero_amount", "unknown_class", "unknown_counterparty"])
def test_invalid_offer(setup, change, reason):
    chain, keys = setup
    if "expires" in change:
        change = {"expires": chain.time_s + change["expires"]}
    expect_invalid(chain, offer(chain, keys, **change), reason)


# --- Spend --------------------------------------------------------------------------


def funded_chain():
    genesis, keys = make_genesis(4, {"levy_bp": 10_000})
    chain = Chain(genesis)
    t0 = chain.time_s
    chain.block([chain.reading(keys[0], 0, 1, t0 + 1, 0, 0)], dt_s=2)
    chain.block([chain.reading(keys[0], 0, 2, t0 + 1001, 0, 1000)], dt_s=1000)
    chain.block(at=t0 + 86_400)             # settles, then the epoch fills the funds
    return chain, keys


def test_spend_pays_out_of_a_fund():
    chain, keys = funded_chain()
    assert get_funds(chain.kv)["roads"]["kwh"] == 100
    chain.block([chain.tx(T.Spend, REGISTRAR, category="roads", to=keys[3].public, amount=100, memo="nids-de-poule")])
    assert get_funds(chain.kv)["roads"] == {"kwh": 0, "received": 100, "spent": 100}
    assert balances(chain, keys[3])[0] == 100


@pytest.mark.parametrize("signer, category, amount, reason", [
    (REGISTRAR, "roads", 101, "fund_overdraw"),
    (REGISTRAR, "fêtes", 1, "unknown_category"),
    (1, "roads", 1, "not_registrar"),
], ids=["overdraws_fund", "unknown_category", "by_household"])
def test_invalid_spend(signer, category, amount, reason):
    chain, keys = funded_chain()
    data = chain.tx(T.Spend, who(keys, signer), category=category, to=keys[3].public, amount=amount, memo="")
    expect_invalid(chain, data, reason)
