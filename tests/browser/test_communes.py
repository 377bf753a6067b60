"""Commune A's dashboard shows its transfers with commune B (docs/communes.md "What the
dashboard shows"): two live communes linked, the relayer between them, hours sent both
ways, vouchers going home, and a transfer that times out while the relayer is stopped.

Each row of ``#communes-transfers`` carries its facts in data- attributes (direction,
peer chain, sequence, status, amount, denomination, time), which the assertions read
first; then the words a person reads, in English and in French. Every expectation is a
wait with a deadline on a condition, never a fixed sleep.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest

from tests.browser.pages import attr, open_page, shot, wait_page
from tests.support.livecommunes import LiveCommunes

PARIS = "Europe/Paris"
HH0, HH1 = "household-0", "household-1"
SHORT_TIMEOUT_S = 20        # seconds of B's clock: 2 s at the helper's speed


@dataclass(frozen=True)
class Words:
    locale: str
    sent_to: str
    received_from: str
    delivered: str
    in_flight: str
    timed_out: str
    vouchers_of_b: str
    comma: str              # the decimal separator


WORDS = {
    "en": Words("en-GB", "Sent to Commune B", "Received from Commune B", "delivered", "in flight",
                "refunded after timeout", "vouchers of Commune B", "."),
    "fr": Words("fr-FR", "Envoyé à Commune B", "Reçu de Commune B", "livré", "en route",
                "remboursé après expiration du délai", "bons de Commune B", ","),
}


def hours(words: Words, minutes: int) -> str:
    return f"{minutes / 60:.1f}".replace(".", words.comma) + " h"


def short(key: str) -> str:
    return key[:8] + "…"


def paris_hhmm(t: int) -> str:
    return dt.datetime.fromtimestamp(t, ZoneInfo(PARIS)).strftime("%H:%M")


@pytest.fixture(scope="module")
def exchanged(communes: LiveCommunes) -> dict[str, dict]:
    """Hours both ways, and some of B's vouchers sent home from A; all delivered. The
    records as commune A's API gives them."""
    out = communes.send("A", "B", 120)                                      # A's household-0 -> B's household-1
    got = communes.send("B", "A", 90)                                       # B's household-0 -> A's household-1
    communes.wait_status("A", "B", out, "delivered")
    communes.wait_status("B", "A", got, "delivered")
    home = communes.send("A", "B", 30, sender=HH1, receiver=HH0, denom=communes.voucher("B"))
    records = {"out": communes.wait_status("A", "B", out, "delivered"),
               "home": communes.wait_status("A", "B", home, "delivered")}
    incoming = communes.get_json("A", "/ibc/transfers?limit=500")["incoming"]
    records["in"] = next(t for t in incoming if t["source"] == communes.chain_id("B") and t["seq"] == got)
    return records


def transfer_row(page, direction: str, chain: str, seq: int, status: str):
    """The row of a transfer, once it shows ``status``."""
    selector = f"#communes-transfers tr[data-transfer='{direction}/{chain}/{seq}']"
    wait_page(page, lambda p: attr(p, selector, "data-status") == status,
              f"the {direction} transfer {seq} {status} on the page")
    return page.locator(selector)


def cells(row) -> dict[str, str]:
    return {name: row.locator(f"td.{name}").inner_text() for name in ("dir", "from", "to", "amount", "time", "status")}


