"""Euros and associations on the command line (docs/euro.md).

- ``voisinage tx redeem``: a household (or an association) sells kWh it holds to the
  treasury at the governed price; the treasury then owes it a payout;
- ``voisinage registrar pay-debt``: the registrar records euros a household paid,
  which clear its kWh debt;
- ``voisinage registrar mark-paid``: the registrar records the bank transfer (SEPA
  reference) that paid a payout;
- ``voisinage registrar ledger``: the accountant's export of every euro event between
  two dates, with totals, and the chain's totals since genesis that they reconcile with;
- ``voisinage registrar association add | remove``: association accounts, which
  standing gifts and transfers may target.

These commands join the ``tx`` and ``registrar`` groups (node/commands/tx.py,
registrar.py). Every argument is checked before anything is sent, by the ledger's own
rules where it has one; a refusal is one line and a non-zero exit.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer

from node.commands.client import (
    NO_SIG, get_json, open_client, parse_key_hex, parse_node_url, submit,
)
from node.commands.options import NODE_OPTION, TOKEN_OPTION
from node.commands.registrar import registrar_app
from node.commands.tx import parse_amount, parse_memo, tx_app
from node.errors import UserError
from node.home.keyfile import load_key
from tokens.errors import InvalidTx
from tokens.rules_assoc import check_association_name
from tokens.rules_euro import check_ref
from tokens.txs import MarkPaid, PayDebt, Redeem, RegisterAssociation, RemoveAssociation

association_app = typer.Typer(help="Association accounts (gift and transfer targets): add, remove.",
                              no_args_is_help=True)

KEY_OPTION = typer.Option(..., "--key", help="The registrar's key file.")
MAX_CENTS = 2**63 - 1
DAY_S = 86_400
LEDGER_PAGE = 5000
CSV_COLUMNS = ("kind", "height", "time_utc", "account", "label", "class", "wh", "price_cents_per_kwh", "cents",
               "euros", "status", "ref", "id", "payout")


# --- checking arguments ------------------------------------------------------------------------

def parse_euros(text: str, what: str = "--euros") -> int:
    """An amount of euros with at most two decimals (``12``, ``12.5``, ``12.34``), as cents."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise UserError(f"{what} must be an amount of euros such as 12.34, not {text!r}") from None
    cents = value * 100
    if not cents.is_finite() or cents != cents.to_integral_value() or not 0 < cents <= MAX_CENTS:
        raise UserError(f"{what} must be a positive amount of euros with at most 2 decimals, not {text!r}")
    return int(cents)


def parse_ref(ref: str, what: str = "--ref") -> str:
    try:
        check_ref(ref)
    except InvalidTx as exc:
        raise UserError(f"{what}: {exc.detail}") from None
    return ref


def parse_date(text: str, what: str) -> int:
    """A UTC date YYYY-MM-DD, as the unix second it starts at."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{what} must be a date YYYY-MM-DD (UTC), not {text!r}") from None
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())


def parse_name(name: str) -> str:
    try:
        check_association_name(name)
    except InvalidTx as exc:
        raise UserError(f"--name: {exc.detail}") from None
    return name


def format_euros(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def format_time(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# --- household --------------------------------------------------------------------------------

@tx_app.command("redeem")
def tx_redeem(
    amount: int = typer.Option(..., "--amount", help="Wh of kwh to sell to the treasury (only what you hold)."),
    cls: str = typer.Option("kwh", "--class", help="kwh: the only class with a euro price."),
    node: str = NODE_OPTION, key: Path = typer.Option(..., "--key", help="Your key file."),
    token: str | None = TOKEN_OPTION,
) -> None:
    """Sell kWh you hold to the treasury at the commune's euro price; the commune then owes
    you a payout (see `voisinage registrar ledger`). Prints the payout id."""
    parse_amount(amount, "--amount")
    if cls != "kwh":
        raise UserError(f"--class: only kwh has a euro price (docs/euro.md), not {cls!r}")
    typer.echo(submit(node, key, lambda signer, nonce: Redeem(
        signer=signer, nonce=nonce, cls=cls, amount=amount, sig=NO_SIG), token=token))


# --- registrar --------------------------------------------------------------------------------

@registrar_app.command("pay-debt")
def registrar_pay_debt(
    household_pub: str = typer.Option(..., "--household-pub", help="The household that paid (public key, hex)."),
    euros: str = typer.Option(..., "--euros", help="What it paid, in euros (at most 2 decimals)."),
    ref: str = typer.Option(..., "--ref", help="The payment's reference: SEPA id, cheque or receipt "
                                              "number (1 to 35 characters)."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Record euros a household paid the commune: they clear its kWh debt at the euro price."""
    household = parse_key_hex(household_pub, "--household-pub")
    cents = parse_euros(euros)
    parse_ref(ref)
    typer.echo(submit(node, key, lambda signer, nonce: PayDebt(
        signer=signer, nonce=nonce, household=household, cls="kwh", cents=cents, ref=ref, sig=NO_SIG),
        token=token))


