"""Euros (issue 19 item 2; docs/euro.md): an auditable redemption record, not an exchange.

The ledger never holds euros. It records, at a governed price (``eur_per_kwh_cents``):
- ``Redeem``: an account sells kWh it holds to the treasury; the treasury owes it the
  price in euro cents, a *payout* in status ``owed``;
- ``MarkPaid`` (registrar): the commune paid that payout by a bank transfer whose
  reference (a SEPA end-to-end id, <= 35 characters) is recorded; status ``paid``;
- ``PayDebt`` (registrar): a household paid the commune euro cents that clear part or
  all of its kWh debt (a negative balance).

Conservation. kWh only ever moves between an account and the treasury, so
Σ balances + treasury + funds = minted − allocated stays exact: Redeem moves kWh to the
treasury; PayDebt moves kWh from the treasury to the household, which may take the
treasury's kwh below zero (the commune holds the euros instead; the next epoch's levy
first fills the hole, as process_epoch distributes only a positive treasury).

Rounding, in the commune's favour, on integers only:
- Redeem: cents = floor(Wh × price / 1000); a sale worth less than one cent is refused;
- PayDebt: the Wh cleared = min(floor(cents × 1000 / price), debt); a payment may be at
  most ceil(debt × price / 1000) cents, the price of the whole debt rounded up to the
  cent, so that a debt can always be cleared exactly.

Only ``kwh`` has a euro price: hours of the time bank are mutual credit between
neighbours, and are not sold for euros (docs/euro.md says why).
"""

from __future__ import annotations

import re

from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.genesis import DEFAULT_PARAMS
from tokens.ledger import Ledger
from tokens.rules_assoc import get_holder_label
from tokens.txs import MarkPaid, PayDebt, Redeem

KWH = L.CLASS_INDEX["kwh"]
PRICE_PARAM = "eur_per_kwh_cents"
WH_PER_KWH = 1000
STATUS_OWED, STATUS_PAID = "owed", "paid"
KIND_REDEEM, KIND_PAY_DEBT, KIND_PAID = "redeem", "pay-debt", "paid"
MAX_CENTS = 2**63 - 1           # every stored integer fits msgpack's int64
MAX_REF_CHARS = 35
# The SEPA character set (EPC "Latin" subset) of a remittance or end-to-end reference.
SEPA_REF_RE = re.compile(r"[A-Za-z0-9/\-?:().,'+ ]{1,35}")
NO_TOTALS = [0, 0, 0, 0, 0]


def get_price_cents(lg: Ledger, cls: str) -> int:
    """The euro price in cents of one kWh, for ``cls`` (only kwh has one)."""
    if cls not in lg.genesis.class_names:
        raise InvalidTx("unknown_class", f"no token class {cls!r} ({', '.join(lg.genesis.class_names)})")
    if cls != "kwh":
        raise InvalidTx("not_redeemable", f"{cls} has no euro price: only kwh is redeemed (docs/euro.md)")
    # A chain whose stored parameters predate the euro price uses the default.
    price = lg.params.get(PRICE_PARAM, DEFAULT_PARAMS[PRICE_PARAM])
    if price == 0:
        raise InvalidTx("euro_closed", f"{PRICE_PARAM} is 0: redemption and debt payments are closed")
    return price


def compute_redeem_cents(wh: int, price: int) -> int:
    """Cents owed for ``wh`` at ``price`` cents per kWh, rounded down."""
    return wh * price // WH_PER_KWH


