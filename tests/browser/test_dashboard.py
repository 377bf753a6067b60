"""The dashboard in a real browser against a live commune (DESIGN §9 "Dashboard"; who
sees what: docs/privacy.md "Who sees what through the API").

A household's page reads its private data with requests the page signs with the
household's key, loaded from its key file into the tab (WebCrypto Ed25519); without it
the page shows the commune's public side only. Each test saves screenshots in its own
tmp directory (printed with ``pytest -s``). Page helpers: tests/browser/pages.py.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from node.clock import compute_paris_offset_s
from tests.browser.pages import PHONE, WAIT_MS, attr, open_page, shot, wait_page
from tests.support.livenet import LiveNet
from tests.support.nodes import run_cli
from tests.support.wait import wait_for

HH0, HH1 = "household-0", "household-1"


def cli(*argv: str) -> str:
    done = run_cli(*argv, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def load_key(page, livenet: LiveNet, name: str) -> None:
    """Give the page household ``name``'s key file, as the household would pick it."""
    page.set_input_files("#key-file", str(livenet.key_path(name)))
    wait_page(page, lambda p: attr(p, "#key-status", "data-key") == livenet.address(name), f"{name}'s key loaded")


def test_household_page_shows_production_after_an_interval_settles(net: LiveNet, browser, tmp_path):
    settled = net.wait_settled_production(HH0)
    # On the sealing commune household-0's node is light and its meter's readings went
    # in sealed (a clear one is refused there): the validator, which opened them, settled
    # the same interval as the household's own node shows.
    light = bool(net.status(HH0).get("light"))
    assert light == (net.sealing is not None)
    path = f"/households/{net.address(HH0)}"
    validator_rows = net.get_json("validator-0", f"{path}/intervals", signer=HH0)["intervals"]
    assert [r for r in validator_rows if r["k"] == settled["k"]][0]["export_wh"] == settled["export_wh"]
    used = net.get_json("validator-0", f"{path}/consumers?interval={settled['k']}", signer=HH0)
    with open_page(browser, net.url(HH0) + "/") as page:
        load_key(page, net, HH0)
        wait_page(page, lambda p: int(attr(p, "#produced-total", "data-wh") or 0) > 0, "production on the page")
        chart = page.locator("#energy-chart svg")
        assert int(chart.get_attribute("data-slots")) == 48
        bar = page.locator(f"#energy-chart g.slot[data-k='{settled['k']}']")
        assert int(bar.get_attribute("data-export-wh")) == settled["export_wh"] > 0
        assert float(bar.locator("rect.prod").get_attribute("height")) > 0
        # Who used my energy: how much (household-1 consumed in that interval), the same
        # as the validator says, and how many neighbours, not who: that would be their
        # curve (docs/privacy.md). A light node holds no neighbour's record: no count.
        page.locator(f"#energy-chart g.slot[data-k='{settled['k']}']").click()
        wait_page(page, lambda p: attr(p, "#consumers-summary", "data-k") == str(settled["k"]), "the consumers")
        if light:
            # A household reads no local_wh of a hidden interval from any node: with its
            # own E it would give the interval's M/ΣE (docs/privacy.md "Who used my energy").
            assert used["local_wh"] is None and used["sum_e"] is None and not used["named"]
        else:
            assert 0 < used["local_wh"] <= settled["export_wh"]
        if light:
            # Two households: fewer than min_aggregate made the interval up, so its sums
            # are the validators' alone; the light node was refused them and says so.
            own = net.get_json(HH0, f"{path}/consumers?interval={settled['k']}", signer=HH0)
            assert own["local_wh"] is None and own["consumers_count"] is None
            assert attr(page, "#consumers-summary", "data-wh") == ""
            assert attr(page, "#consumers-summary", "data-count") == ""
            assert "light node" in page.locator("#consumers-summary").inner_text() or \
                "nœud léger" in page.locator("#consumers-summary").inner_text()
        else:
            assert int(attr(page, "#consumers-summary", "data-wh")) == used["local_wh"]
            assert int(attr(page, "#consumers-summary", "data-count")) == used["consumers_count"] >= 1
        assert page.locator("#consumers-table tbody tr").count() == 0
        assert "Foyer 0" in page.locator("#hh-label").inner_text()
        assert page.locator("#produced-total").inner_text().endswith("kWh")
        shot(page, tmp_path, "household-production")


