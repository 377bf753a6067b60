"""The dashboard in a real browser against a live commune (DESIGN §9 "Dashboard").

Each test saves screenshots in its own tmp directory (printed with ``pytest -s``).
The page polls the node every few seconds, so every expectation is a wait with a
deadline, never a fixed sleep.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from tests.support.livenet import LiveNet
from tests.support.nodes import run_cli
from tests.support.wait import wait_for

HH0, HH1 = "household-0", "household-1"
WAIT_MS = 30_000
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@contextmanager
def open_page(browser, url: str, locale: str = "fr-FR", viewport: dict | None = None):
    """A fresh browser context (own language, no stored choice); fails on any script error."""
    context = browser.new_context(locale=locale, viewport=viewport or DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("body[data-height]", timeout=WAIT_MS)      # the first poll landed
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"script errors on {url}: {errors}"


def wait_page(page, predicate, what: str, timeout_ms: int = WAIT_MS):
    """Poll ``predicate(page)`` from Python (the page's CSP forbids the eval that
    wait_for_function needs); fail with ``what`` if it never holds."""
    for _ in range(timeout_ms // 250):
        value = predicate(page)
        if value:
            return value
        page.wait_for_timeout(250)
    raise AssertionError(f"timed out waiting for {what}")


def attr(page, selector: str, name: str) -> str | None:
    loc = page.locator(selector)
    return loc.first.get_attribute(name) if loc.count() else None


def shot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"\nscreenshot: {path}")
    return path


def cli(*argv: str) -> str:
    done = run_cli(*argv, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_household_page_shows_production_after_an_interval_settles(livenet: LiveNet, browser, tmp_path):
    settled = livenet.wait_settled_production(HH0)
    with open_page(browser, livenet.url(HH0) + "/") as page:
        wait_page(page, lambda p: int(attr(p, "#produced-total", "data-wh") or 0) > 0, "production on the page")
        chart = page.locator("#energy-chart svg")
        assert int(chart.get_attribute("data-slots")) == 48
        bar = page.locator(f"#energy-chart g.slot[data-k='{settled['k']}']")
        assert int(bar.get_attribute("data-export-wh")) == settled["export_wh"] > 0
        assert float(bar.locator("rect.prod").get_attribute("height")) > 0
        # Who used my energy: household-1 consumed in that interval.
        page.wait_for_selector(f"#consumers-table tr[data-consumer='{livenet.address(HH1)}']", timeout=WAIT_MS)
        assert "Foyer 0" in page.locator("#hh-label").inner_text()
        assert page.locator("#produced-total").inner_text().endswith("kWh")
        shot(page, tmp_path, "household-production")


def test_transfer_made_with_the_cli_appears_on_both_pages(livenet: LiveNet, browser, tmp_path):
    tx_id = cli("tx", "transfer", "--to", livenet.address(HH1), "--amount", "1234", "--memo", "pain",
                "--node", livenet.url(HH0), "--key", str(livenet.key_path(HH0)))
    row = f"#activity li[data-tx-id='{tx_id}']"
    with open_page(browser, livenet.url(HH0) + "/", locale="en-GB") as page:      # the sender's own node
        page.wait_for_selector(row, timeout=WAIT_MS)
        text = page.locator(row).inner_text()
        assert "transfer" in text and "sent to" in text and "1.23 kWh" in text and "−" in text
        shot(page, tmp_path, "transfer-sender")
    with open_page(browser, livenet.url(HH1) + "/", locale="en-GB") as page:      # the recipient's own node
        page.wait_for_selector(row, timeout=WAIT_MS)
        text = page.locator(row).inner_text()
        assert "received from" in text and "Foyer 0" in text and "+1.23 kWh" in text
        shot(page, tmp_path, "transfer-recipient")


def test_a_change_of_ballot_moves_the_allocation_chart(livenet: LiveNet, browser, tmp_path):
    with open_page(browser, livenet.url(HH1) + "/") as page:
        chart = page.locator("#allocation-chart svg")
        before = chart.get_attribute("data-bps")
        canteen = page.locator("#allocation-chart g.bar[data-category='canteen'] rect.live")
        width_before = float(canteen.get_attribute("width"))
        shot(page, tmp_path, "allocation-before")
        cli("gov", "allocate", "--bps", "500,500,500,500,7500,500", "--node", livenet.url(HH1),
            "--key", str(livenet.key_path(HH1)))
        wait_page(page, lambda p: attr(p, "#allocation-chart svg", "data-bps") == "500,500,500,500,7500,500",
                  "the allocation chart to follow the ballot")
        assert chart.get_attribute("data-bps") != before
        assert float(canteen.get_attribute("width")) > 3 * width_before
        # The household's own ballot is shown too.
        page.wait_for_selector("#ballot-chart g.bar[data-category='canteen'][data-bp='7500']", timeout=WAIT_MS)
        shot(page, tmp_path, "allocation-after")


def test_phone_sized_screen_in_english_and_the_language_toggle(livenet: LiveNet, browser, tmp_path):
    with open_page(browser, livenet.url(HH0) + "/", locale="en-US", viewport=PHONE) as page:
        assert page.locator("#hh-title").inner_text().startswith("My household")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a phone"
        shot(page, tmp_path, "phone-english")
        page.click("#lang-toggle")
        assert page.locator("#hh-title").inner_text().startswith("Mon foyer")
        assert page.evaluate("document.documentElement.lang") == "fr"
        # The toggle redraws at once; the next poll's data is drawn in French too.
        wait_page(page, lambda p: p.locator("#status-live").inner_text() == "à jour", "a refresh in French")
        page.wait_for_selector("#validators-table tbody tr", timeout=WAIT_MS)
        assert "validator-0" in page.locator("#validators-table").inner_text()
        shot(page, tmp_path, "phone-french")


def test_another_household_by_addr_and_a_bad_key(livenet: LiveNet, browser, tmp_path):
    with open_page(browser, livenet.url(HH0) + f"/?addr={livenet.address(HH1)}") as page:
        wait_page(page, lambda p: "Foyer 1" in p.locator("#hh-label").inner_text(), "household-1's page")
        page.fill("#addr-input", "not-a-key")
        page.click("#addr-form button")
        page.wait_for_timeout(3500)            # one poll later the complaint still stands
        assert "64" in page.locator("#hh-message").inner_text()
        shot(page, tmp_path, "other-household")


def test_validator_node_page_asks_for_a_household(livenet: LiveNet, browser):
    with open_page(browser, livenet.url("validator-0") + "/", locale="en-GB") as page:
        message = wait_page(page, lambda p: p.locator("#hh-message").inner_text(), "a message")
        assert "not a registered household" in message or "Unknown account" in message
        assert wait_page(page, lambda p: p.locator("#validators-table tbody tr").count(), "validator rows") == 1


def test_a_pending_recovery_shows_its_completion_time_until_cancelled(livenet: LiveNet, browser, tmp_path):
    hh1 = livenet.address(HH1)
    cancel = ("tx", "cancel-recovery", "--node", livenet.url(HH1), "--key", str(livenet.key_path(HH1)))
    cli("registrar", "recover", "--household-pub", hh1, "--new-pub", "ab" * 32, "--node", livenet.url(HH0),
        "--key", str(livenet.key_path("registrar")))
    cancelled = False
    try:
        with open_page(browser, livenet.url(HH1) + "/") as page:
            due = wait_page(page, lambda p: attr(p, "#hh-key-status", "data-completes-at"), "the pending recovery")
            assert int(due) == livenet.get_json(HH1, f"/accounts/{hh1}")["recovery"]["completes_at"]
            text = page.locator("#hh-key-status").inner_text()
            assert "Récupération de clé en cours" in text and "abababababababab" in text
            assert "cancel-recovery" in text
            # The registrar's panel lists it too, with the same completion time and the delay.
            row = f"#recoveries-table tr[data-recovery='{hh1}']"
            page.wait_for_selector(row, timeout=WAIT_MS)
            assert page.locator(row).get_attribute("data-completes-at") == due
            assert "Foyer 1" in page.locator(row).inner_text() and "abababab" in page.locator(row).inner_text()
            delay_s = livenet.get_json(HH1, "/registrars")["recovery_delay_s"]
            assert attr(page, "#recovery-delay", "data-seconds") == str(delay_s)
            shot(page, tmp_path, "recovery-pending-fr")
            page.click("#lang-toggle")
            wait_page(page, lambda p: "Key recovery pending" in p.locator("#hh-key-status").inner_text(),
                      "the recovery in English")
            cli(*cancel)
            cancelled = True
            wait_page(page, lambda p: p.locator("#hh-key-status").is_hidden(), "the status gone after the cancel")
            wait_page(page, lambda p: p.locator(row).count() == 0, "the recovery gone from the registrar's panel")
            assert page.locator("#recoveries-empty").is_visible()
    finally:
        # A recovery left pending would keep household-1 from signing in the other tests.
        if not cancelled:
            cli(*cancel)


def test_a_household_that_moves_out_is_listed_on_the_registrars_panel(livenet: LiveNet, browser, tmp_path):
    newcomer = cli("keys", "new", "--out", str(tmp_path / "newcomer.json"))
    registrar = ("--node", livenet.url(HH0), "--key", str(livenet.key_path("registrar")))
    cli("registrar", "register", "--household-pub", newcomer, "--meter", "021400000777", "--prm", "30000000000777",
        "--label", "Les Nouveaux", "--kva", "6", *registrar)
    wait_for(lambda: (livenet.get_json(HH0, f"/accounts/{newcomer}") or {}).get("household"), 60,
             "the newcomer registered", livenet.logs)
    row = f"#moved-out-table tr[data-moved-out='{newcomer}']"
    with open_page(browser, livenet.url(HH1) + "/", locale="en-GB") as page:
        assert page.locator(row).count() == 0
        cli("registrar", "deregister", "--household-pub", newcomer, "--memo", "moved to Lyon", *registrar)
        page.wait_for_selector(row, timeout=WAIT_MS)
        height = [m["height"] for m in livenet.get_json(HH1, "/registrars")["moved_out"] if m["key"] == newcomer]
        assert page.locator(f"{row} td.num").inner_text() == str(height[0])
        assert page.locator("#moved-out-empty").is_hidden()
        shot(page, tmp_path, "moved-out")


def test_a_redemption_is_owed_on_the_commune_page_until_the_registrar_marks_it_paid(livenet: LiveNet, browser,
                                                                                     tmp_path):
    # docs/euro.md: household-0 sells 200 Wh at 20 c/kWh; the treasury owes it 0.04 EUR.
    livenet.wait_settled_production(HH0)
    wait_for(lambda: livenet.get_json(HH0, f"/accounts/{livenet.address(HH0)}")["balances"]["kwh"] >= 300, 90,
             "household-0 holds 300 Wh", livenet.logs)
    payout = cli("tx", "redeem", "--amount", "200", "--node", livenet.url(HH0), "--key", str(livenet.key_path(HH0)))
    row = f"#payouts-table tr[data-payout='{payout}']"
    with open_page(browser, livenet.url(HH1) + "/", locale="en-GB") as page:
        page.wait_for_selector(row, timeout=WAIT_MS)
        text = page.locator(row).inner_text()
        assert "Foyer 0" in text and "0.20 kWh" in text and "€0.04" in text and "owed" in text
        assert page.locator("#euro-outstanding").inner_text() == "€0.04"
        shot(page, tmp_path, "payout-owed")
        cli("registrar", "mark-paid", "--payout", payout, "--ref", "SEPA-TEST-0001", "--node", livenet.url(HH0),
            "--key", str(livenet.key_path("registrar")))
        wait_page(page, lambda p: p.locator(row).count() == 0, "the paid payout leaves the owed list")
        assert page.locator("#euro-paid").inner_text() == "€0.04"
        assert page.locator("#euro-outstanding").inner_text() == "€0.00"
        shot(page, tmp_path, "payout-paid")