@registrar_app.command("mark-paid")
def registrar_mark_paid(
    payout: str = typer.Option(..., "--payout", help="The payout's id (the Redeem transaction's id, hex)."),
    ref: str = typer.Option(..., "--ref", help="The bank transfer's SEPA reference (1 to 35 characters)."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Record the bank transfer that paid a payout the treasury owed."""
    payout_id = parse_key_hex(payout, "--payout")
    parse_ref(ref)
    with open_client() as client:
        doc = get_json(client, parse_node_url(node), f"/euro/payouts/{payout_id.hex()}", missing={},
                       signer=load_key(key), token=token)
    if not doc:
        raise UserError(f"no payout {payout_id.hex()} on this node (the id of a `tx redeem`)")
    if doc.get("status") != "owed":
        raise UserError(f"payout {payout_id.hex()[:16]}… is already paid (ref {doc.get('ref')!r})")
    typer.echo(submit(node, key, lambda signer, nonce: MarkPaid(
        signer=signer, nonce=nonce, payout=payout_id, ref=ref, sig=NO_SIG), token=token))


def fetch_ledger(node: str, start: int, end: int, key: Path | None = None, token: str | None = None) -> dict[str, Any]:
    """Every row of GET /euro/ledger in [start, end], page after page, and the chain's totals;
    its rows name households, so they are read signed by a registrar's ``key`` or with the
    operator's ``token`` (docs/privacy.md)."""
    if key is None and not token:
        raise UserError("the ledger names households: give the registrar's --key or the node's --api-token")
    url = parse_node_url(node)
    signer = load_key(key) if key is not None else None
    rows: list[dict[str, Any]] = []
    after = None
    with open_client() as client:
        while True:
            path = f"/euro/ledger?from={start}&to={end}&limit={LEDGER_PAGE}" + (f"&after={after}" if after else "")
            doc = get_json(client, url, path, signer=signer, token=token)
            if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list) or "chain" not in doc:
                raise UserError("GET /euro/ledger: the node's answer is not a euro ledger")
            rows += doc["rows"]
            after = doc.get("next_after")
            if not after:
                return {"rows": rows, "chain": doc["chain"], "height": doc.get("height")}


def compute_ledger_totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The range's totals: Wh redeemed and cents owed for them, cents paid out, Wh of debt
    cleared and cents received."""
    def total(kind: str, field: str) -> int:
        return sum(r[field] for r in rows if r["kind"] == kind)
    return {"redeemed_wh": total("redeem", "amount"), "owed_cents": total("redeem", "cents"),
            "paid_cents": total("paid", "cents"), "cleared_wh": total("pay-debt", "amount"),
            "received_cents": total("pay-debt", "cents")}


def format_ledger_csv(rows: list[dict[str, Any]], chain: dict[str, int], height: int | None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow((r["kind"], r["height"], format_time(r["time"]), r["account"], r["label"], r["class"],
                         r["amount"], r["price_cents"], r["cents"], format_euros(r["cents"]), r["status"],
                         r["ref"] or "", r["id"], r["payout"] or ""))
    totals = compute_ledger_totals(rows)
    at = "" if height is None else height

    def summary(kind: str, wh: int | str, cents: int, h: Any = "") -> None:
        writer.writerow((kind, h, "", "", "", "kwh", wh, "", cents, format_euros(cents), "", "", "", ""))

    summary("total:redeem", totals["redeemed_wh"], totals["owed_cents"])
    summary("total:paid", "", totals["paid_cents"])
    summary("total:pay-debt", totals["cleared_wh"], totals["received_cents"])
    summary("chain:redeem", chain["redeemed_wh"], chain["owed_cents"], at)
    summary("chain:paid", "", chain["paid_cents"], at)
    summary("chain:outstanding", "", chain["outstanding_cents"], at)
    summary("chain:pay-debt", chain["cleared_wh"], chain["received_cents"], at)
    return out.getvalue()


def format_ledger_text(rows: list[dict[str, Any]], chain: dict[str, int], height: int | None, span: str) -> str:
    lines = [f"{format_time(r['time'])}  {r['kind']:<8}  {r['label'] or r['account'][:16]:<24}  "
             f"{r['amount'] / 1000:10.3f} kWh  @ {r['price_cents']} c/kWh  {format_euros(r['cents']):>10} EUR  "
             f"{r['status']:<8}  {r['ref'] or ''}" for r in rows]
    t = compute_ledger_totals(rows)
    lines.append(f"{span}: {len(rows)} events; redeemed {t['redeemed_wh'] / 1000:.3f} kWh for "
                 f"{format_euros(t['owed_cents'])} EUR; paid out {format_euros(t['paid_cents'])} EUR; debts cleared "
                 f"{t['cleared_wh'] / 1000:.3f} kWh for {format_euros(t['received_cents'])} EUR received")
    lines.append(f"since genesis (height {height}): owed {format_euros(chain['owed_cents'])} EUR, paid "
                 f"{format_euros(chain['paid_cents'])} EUR, outstanding {format_euros(chain['outstanding_cents'])} "
                 f"EUR; received {format_euros(chain['received_cents'])} EUR for "
                 f"{chain['cleared_wh'] / 1000:.3f} kWh of debt")
    return "\n".join(lines)


@registrar_app.command("ledger")
def registrar_ledger(
    start: str = typer.Option(..., "--from", help="First day, YYYY-MM-DD (UTC)."),
    end: str = typer.Option(..., "--to", help="Last day, YYYY-MM-DD (UTC), included."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV for the accountant: one row per event, then totals."),
    out: Path | None = typer.Option(None, "--out", help="Write to this file instead of the terminal."),
    node: str = NODE_OPTION,
    key: Path | None = typer.Option(None, "--key", help="The registrar's key file, to sign the request."),
    token: str | None = TOKEN_OPTION,
) -> None:
    """The accountant's export: every redemption, payout paid and debt payment between two
    dates, with totals, and the chain's totals since genesis they reconcile with."""
    first = parse_date(start, "--from")
    last = parse_date(end, "--to") + DAY_S - 1
    if last < first:
        raise UserError(f"--to {end} is before --from {start}")
    doc = fetch_ledger(node, first, last, key, token)
    if as_csv:
        text = format_ledger_csv(doc["rows"], doc["chain"], doc["height"])
    else:
        text = format_ledger_text(doc["rows"], doc["chain"], doc["height"], f"{start} to {end}") + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    typer.echo(f"{len(doc['rows'])} events written to {out}")


@association_app.command("add")
def association_add(
    pub: str = typer.Option(..., "--pub", help="The association's public key (hex), from `keys new`."),
    name: str = typer.Option(..., "--name", help="Its name (1 to 64 bytes)."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Register an association's account: standing gifts and transfers may then go to it."""
    target = parse_key_hex(pub, "--pub")
    parse_name(name)
    typer.echo(submit(node, key, lambda signer, nonce: RegisterAssociation(
        signer=signer, nonce=nonce, key=target, name=name, sig=NO_SIG), token=token))


@association_app.command("remove")
def association_remove(
    pub: str = typer.Option(..., "--pub", help="The association's public key (hex)."),
    memo: str = typer.Option("", "--memo", help="Why (dissolved...), up to 140 bytes, public."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Strike an association off: it receives nothing more; its account stays with its key."""
    target = parse_key_hex(pub, "--pub")
    parse_memo(memo)
    typer.echo(submit(node, key, lambda signer, nonce: RemoveAssociation(
        signer=signer, nonce=nonce, key=target, memo=memo, sig=NO_SIG), token=token))


def register(app: typer.Typer) -> None:
    registrar_app.add_typer(association_app, name="association")
