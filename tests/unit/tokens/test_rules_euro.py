"""Euros (tokens/rules_euro.py, docs/euro.md): Redeem, PayDebt and MarkPaid, their
refusals, their rounding, the governed price, and conservation."""

from __future__ import annotations

import json

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.unit.tokens.commune import REGISTRAR, Chain, expect_invalid, keypair, make_genesis
from tests.unit.tokens.test_properties import check_conservation, check_settled_intervals, scan
from tokens import InvalidLedgerBlock, get_account
from tokens import layout as L
from tokens import txs as T
from tokens.genesis import GenesisError, parse_genesis
from tokens.kv import decode_value
from tokens.rules_euro import compute_cleared_wh, compute_debt_cents, compute_redeem_cents
from wire import DecodeError, compute_id

EXPORT_WH, IMPORT_WH = 1_501, 1_000     # household 0 exports, household 2 imports, in one interval
NET_WH = EXPORT_WH - EXPORT_WH // 10     # after the 10 % levy
PRICE = 20                               # the default eur_per_kwh_cents
REF = "VIR-2026-0042"


@pytest.fixture
def setup():
    genesis, keys = make_genesis(4)
    chain = Chain(genesis)
    produce_and_settle(chain, keys)
    return chain, keys


def produce_and_settle(chain: Chain, keys) -> None:
    """Household 0 exports EXPORT_WH and household 2 imports IMPORT_WH; the interval settles."""
    t0 = chain.time_s
    chain.block([chain.reading(keys[0], 0, 1, t0 + 1, 0, 0), chain.reading(keys[2], 2, 1, t0 + 1, 0, 0)],
                at=t0 + 1)
    chain.block([chain.reading(keys[0], 0, 2, t0 + 1000, 0, EXPORT_WH),
                 chain.reading(keys[2], 2, 2, t0 + 1000, IMPORT_WH, 0)], at=t0 + 1000)
    chain.block(at=t0 + 1800 + 300)


def kwh(chain: Chain, key) -> int:
    return get_account(chain.kv, key.public)["balances"]["kwh"]


def treasury(chain: Chain) -> int:
    return decode_value(chain.kv.get(L.TREASURY))[0]


def totals(chain: Chain) -> list[int]:
    raw = chain.kv.get(L.META_EURO)
    return [0] * 5 if raw is None else decode_value(raw)


def redeem(chain: Chain, key, amount: int, cls: str = "kwh") -> bytes:
    return chain.tx(T.Redeem, key, cls=cls, amount=amount)


def pay_debt(chain: Chain, household, cents: int, ref: str = REF, by=REGISTRAR, cls: str = "kwh") -> bytes:
    return chain.tx(T.PayDebt, by, household=household.public, cls=cls, cents=cents, ref=ref)


def mark_paid(chain: Chain, payout: bytes, ref: str = REF, by=REGISTRAR) -> bytes:
    return chain.tx(T.MarkPaid, by, payout=payout, ref=ref)


def test_setup_gives_a_producer_a_balance_and_a_consumer_a_debt(setup):
    chain, keys = setup
    assert kwh(chain, keys[0]) == NET_WH == 1351 and kwh(chain, keys[2]) == -IMPORT_WH


def test_redeem_moves_kwh_to_the_treasury_and_records_a_payout_owed(setup):
    chain, keys = setup
    before = treasury(chain)
    data = redeem(chain, keys[0], 1_000)
    chain.block([data])
    assert kwh(chain, keys[0]) == NET_WH - 1_000 and treasury(chain) == before + 1_000
    payout = decode_value(chain.kv.get(L.key_payout(compute_id(data))))
    assert payout == [keys[0].public, "kwh", 1_000, PRICE, 20, chain.height, chain.time_s, "Foyer 0", "owed", 0, 0, ""]
    assert totals(chain) == [1_000, 20, 0, 0, 0]
    assert scan(chain.kv, L.EURO_LOG) == [(L.key_euro_log(chain.time_s, compute_id(data)),
                                            ["redeem", compute_id(data)])]
    check_conservation(chain.kv)


def test_redeem_rounds_down_to_the_cent(setup):
    chain, keys = setup
    data = redeem(chain, keys[0], 1_349)         # 1 349 Wh x 20 c/kWh = 26.98 c -> 26
    chain.block([data])
    assert decode_value(chain.kv.get(L.key_payout(compute_id(data))))[L.PO_CENTS] == 26


@pytest.mark.parametrize("who, amount, cls, reason", [
    (0, NET_WH + 1, "kwh", "insufficient_balance"),     # only what is held, never the credit line
    (2, 10, "kwh", "insufficient_balance"),             # a household in debt sells nothing
    (0, 0, "kwh", "zero_amount"),
    (0, 49, "kwh", "below_one_cent"),                   # 49 Wh x 20 c/kWh = 0.98 c
    (0, 10, "hour", "not_redeemable"),
    (0, 10, "euro", "unknown_class"),
])
def test_bad_redemptions_are_refused_and_change_nothing(setup, who, amount, cls, reason):
    chain, keys = setup
    expect_invalid(chain, redeem(chain, keys[who], amount, cls), reason)


