"""Euros on a live commune (docs/euro.md): a household redeems kWh, the registrar records
a debt paid in euros and the transfer that paid the payout, and the accountant's CSV,
read from a real node, has totals equal to what the node's state says."""

from __future__ import annotations

import csv
import io

import pytest

from tests.support.livenet import LiveNet
from tests.support.nodes import run_cli
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

HH0, HH1 = "household-0", "household-1"


def cli(*argv: str) -> str:
    done = run_cli(*argv, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def payout(net: LiveNet, payout_id: str) -> dict | None:
    # A payout is its household's, and the registrar's who pays it (docs/privacy.md).
    return net.get_json(HH0, f"/euro/payouts/{payout_id}", signer="registrar")


def test_redeem_pay_debt_mark_paid_and_the_csv_reconciles_with_the_node(livenet: LiveNet):
    livenet.wait_settled_production(HH0)
    producer, consumer = livenet.address(HH0), livenet.address(HH1)
    wait_for(lambda: livenet.get_json(HH0, f"/accounts/{producer}", signer=HH0)["balances"]["kwh"] >= 600, 90,
             "household-0 holds 600 Wh", livenet.logs)
    wait_for(lambda: livenet.get_json(HH1, f"/accounts/{consumer}", signer=HH1)["balances"]["kwh"] <= -100, 60,
             "household-1 in debt", livenet.logs)
    registrar = ("--node", livenet.url(HH0), "--key", str(livenet.key_path("registrar")))
    payout_id = cli("tx", "redeem", "--amount", "500", "--node", livenet.url(HH0), "--key",
                    str(livenet.key_path(HH0))).strip()
    wait_for(lambda: payout(livenet, payout_id), 60, "the payout committed", livenet.logs)
    # One registrar tx at a time: each one's nonce is its clock, so they must commit in order.
    cli("registrar", "pay-debt", "--household-pub", consumer, "--euros", "0.01", "--ref", "ESPECES 0001", *registrar)
    wait_for(lambda: livenet.get_json(HH0, "/euro/payouts")["totals"]["received_cents"] == 1, 60,
             "the debt payment committed", livenet.logs)
    cli("registrar", "mark-paid", "--payout", payout_id, "--ref", "SEPA-LIVE-0001", *registrar)
    wait_for(lambda: (payout(livenet, payout_id) or {}).get("status") == "paid", 60, "the payout paid", livenet.logs)
    text = cli("registrar", "ledger", "--from", "2000-01-01", "--to", "2099-12-31", "--csv", *registrar)
    rows = {r["kind"]: r for r in csv.DictReader(io.StringIO(text))}
    totals = livenet.get_json(HH0, "/euro/payouts")["totals"]
    assert int(rows["total:redeem"]["wh"]) == totals["redeemed_wh"] >= 500
    assert int(rows["total:redeem"]["cents"]) == totals["owed_cents"]
    assert int(rows["total:paid"]["cents"]) == totals["paid_cents"] >= 10
    assert (int(rows["total:pay-debt"]["wh"]), int(rows["total:pay-debt"]["cents"])) == (
        totals["cleared_wh"], totals["received_cents"]) == (50, 1)
    assert rows["paid"]["ref"] == "SEPA-LIVE-0001" and rows["pay-debt"]["label"] == "Foyer 1"
    # A payout cannot be paid twice: one line, non-zero, nothing changed.
    done = run_cli("registrar", "mark-paid", "--payout", payout_id, "--ref", "AGAIN", *registrar, timeout=60)
    assert done.returncode == 1 and "already paid" in done.stderr and done.stderr.count("\n") == 1
    assert livenet.get_json(HH0, "/euro/payouts")["totals"] == totals