def check_facts(row, chain: str, record: dict, status: str) -> None:
    assert row.get_attribute("data-chain") == chain
    assert row.get_attribute("data-status") == status
    assert row.get_attribute("data-amount") == str(record["amount"])
    assert row.get_attribute("data-denom") == record["denom"]
    assert row.get_attribute("data-time") == str(record["time_s"])


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_commune_a_shows_transfers_out_and_in_with_accounts_amounts_times_and_states(
        communes: LiveCommunes, exchanged, browser, tmp_path, lang):
    words = WORDS[lang]
    b_chain = communes.chain_id("B")
    a_hh0, a_hh1 = communes.address("A", HH0), communes.address("A", HH1)
    b_hh0, b_hh1 = communes.address("B", HH0), communes.address("B", HH1)
    with open_page(browser, communes.url("A") + "/", locale=words.locale, timezone=PARIS) as page:
        # Sent: A's household to B's, in hours, delivered, at the time A's chain recorded it.
        out = exchanged["out"]
        row = transfer_row(page, "out", b_chain, out["seq"], "delivered")
        check_facts(row, b_chain, out, "delivered")
        text = cells(row)
        assert text["dir"] == words.sent_to
        assert short(a_hh0) in text["from"] and text["to"] == f"{short(b_hh1)} (Commune B)"
        assert text["amount"] == "−" + hours(words, 120)
        assert paris_hhmm(out["time_s"]) in text["time"]
        assert text["status"] == words.delivered
        # Received: from B's household to A's, credited as vouchers named after commune B.
        got = exchanged["in"]
        row = transfer_row(page, "in", b_chain, got["seq"], "delivered")
        check_facts(row, b_chain, got, "delivered")
        text = cells(row)
        assert text["dir"] == words.received_from
        assert text["from"] == f"{short(b_hh0)} (Commune B)" and short(a_hh1) in text["to"]
        assert text["amount"] == f"+{hours(words, 90)} · {words.vouchers_of_b}"
        assert paris_hhmm(got["time_s"]) in text["time"] and text["status"] == words.delivered
        # B's vouchers going home: their origin in words, not ibc/<hex>/hour.
        home = exchanged["home"]
        row = transfer_row(page, "out", b_chain, home["seq"], "delivered")
        check_facts(row, b_chain, home, "delivered")
        assert home["denom"] == communes.voucher("B")
        text = cells(row)
        assert short(a_hh1) in text["from"] and text["to"] == f"{short(b_hh0)} (Commune B)"
        assert text["amount"] == f"−{hours(words, 30)} · {words.vouchers_of_b}"
        # The link: A's escrow for B, B's vouchers circulating here, in the class's unit.
        link = f"#communes-links tr[data-chain='{b_chain}']"
        assert page.locator(f"{link} td.escrow").inner_text() == hours(words, 120)
        assert page.locator(f"{link} td.vouchers").inner_text() == hours(words, 60)
        shot(page, tmp_path, f"communes-delivered-{lang}", "#communes-panel")
        check_timeout(communes, page, words, tmp_path, lang)


def check_timeout(communes: LiveCommunes, page, words: Words, tmp_path, lang: str) -> None:
    """A transfer B never hears of (the relayer stopped) shows in flight, then, once B's
    clock passed its timeout and the relayer proved it unreceived, refunded after timeout."""
    b_chain = communes.chain_id("B")
    before = communes.balance("A", HH0)
    communes.stop_relayer()
    try:
        seq = communes.send("A", "B", 60, timeout_s=SHORT_TIMEOUT_S)
        row = transfer_row(page, "out", b_chain, seq, "in-flight")
        assert cells(row)["status"] == words.in_flight and cells(row)["amount"] == "−" + hours(words, 60)
        link = f"#communes-links tr[data-chain='{b_chain}']"
        assert page.locator(f"{link} td.flight").inner_text() == "1 · " + hours(words, 60)
        assert communes.balance("A", HH0) == before - 60
        shot(page, tmp_path, f"communes-in-flight-{lang}", "#communes-panel")
        record = next(t for t in communes.outgoing("A", "B") if t["seq"] == seq)
        communes.wait_block_time("B", record["timeout_s"])
    finally:
        communes.start_relayer()
    row = transfer_row(page, "out", b_chain, seq, "timed-out")
    check_facts(row, b_chain, communes.wait_status("A", "B", seq, "timed-out"), "timed-out")
    assert cells(row)["status"] == words.timed_out
    wait_page(page, lambda p: attr(p, f"{link} td.flight", "data-packets") == "0", "nothing left in flight")
    assert communes.balance("A", HH0) == before
    shot(page, tmp_path, f"communes-timed-out-{lang}", "#communes-panel")


def test_a_household_sees_its_sends_to_another_commune_in_its_activity(communes: LiveCommunes, exchanged, browser,
                                                                     tmp_path):
    # The household's own page on its own node, its key loaded: its send is in its activity,
    # named after the commune and in hours; its state is on the communes panel below.
    b_hh1 = communes.address("B", HH1)
    with open_page(browser, communes.url("A", HH0) + "/", locale="en-GB") as page:
        page.set_input_files("#key-file", str(communes.key_path("A", HH0)))
        wait_page(page, lambda p: attr(p, "#key-status", "data-key") == communes.address("A", HH0), "the key loaded")
        item = "#activity li[data-type='tx/send-to-commune']"
        wait_page(page, lambda p: p.locator(item).count(), "the send in the household's activity")
        texts = page.locator(item).all_inner_texts()
        assert any("transfer to another commune" in t and f"{short(b_hh1)} (Commune B)" in t and "−2.0 h" in t
                   for t in texts), texts
        shot(page, tmp_path, "household-activity", "#activity")