def test_an_outsider_cannot_redeem(setup):
    chain, _ = setup
    expect_invalid(chain, redeem(chain, keypair("outsider"), 100), "unknown_signer")


def test_mark_paid_records_the_transfer_once(setup):
    chain, keys = setup
    data = redeem(chain, keys[0], 1_000)
    chain.block([data])
    payout_id = compute_id(data)
    chain.block([mark_paid(chain, payout_id, "SEPA E2E 0042/2026")])
    payout = decode_value(chain.kv.get(L.key_payout(payout_id)))
    assert payout[L.PO_STATUS:] == ["paid", chain.height, chain.time_s, "SEPA E2E 0042/2026"]
    assert totals(chain) == [1_000, 20, 20, 0, 0]
    expect_invalid(chain, mark_paid(chain, payout_id, "AGAIN"), "already_paid")


@pytest.mark.parametrize("payout, ref, by, reason", [
    (None, REF, REGISTRAR, "unknown_payout"),
    ("real", REF, keypair("household", 1), "not_registrar"),
    ("real", "", REGISTRAR, "bad_ref"),
    ("real", "virement n°42", REGISTRAR, "bad_ref"),     # "°" is outside the SEPA set
    ("real", "   ", REGISTRAR, "bad_ref"),
])
def test_bad_mark_paid_is_refused(setup, payout, ref, by, reason):
    chain, keys = setup
    data = redeem(chain, keys[0], 1_000)
    chain.block([data])
    expect_invalid(chain, mark_paid(chain, compute_id(data) if payout else bytes(32), ref, by), reason)


def test_a_reference_over_35_bytes_is_refused_by_the_wire(setup):
    chain, keys = setup
    with pytest.raises(DecodeError, match="ref: text exceeds 35 bytes"):
        T.decode_tx(mark_paid(chain, bytes(32), "x" * 36))


def test_pay_debt_clears_the_debt_from_the_treasury(setup):
    chain, keys = setup
    before = treasury(chain)
    data = pay_debt(chain, keys[2], 10)          # 10 c at 20 c/kWh clear 500 Wh
    chain.block([data])
    assert kwh(chain, keys[2]) == -IMPORT_WH + 500 and treasury(chain) == before - 500
    record = decode_value(chain.kv.get(L.key_debt_payment(compute_id(data))))
    assert record == [keys[2].public, "kwh", 500, PRICE, 10, chain.height, chain.time_s, "Foyer 2", REF,
                      REGISTRAR.public]
    assert totals(chain) == [0, 0, 0, 500, 10]
    check_conservation(chain.kv)


def test_the_whole_debt_is_paid_off_by_its_price_rounded_up_to_the_cent(setup):
    chain, keys = setup
    chain.block([pay_debt(chain, keys[2], 19)])          # 950 Wh cleared; 50 Wh owed, worth 1 c
    assert kwh(chain, keys[2]) == -50
    expect_invalid(chain, pay_debt(chain, keys[2], 2), "over_debt")
    chain.block([pay_debt(chain, keys[2], 1)])           # 1 c would clear 50 Wh: exactly the rest
    assert kwh(chain, keys[2]) == 0
    expect_invalid(chain, pay_debt(chain, keys[2], 1), "no_debt")
    check_conservation(chain.kv)


def test_the_treasury_may_go_below_zero_and_the_epoch_distributes_nothing_then(setup):
    chain, keys = setup
    chain.block(at=chain.genesis.genesis_time + 86_400 + 10)     # the epoch empties the treasury
    assert treasury(chain) == 0
    chain.block([pay_debt(chain, keys[2], 20)])
    assert treasury(chain) == -1_000
    chain.block(at=chain.genesis.genesis_time + 2 * 86_400 + 10)
    assert treasury(chain) == -1_000
    check_conservation(chain.kv)


@pytest.mark.parametrize("who, cents, ref, by, cls, reason", [
    (2, 10, REF, "household", "kwh", "not_registrar"),
    (0, 10, REF, "registrar", "kwh", "no_debt"),
    ("outsider", 10, REF, "registrar", "kwh", "unknown_household"),
    (2, 0, REF, "registrar", "kwh", "zero_amount"),
    (2, 21, REF, "registrar", "kwh", "over_debt"),
    (2, 10, "", "registrar", "kwh", "bad_ref"),
    (2, 10, "a\nb", "registrar", "kwh", "bad_ref"),
    (2, 10, REF, "registrar", "hour", "not_redeemable"),
])
def test_bad_debt_payments_are_refused_and_change_nothing(setup, who, cents, ref, by, cls, reason):
    chain, keys = setup
    household = keypair("outsider") if who == "outsider" else keys[who]
    signer = keys[1] if by == "household" else REGISTRAR
    expect_invalid(chain, pay_debt(chain, household, cents, ref, signer, cls), reason)


