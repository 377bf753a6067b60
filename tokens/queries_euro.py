"""Read helpers over committed state for euros and associations (docs/euro.md): payouts,
the accountant's ledger of euro events, the euro totals and the associations.

Like tokens/queries.py, each takes a ``KV`` and returns JSON-ready values; none writes.
"""

from __future__ import annotations

from typing import Any

from tokens import layout as L
from tokens.kv import KV, decode_value
from tokens.rules_euro import KIND_PAID, KIND_PAY_DEBT, STATUS_OWED, STATUS_PAID

EURO_LOG_KEY_BYTES = 8 + 32          # time ‖ tx id, after the ``elog/`` prefix


def get_euro_totals(kv: KV) -> dict[str, int]:
    """Since genesis: Wh redeemed, cents owed by redemptions, cents paid out, Wh of debt
    cleared by euro payments, cents received; and the cents still owed."""
    raw = kv.get(L.META_EURO)
    redeemed, owed, paid, cleared, received = [0] * 5 if raw is None else decode_value(raw)
    return {"redeemed_wh": redeemed, "owed_cents": owed, "paid_cents": paid, "outstanding_cents": owed - paid,
            "cleared_wh": cleared, "received_cents": received}


def get_payout_view(payout_id: bytes, rec: list) -> dict[str, Any]:
    return {"id": payout_id.hex(), "account": rec[L.PO_ACCOUNT].hex(), "label": rec[L.PO_LABEL],
            "class": rec[L.PO_CLASS], "amount": rec[L.PO_AMOUNT], "price_cents": rec[L.PO_PRICE],
            "cents": rec[L.PO_CENTS], "height": rec[L.PO_HEIGHT], "time": rec[L.PO_TIME],
            "status": rec[L.PO_STATUS], "paid_height": rec[L.PO_PAID_HEIGHT] or None,
            "paid_time": rec[L.PO_PAID_TIME] or None, "ref": rec[L.PO_REF] or None}


def get_payout(kv: KV, payout_id: bytes) -> dict[str, Any] | None:
    raw = kv.get(L.key_payout(payout_id))
    return None if raw is None else get_payout_view(payout_id, decode_value(raw))


def get_payouts(kv: KV, status: str | None, cursor: bytes | None, limit: int) -> dict[str, Any]:
    """Payouts by id (after ``cursor``), only those in ``status`` if given; with the totals."""
    out: list[dict[str, Any]] = []
    next_cursor = None
    for key, raw in kv.iter_prefix(L.PAYOUT):
        payout_id = key[len(L.PAYOUT):]
        if cursor is not None and payout_id <= cursor:
            continue
        rec = decode_value(raw)
        if status is not None and rec[L.PO_STATUS] != status:
            continue
        if len(out) == limit:
            next_cursor = out[-1]["id"]
            break
        out.append(get_payout_view(payout_id, rec))
    return {"payouts": out, "next_cursor": next_cursor, "totals": get_euro_totals(kv)}


def get_ledger_row(kv: KV, log_key: bytes, kind: str, subject: bytes) -> dict[str, Any]:
    """One euro event as the accountant's ledger shows it."""
    tx_id = log_key[len(L.EURO_LOG) + 8:]
    if kind == KIND_PAY_DEBT:
        rec = decode_value(kv.get(L.key_debt_payment(subject)))
        return {"kind": kind, "id": tx_id.hex(), "payout": None, "height": rec[L.DP_HEIGHT], "time": rec[L.DP_TIME],
                "account": rec[L.DP_HOUSEHOLD].hex(), "label": rec[L.DP_LABEL], "class": rec[L.DP_CLASS],
                "amount": rec[L.DP_AMOUNT], "price_cents": rec[L.DP_PRICE], "cents": rec[L.DP_CENTS],
                "status": "received", "ref": rec[L.DP_REF]}
    rec = decode_value(kv.get(L.key_payout(subject)))
    row = {"kind": kind, "id": tx_id.hex(), "payout": subject.hex(), "height": rec[L.PO_HEIGHT],
           "time": rec[L.PO_TIME], "account": rec[L.PO_ACCOUNT].hex(), "label": rec[L.PO_LABEL],
           "class": rec[L.PO_CLASS], "amount": rec[L.PO_AMOUNT], "price_cents": rec[L.PO_PRICE],
           "cents": rec[L.PO_CENTS], "status": rec[L.PO_STATUS], "ref": rec[L.PO_REF] or None}
    if kind == KIND_PAID:
        row.update(height=rec[L.PO_PAID_HEIGHT], time=rec[L.PO_PAID_TIME], status=STATUS_PAID)
    return row


def get_euro_ledger(kv: KV, start: int, end: int, after: bytes | None, limit: int) -> dict[str, Any]:
    """Euro events (redeem, paid, pay-debt) with block time in [start, end], oldest first,
    at most ``limit`` after the event key ``after`` (time ‖ tx id); ``next_after`` pages
    on. ``chain``: the totals since genesis, which an export of the whole history must
    reproduce. The scan walks the events from genesis in time order: they are human-paced
    (a few per household per year)."""
    rows: list[dict[str, Any]] = []
    next_after = None
    for key, raw in kv.iter_prefix(L.EURO_LOG):
        suffix = key[len(L.EURO_LOG):]
        t = L.from_u64(suffix[:8])
        if t < start or (after is not None and suffix <= after):
            continue
        if t > end:
            break
        if len(rows) == limit:
            next_after = rows[-1]["key"]
            break
        kind, subject = decode_value(raw)
        rows.append(dict(get_ledger_row(kv, key, kind, subject), key=suffix.hex()))
    height = kv.get(L.META_HEIGHT)
    return {"from": start, "to": end, "rows": rows, "next_after": next_after, "chain": get_euro_totals(kv),
            "height": 0 if height is None else decode_value(height)}


def get_associations(kv: KV) -> list[dict[str, Any]]:
    """Every association ever registered, by key: name, since, until (None: in force), balances."""
    out = []
    for key, raw in kv.iter_prefix(L.ASSOCIATION):
        addr = key[len(L.ASSOCIATION):]
        name, since, until = decode_value(raw)
        acct = kv.get(L.key_account(addr))
        kwh, hour, _ = [0, 0, 0] if acct is None else decode_value(acct)
        out.append({"address": addr.hex(), "name": name, "since_height": since, "until_height": until or None,
                    "balances": {"kwh": kwh, "hour": hour}})
    return out


__all__ = ["STATUS_OWED", "STATUS_PAID", "get_associations", "get_euro_ledger", "get_euro_totals", "get_payout",
           "get_payouts"]