def compute_debt_cents(debt_wh: int, price: int) -> int:
    """The most a debt payment may be: the whole debt's price, rounded up to the cent."""
    return -(-debt_wh * price // WH_PER_KWH)


def compute_cleared_wh(cents: int, price: int, debt_wh: int) -> int:
    """Wh of debt that ``cents`` clear, rounded down, at most the debt."""
    return min(cents * WH_PER_KWH // price, debt_wh)


def check_ref(ref: str) -> None:
    """A bank reference: 1 to 35 characters of the SEPA set."""
    if not SEPA_REF_RE.fullmatch(ref) or not ref.strip():
        raise InvalidTx("bad_ref", f"a reference is 1 to {MAX_REF_CHARS} characters of A-Z a-z 0-9 / - ? : ( ) "
                                   f". , ' + and space, not {ref[:40]!r}")


def get_euro_totals(lg: Ledger) -> list[int]:
    return list(lg.get_meta(L.META_EURO, NO_TOTALS))


def check_totals(totals: list[int]) -> None:
    if max(totals) > MAX_CENTS:
        raise InvalidTx("overflow", "the euro totals would pass 2^63 - 1")


def process_euro_log(lg: Ledger, tx_id: bytes, kind: str, subject: bytes) -> None:
    lg.ov.put(L.key_euro_log(lg.now_s, tx_id), [kind, subject])


def process_redeem(lg: Ledger, tx: Redeem, tx_id: bytes) -> None:
    # Issue 19 item 2: an account sells kWh it holds to the treasury; a payout is owed.
    label = get_holder_label(lg, tx.signer)
    if label is None:
        lg.require_household(tx.signer)
    price = get_price_cents(lg, tx.cls)
    if tx.amount <= 0:
        raise InvalidTx("zero_amount", "amount must be positive")
    acct = lg.get_account(tx.signer)
    # Only what is held is sold: a credit line is never cashed out.
    if acct[KWH] < tx.amount:
        raise InvalidTx("insufficient_balance", f"the account holds {acct[KWH]} Wh, less than {tx.amount}")
    cents = compute_redeem_cents(tx.amount, price)
    if cents == 0:
        raise InvalidTx("below_one_cent", f"{tx.amount} Wh at {price} cents/kWh is worth less than one cent")
    totals = get_euro_totals(lg)
    totals[L.EU_REDEEMED] += tx.amount
    totals[L.EU_OWED] += cents
    check_totals(totals)
    lg.process_nonce(tx.signer, tx.nonce)
    lg.process_credit(tx.signer, "kwh", -tx.amount)
    lg.process_treasury(KWH, tx.amount)
    lg.ov.put(L.key_payout(tx_id), [tx.signer, tx.cls, tx.amount, price, cents, lg.height, lg.now_s, label,
                                    STATUS_OWED, 0, 0, ""])
    process_euro_log(lg, tx_id, KIND_REDEEM, tx_id)
    lg.ov.put(L.META_EURO, totals)


def process_pay_debt(lg: Ledger, tx: PayDebt, tx_id: bytes) -> None:
    # Issue 19 item 2: the registrar records euros received that clear a kWh debt.
    lg.require_registrar(tx.signer)
    label = get_holder_label(lg, tx.household)
    if label is None:
        raise InvalidTx("unknown_household", f"{tx.household.hex()[:16]}… is not a household, present or former")
    price = get_price_cents(lg, tx.cls)
    if tx.cents <= 0:
        raise InvalidTx("zero_amount", "cents must be positive")
    check_ref(tx.ref)
    debt = -lg.get_account(tx.household)[KWH]
    if debt <= 0:
        raise InvalidTx("no_debt", f"the household's kwh balance is {-debt} Wh: it owes nothing")
    most = compute_debt_cents(debt, price)
    if tx.cents > most:
        raise InvalidTx("over_debt", f"a debt of {debt} Wh at {price} cents/kWh is paid off by {most} cents; "
                                     f"{tx.cents} is more")
    cleared = compute_cleared_wh(tx.cents, price, debt)
    if cleared == 0:
        raise InvalidTx("below_one_wh", f"{tx.cents} cents at {price} cents/kWh clear less than one Wh")
    totals = get_euro_totals(lg)
    totals[L.EU_CLEARED] += cleared
    totals[L.EU_RECEIVED] += tx.cents
    check_totals(totals)
    lg.process_nonce(tx.signer, tx.nonce)
    lg.process_credit(tx.household, "kwh", cleared)
    lg.process_treasury(KWH, -cleared)
    lg.ov.put(L.key_debt_payment(tx_id), [tx.household, tx.cls, cleared, price, tx.cents, lg.height, lg.now_s,
                                          label, tx.ref, tx.signer])
    process_euro_log(lg, tx_id, KIND_PAY_DEBT, tx_id)
    lg.ov.put(L.META_EURO, totals)


def process_mark_paid(lg: Ledger, tx: MarkPaid, tx_id: bytes) -> None:
    # Issue 19 item 2: the registrar records the bank transfer that paid a payout.
    lg.require_registrar(tx.signer)
    check_ref(tx.ref)
    key = L.key_payout(tx.payout)
    payout = lg.ov.get(key)
    if payout is None:
        raise InvalidTx("unknown_payout", f"no payout {tx.payout.hex()[:16]}… (the id of a Redeem)")
    if payout[L.PO_STATUS] != STATUS_OWED:
        raise InvalidTx("already_paid", f"payout {tx.payout.hex()[:16]}… was paid at height "
                                        f"{payout[L.PO_PAID_HEIGHT]} (ref {payout[L.PO_REF]!r})")
    totals = get_euro_totals(lg)
    totals[L.EU_PAID] += payout[L.PO_CENTS]
    lg.process_nonce(tx.signer, tx.nonce)
    payout = list(payout)
    payout[L.PO_STATUS], payout[L.PO_PAID_HEIGHT], payout[L.PO_PAID_TIME], payout[L.PO_REF] = (
        STATUS_PAID, lg.height, lg.now_s, tx.ref)
    lg.ov.put(key, payout)
    process_euro_log(lg, tx_id, KIND_PAID, tx.payout)
    lg.ov.put(L.META_EURO, totals)