def test_a_price_of_zero_closes_redemption_and_debt_payments():
    genesis, keys = make_genesis(4, {"eur_per_kwh_cents": 0})
    chain = Chain(genesis)
    produce_and_settle(chain, keys)
    expect_invalid(chain, redeem(chain, keys[0], 1_000), "euro_closed")
    expect_invalid(chain, pay_debt(chain, keys[2], 10), "euro_closed")


def test_a_passed_proposal_changes_the_price_for_the_next_redemption(setup):
    chain, keys = setup
    propose = chain.tx(T.Propose, keys[0], param="eur_per_kwh_cents", value="35", voting_end=chain.time_s + 60)
    chain.block([propose])
    chain.block([chain.tx(T.Vote, k, proposal=compute_id(propose), choice="yes") for k in keys])
    chain.block(dt_s=120)       # tallied
    chain.block()               # in force from the block after the tally
    data = redeem(chain, keys[0], 1_000)
    chain.block([data])
    assert decode_value(chain.kv.get(L.key_payout(compute_id(data))))[L.PO_PRICE:L.PO_CENTS + 1] == [35, 35]


@pytest.mark.parametrize("value", ["-1", "100001", "2.5", "\"20\""])
def test_a_bad_price_is_refused_at_genesis(value):
    doc = {"commune": {"name": "x", "insee": "99999"}, "genesis_time": 0, "registrars": ["ab" * 32],
           "validators": [{"key": "cd" * 32, "addr": "/ip4/127.0.0.1/tcp/1"}],
           "params": {"eur_per_kwh_cents": json.loads(value)}}
    with pytest.raises(GenesisError, match="eur_per_kwh_cents"):
        parse_genesis(json.dumps(doc).encode())


def test_a_bad_price_proposal_is_refused(setup):
    chain, keys = setup
    data = chain.tx(T.Propose, keys[0], param="eur_per_kwh_cents", value="-5", voting_end=chain.time_s + 60)
    expect_invalid(chain, data, "bad_value")


@given(wh=st.integers(1, 10**12), price=st.integers(1, 100_000), debt=st.integers(1, 10**12),
       cents=st.integers(1, 10**9))
def test_rounding_is_in_the_communes_favour(wh, price, debt, cents):
    # Redeem: the cents paid never exceed the kWh's value.
    assert compute_redeem_cents(wh, price) * 1000 <= wh * price
    # PayDebt: the Wh cleared are never worth more than the cents received, and the
    # largest payment allowed clears the whole debt.
    assert compute_cleared_wh(cents, price, debt) * price <= cents * 1000
    most = compute_debt_cents(debt, price)
    assert compute_cleared_wh(most, price, debt) == debt
    assert (most - 1) * 1000 < debt * price <= most * 1000


ops = st.lists(st.tuples(st.sampled_from(["redeem", "pay", "paid", "read"]), st.integers(0, 3),
                         st.integers(0, 2_000)), max_size=25)


@settings(max_examples=40, deadline=None)
@given(plan=ops)
def test_balances_still_sum_to_what_was_created_and_euro_totals_match_the_records(plan):
    genesis, keys = make_genesis(4)
    chain = Chain(genesis)
    produce_and_settle(chain, keys)
    seq = [2, 2, 2, 2]
    index = {0: [0, EXPORT_WH], 2: [IMPORT_WH, 0]}
    redeemed: list[bytes] = []
    for kind, i, n in plan:
        if kind == "redeem":
            data = redeem(chain, keys[i], n)
        elif kind == "pay":
            data = pay_debt(chain, keys[i], n // 20)
        elif kind == "paid":
            data = mark_paid(chain, redeemed[n % len(redeemed)] if redeemed else bytes(32))
        else:
            i = 2 if i % 2 else 0          # household 2 consumes, 0 produces; readings reach the next interval
            seq[i] += 1
            index[i][0 if i == 2 else 1] += n
            data = chain.reading(keys[i], i, seq[i], chain.time_s + 60, *index[i])
        try:
            result = chain.block([data], dt_s=600)
        except InvalidLedgerBlock:          # refused: the block is not applied
            chain.block(dt_s=600)
            continue
        event(f"kept {kind}")
        if kind == "redeem" and result.tx_ids:
            redeemed.append(result.tx_ids[0])
        check_conservation(chain.kv)
        check_settled_intervals(chain.kv)
    payouts = [rec for _, rec in scan(chain.kv, L.PAYOUT)]
    payments = [rec for _, rec in scan(chain.kv, L.DEBT_PAYMENT)]
    assert totals(chain) == [
        sum(p[L.PO_AMOUNT] for p in payouts), sum(p[L.PO_CENTS] for p in payouts),
        sum(p[L.PO_CENTS] for p in payouts if p[L.PO_STATUS] == "paid"),
        sum(p[L.DP_AMOUNT] for p in payments), sum(p[L.DP_CENTS] for p in payments)]
    assert len(scan(chain.kv, L.EURO_LOG)) == len(payouts) + len(payments) + sum(
        1 for p in payouts if p[L.PO_STATUS] == "paid")
    assert chain.state_hash() == chain.full_hash()