def test_a_household_sees_its_own_curve_and_cannot_open_another_s(net: LiveNet, browser, tmp_path):
    net.wait_settled_production(HH0)
    sent: list[str] = []
    with open_page(browser, net.url(HH0) + "/", locale="en-GB") as page:
        page.on("request", lambda r: sent.append(f"{r.url} {r.headers} {r.post_data or ''}"))
        # Without the key: the page says plainly that the data is private, and draws none.
        private = wait_page(page, lambda p: p.locator("#hh-private").is_visible() and
                            p.locator("#hh-private").inner_text(), "the private notice")
        assert "load this household's key file" in private and attr(page, "#hh-private", "data-status") == "401"
        assert page.locator("#energy-chart svg").count() == 0 and page.locator("#balance-kwh").inner_text() == "–"
        shot(page, tmp_path, "own-locked")
        # With its key: its own curve and balance.
        load_key(page, net, HH0)
        wait_page(page, lambda p: p.locator("#energy-chart svg").count() == 1, "the household's own curve")
        wait_page(page, lambda p: p.locator("#hh-private").is_hidden(), "the notice gone")
        assert page.locator("#balance-kwh").inner_text().endswith("kWh")
        shot(page, tmp_path, "own-curve")
        # Another household's page: the node refuses, the page says so and shows none of it.
        page.goto(net.url(HH0) + f"/?addr={net.address(HH1)}")
        page.wait_for_selector("body[data-height]", timeout=WAIT_MS)
        assert attr(page, "#key-status", "data-key") == net.address(HH0)          # the key stayed in the tab
        wait_page(page, lambda p: p.locator("#hh-private").is_visible(), "the refusal for household-1")
        assert "Private data" in page.locator("#hh-private").inner_text()
        assert page.locator("#energy-chart svg").count() == 0 and page.locator("#balance-kwh").inner_text() == "–"
        assert "Foyer 1" not in page.locator("#hh-label").inner_text()
        shot(page, tmp_path, "other-refused")
        page.fill("#addr-input", "not-a-key")
        page.click("#addr-form button")
        page.wait_for_timeout(3500)            # one poll later the complaint still stands
        assert "64" in page.locator("#hh-message").inner_text()
        # A file that is not a key file is refused, and no key stays loaded.
        bad = tmp_path / "not-a-key.json"
        bad.write_text(json.dumps({"type": "ed25519", "public": "ab" * 32, "seed": "cd" * 32}))
        page.set_input_files("#key-file", str(bad))
        wait_page(page, lambda p: "does not match" in p.locator("#key-status").inner_text(), "the bad key refused")
        assert attr(page, "#key-status", "data-key") == ""
    # The API itself: household-0's signature does not open household-1's curve.
    assert net.get(HH0, f"/households/{net.address(HH1)}/intervals", signer=HH0).status_code == 403
    # The key never left the page: its seed is in no request the browser sent.
    seed = net.key(HH0).seed.hex()
    assert sent and not any(seed in line for line in sent)
    assert any("x-voisinage-signature" in line for line in sent)


def local_day(t: int) -> dt.date:
    return dt.datetime.fromtimestamp(t + compute_paris_offset_s(t), dt.timezone.utc).date()


def test_a_household_grants_and_revokes_a_third_party_and_sees_the_access_log(net: LiveNet, browser, tmp_path):
    settled = net.wait_settled_production(HH0)
    # The third party's client, registered by the household on its node; its redirect
    # URI is never visited: the test plays the client with the code it would receive.
    redirect = "http://127.0.0.1:9/callback"
    client = json.loads(run_cli("consent", "client", "add", "--name", "Watt App", "--redirect-uri", redirect,
                                "--json", "--node", net.url(HH0), "--key", str(net.key_path(HH0)),
                                timeout=60).stdout)
    asked = net.url(HH0) + "/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client["client_id"], "redirect_uri": redirect,
        "scope": "consumption_load_curve production_load_curve", "state": "st-7", "duration": "P90D"})
    prm = net.get_json(HH0, f"/accounts/{net.address(HH0)}", signer=HH0)["household"]["prm"]
    start = local_day(settled["start"])
    curve = {"usage_point_id": prm, "start": start.isoformat(), "end": (start + dt.timedelta(days=1)).isoformat()}
    plc = net.url(HH0) + "/dataconnect/metering_data_plc/v5/production_load_curve"
    with open_page(browser, net.url(HH0) + "/", locale="en-GB") as page, httpx.Client(timeout=10) as http:
        load_key(page, net, HH0)
        # The client sends the household's browser to the node, which sends it on to the dashboard.
        page.goto(asked)
        page.wait_for_selector("body[data-height]", timeout=WAIT_MS)
        text = wait_page(page, lambda p: p.locator("#authorize-request").inner_text(), "the request shown")
        assert "Watt App" in text and "90 days" in text and prm in text and "production curve" in text
        shot(page, tmp_path, "consent-request")
        page.click("#authorize-approve")
        location = wait_page(page, lambda p: (attr(p, "#authorize-location", "href") or "").startswith(redirect)
                             and attr(p, "#authorize-location", "href"), "the redirect with the code")
        assert location.startswith(redirect + "?")
        query = parse_qs(urlsplit(location).query)
        assert query["state"] == ["st-7"]
        # The client trades the code for a token and reads the curve.
        token = http.post(net.url(HH0) + "/oauth/token", auth=(client["client_id"], client["client_secret"]),
                          data={"grant_type": "authorization_code", "code": query["code"][0],
                                "redirect_uri": redirect})
        assert token.status_code == 200, token.text
        bearer = {"authorization": f"Bearer {token.json()['access_token']}"}
        read = http.get(plc, params=curve, headers=bearer)
        assert read.status_code == 200 and read.json()["usage_point"][0]["meter_reading"]["usage_point_id"] == prm
        # The household sees the grant and the client's read in its access log.
        row = page.locator("#grants-table tr", has_text="Watt App").first
        wait_page(page, lambda p: row.count() and row.locator("td[data-status='active']").count(), "the grant")
        grant_id = row.get_attribute("data-grant")
        wait_page(page, lambda p: p.locator("#log-table tr[data-who='client']", has_text="Watt App").count(),
                  "the client's read in the access log")
        logged = page.locator("#log-table tr[data-who='client']", has_text="Watt App").first.inner_text()
        assert "production curve" in logged and "200" in logged and start.isoformat() in logged
        shot(page, tmp_path, "consent-granted")
        # It revokes the grant: the client's token stops working at once.
        page.click(f"button.revoke[data-grant='{grant_id}']")
        wait_page(page, lambda p: p.locator(f"#grants-table tr[data-grant='{grant_id}'] td[data-status='revoked']")
                  .count(), "the grant revoked")
        after = http.get(plc, params=curve, headers=bearer)
        assert (after.status_code, after.json()["error"]) == (401, "invalid_token")
        shot(page, tmp_path, "consent-revoked")


def test_the_commune_page_shows_aggregates_and_suppresses_what_few_households_make(net: LiveNet, browser, tmp_path):
    net.wait_settled_production(HH0)
    for name in ("validator-0", HH0):
        # A light household node (the sealing commune's) cannot count the households:
        # it says so and shows no sum, rather than counting its own household alone.
        light = bool(net.status(name).get("light"))
        with open_page(browser, net.url(name) + "/", locale="en-GB") as page:
            wait_page(page, lambda p: p.locator("#aggregates-chart svg").count(), "the commune's chart")
            assert int(attr(page, "#aggregates-chart svg", "data-slots")) == 48
            # Two households: every settled half hour is suppressed (min_aggregate 5). A light
            # node is refused those intervals' records altogether: it has none to draw.
            if light:
                wait_page(page, lambda p: attr(p, "#aggregates-panel", "data-counted") == "false", "the note")
            else:
                wait_page(page, lambda p: int(attr(p, "#aggregates-panel", "data-suppressed") or 0) >= 1,
                          "a suppressed one")
                assert page.locator("#aggregates-chart g.slot.suppressed").count() >= 1
            assert attr(page, "#aggregates-panel", "data-shown") == "0"
            assert attr(page, "#aggregates-panel", "data-counted") == ("false" if light else "true")
            assert int(attr(page, "#aggregates-chart svg", "data-export-wh")) == 0
            note = page.locator("#aggregates-note").inner_text()
            assert ("cannot count the households" if light else "fewer than 5 households") in note
            shot(page, tmp_path, f"commune-aggregates-{name}")


def test_transfer_made_with_the_cli_appears_on_both_pages(livenet: LiveNet, browser, tmp_path):
    tx_id = cli("tx", "transfer", "--to", livenet.address(HH1), "--amount", "1234", "--memo", "pain",
                "--node", livenet.url(HH0), "--key", str(livenet.key_path(HH0)))
    row = f"#activity li[data-tx-id='{tx_id}']"
    with open_page(browser, livenet.url(HH0) + "/", locale="en-GB") as page:      # the sender's own node
        load_key(page, livenet, HH0)
        page.wait_for_selector(row, timeout=WAIT_MS)
        text = page.locator(row).inner_text()
        assert "transfer" in text and "sent to" in text and "1.23 kWh" in text and "−" in text
        shot(page, tmp_path, "transfer-sender")
    with open_page(browser, livenet.url(HH1) + "/", locale="en-GB") as page:      # the recipient's own node
        load_key(page, livenet, HH1)
        page.wait_for_selector(row, timeout=WAIT_MS)
        text = page.locator(row).inner_text()
        # The sender's label is its own: the recipient sees its key.
        assert "received from" in text and livenet.address(HH0)[:8] in text and "+1.23 kWh" in text
        assert "Foyer 0" not in text
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
            # A household's label is private: the public panel names it by its key.
            assert hh1[:8] in page.locator(row).inner_text() and "abababab" in page.locator(row).inner_text()
            assert "Foyer 1" not in page.locator(row).inner_text()
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
    wait_for(lambda: livenet.get_json(HH0, f"/accounts/{livenet.address(HH0)}", signer=HH0)["balances"]["kwh"] >= 300,
             90,
             "household-0 holds 300 Wh", livenet.logs)
    payout = cli("tx", "redeem", "--amount", "200", "--node", livenet.url(HH0), "--key", str(livenet.key_path(HH0)))
    row = f"#payouts-table tr[data-payout='{payout}']"
    with open_page(browser, livenet.url(HH1) + "/", locale="en-GB") as page:
        # The commune's totals are public; the payout itself is household-0's.
        wait_page(page, lambda p: p.locator("#euro-outstanding").inner_text() == "€0.04", "the total owed")
        assert page.locator(row).count() == 0
    with open_page(browser, livenet.url(HH0) + "/", locale="en-GB") as page:
        load_key(page, livenet, HH0)
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
