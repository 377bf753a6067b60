"""The consent flow on a live household node, over real HTTP (docs/privacy.md "Consent
and Data Connect"): the household registers a client and approves it with its key, the
client trades the code for a token and reads the curves in Data Connect shape (the
same energy as /households/{addr}/intervals), the household sees the reads in its log
and revokes the grant, after which the token is refused at once.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from node.cli import main
from node.clock import compute_local_day_start, compute_paris_offset_s
from tests.support.livenet import LiveNet

HH0, HH1 = "household-0", "household-1"
REDIRECT = "https://app.example/callback"
CLC = "/dataconnect/metering_data_clc/v5/consumption_load_curve"
PLC = "/dataconnect/metering_data_plc/v5/production_load_curve"
DC = "/dataconnect/metering_data_dc/v5/daily_consumption"
VERIFIER = "correct-horse-battery-staple-" * 2


def run(capsys, livenet: LiveNet, *argv: str, key: str = HH0) -> tuple[int, str, str]:
    code = main([*argv, "--node", livenet.url(HH0), "--key", str(livenet.key_path(key))])
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def local_day(t: int) -> dt.date:
    return dt.datetime.fromtimestamp(t + compute_paris_offset_s(t), dt.timezone.utc).date()


def prm_of(livenet: LiveNet, name: str) -> str:
    return livenet.get_json(name, f"/accounts/{livenet.address(name)}", signer=name)["household"]["prm"]


def authorize_url(livenet: LiveNet, client_id: str, scope: str, duration: str = "P1Y") -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
    return livenet.url(HH0) + "/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": scope,
        "state": "st-42", "duration": duration, "code_challenge": challenge, "code_challenge_method": "S256"})


def approve(capsys, livenet: LiveNet, url: str) -> str:
    code, out, err = run(capsys, livenet, "consent", "approve", "--url", url, "--yes")
    assert code == 0, err
    assert "asks to read" in out and "for 365 days" in out
    location = out.rsplit("redirect to ", 1)[1]
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["st-42"]
    return query["code"][0]


def exchange(http: httpx.Client, livenet: LiveNet, client: dict, code: str) -> httpx.Response:
    return http.post(livenet.url(HH0) + "/oauth/token", auth=(client["client_id"], client["client_secret"]),
                     data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                           "code_verifier": VERIFIER})


def read(http: httpx.Client, livenet: LiveNet, path: str, token: str | None, prm: str, start: dt.date,
         end: dt.date, node: str = HH0) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return http.get(livenet.url(node) + path, headers=headers,
                    params={"usage_point_id": prm, "start": start.isoformat(), "end": end.isoformat()})


def expected_w(livenet: LiveNet, start: dt.date, end: dt.date, field: str) -> dict[int, str]:
    """rank -> W of every settled interval in the period, from /households/{addr}/intervals."""
    first, last = compute_local_day_start(start), compute_local_day_start(end)
    doc = livenet.get_json(HH0, f"/households/{livenet.address(HH0)}/intervals?from={first}&to={last - 1}&limit=1000",
                           signer=HH0)
    return {(row["start"] - first) // 1800 + 1: str(2 * row[field]) for row in doc["intervals"] if row["settled"]}


def test_client_reads_curves_with_consent_until_the_household_revokes(livenet: LiveNet, capsys):
    settled = livenet.wait_settled_production(HH0)
    start = local_day(settled["start"])
    end = start + dt.timedelta(days=2)
    prm = prm_of(livenet, HH0)

    code, out, err = run(capsys, livenet, "consent", "client", "add", "--name", "Watt App",
                         "--redirect-uri", REDIRECT, "--json")
    assert code == 0, err
    client = json.loads(out)
    with httpx.Client(timeout=10) as http:
        # Bad requests are refused with the OAuth2 codes before the household is asked
        # (what a client asks is shown to the household only: read signed).
        for url, error in [(authorize_url(livenet, client["client_id"], "production_load_curve everything"),
                            "invalid_scope"),
                           (authorize_url(livenet, client["client_id"], "production_load_curve", "P1096D"),
                            "invalid_request"),
                           (authorize_url(livenet, "no-such-client", "production_load_curve"), "invalid_client")]:
            resp = livenet.get(HH0, url.removeprefix(livenet.url(HH0)), signer=HH0)
            assert (resp.status_code, resp.json()["error"]) == (400, error), resp.text
        unsigned = http.get(authorize_url(livenet, client["client_id"], "production_load_curve"))
        assert unsigned.status_code == 401 and "x-voisinage-key" in unsigned.json()["error_description"]
        # A browser the client sends there is sent on to the dashboard's approval panel.
        browser = http.get(authorize_url(livenet, client["client_id"], "production_load_curve"),
                           headers={"accept": "text/html,application/xhtml+xml"})
        assert browser.status_code == 303 and browser.headers["location"].startswith("/?authorize=response_type")

        code = approve(capsys, livenet,
                       authorize_url(livenet, client["client_id"], "consumption_load_curve production_load_curve"))
        resp = exchange(http, livenet, client, code)
        assert resp.status_code == 200, resp.text
        token = resp.json()["access_token"]

        production = read(http, livenet, PLC, token, prm, start, end)
        assert production.status_code == 200, production.text
        reading = production.json()["usage_point"][0]["meter_reading"]
        assert (reading["usage_point_id"], reading["reading_type"]["unit"]) == (prm, "W")
        got = {r["rank"]: r["value"] for r in reading["interval_reading"]}
        assert got == expected_w(livenet, start, end, "export_wh") and got
        # The feeder exports 80 Wh a chain minute: a whole half hour is 2 400 Wh, 4 800 W.
        assert any(int(v) > 0 for v in got.values()) and max(int(v) for v in got.values()) <= 2 * 30 * 80

        consumption = read(http, livenet, CLC, token, prm, start, end)
        assert consumption.status_code == 200
        got = {r["rank"]: r["value"] for r in consumption.json()["usage_point"][0]["meter_reading"]["interval_reading"]}
        assert got == expected_w(livenet, start, end, "import_wh")

        refused = read(http, livenet, DC, token, prm, start, end)
        assert (refused.status_code, refused.json()["error"]) == (403, "insufficient_scope")
        other = read(http, livenet, PLC, token, prm_of(livenet, HH1), start, end)
        assert (other.status_code, other.json()["error"]) == (403, "access_denied")
        elsewhere = read(http, livenet, PLC, token, prm_of(livenet, HH1), start, end, node=HH1)
        assert (elsewhere.status_code, elsewhere.json()["error"]) == (401, "invalid_token")
        anonymous = read(http, livenet, PLC, None, prm, start, end)
        assert anonymous.status_code == 401 and "Bearer" in anonymous.headers["www-authenticate"]

        # The household reads its own curve with its key: the same document.
        last = (end - dt.timedelta(days=1)).isoformat()
        code, out, err = run(capsys, livenet, "account", "curve", "--from", start.isoformat(), "--to", last, "--json")
        assert code == 0, err
        assert json.loads(out) == consumption.json()
        code, out, err = run(capsys, livenet, "account", "curve", "--from", start.isoformat(), "--to", last,
                             key=HH1)
        assert code == 1 and "not this node's household" in err

        code, out, err = run(capsys, livenet, "consent", "log", "--json")
        assert code == 0, err
        entries = json.loads(out)["entries"]
        seen = {(e["client_name"], e["scope"], e["status"], e["start"], e["end"]) for e in entries}
        assert {("Watt App", "production_load_curve", 200, start.isoformat(), end.isoformat()),
                ("Watt App", "consumption_load_curve", 200, start.isoformat(), end.isoformat()),
                ("Watt App", "daily_consumption", 403, start.isoformat(), end.isoformat()),
                (None, "consumption_load_curve", 200, start.isoformat(), end.isoformat())} <= seen

        code, out, err = run(capsys, livenet, "consent", "grants", "--json")
        grants = json.loads(out)["grants"]
        assert [g["status"] for g in grants] == ["active"] and grants[0]["client_name"] == "Watt App"
        code, out, err = run(capsys, livenet, "consent", "revoke", "--grant", grants[0]["id"])
        assert code == 0 and "revoked" in out, err
        after = read(http, livenet, PLC, token, prm, start, end)
        assert (after.status_code, after.json()["error"]) == (401, "invalid_token")


def test_replayed_code_is_refused_and_its_grant_revoked(livenet: LiveNet, capsys):
    code, out, err = run(capsys, livenet, "consent", "client", "add", "--name", "Replayer",
                         "--redirect-uri", REDIRECT, "--json")
    assert code == 0, err
    client = json.loads(out)
    code = approve(capsys, livenet, authorize_url(livenet, client["client_id"], "daily_consumption"))
    with httpx.Client(timeout=10) as http:
        first = exchange(http, livenet, client, code)
        assert first.status_code == 200
        replay = exchange(http, livenet, client, code)
        assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    code, out, err = run(capsys, livenet, "consent", "grants", "--json")
    assert code == 0, err
    mine = [g for g in json.loads(out)["grants"] if g["client_name"] == "Replayer"]
    assert [g["status"] for g in mine] == ["revoked"]


def test_consent_routes_refuse_unsigned_and_foreign_keys(livenet: LiveNet, capsys):
    with httpx.Client(timeout=10) as http:
        resp = http.get(livenet.url(HH0) + "/consent/log")
        assert resp.status_code == 401 and "x-voisinage-key" in resp.json()["error_description"]
    code, _, err = run(capsys, livenet, "consent", "grants", key=HH1)
    assert code == 1 and "not this node's household" in err and "Traceback" not in err


def test_removed_client_loses_its_grants_and_tokens_at_once(livenet: LiveNet, capsys):
    code, out, err = run(capsys, livenet, "consent", "client", "add", "--name", "Gone App",
                         "--redirect-uri", REDIRECT, "--json")
    assert code == 0, err
    client = json.loads(out)
    code = approve(capsys, livenet, authorize_url(livenet, client["client_id"], "daily_consumption"))
    with httpx.Client(timeout=10) as http:
        tokens = exchange(http, livenet, client, code).json()
        day = local_day(livenet.wait_settled_production(HH0)["start"])
        prm = prm_of(livenet, HH0)
        assert read(http, livenet, DC, tokens["access_token"], prm, day, day + dt.timedelta(days=1)).status_code == 200
        code, out, err = run(capsys, livenet, "consent", "client", "remove", "--client", client["client_id"])
        assert code == 0, err
        assert out == f"removed client {client['client_id']} (Gone App): 1 active grant(s) revoked"
        after = read(http, livenet, DC, tokens["access_token"], prm, day, day + dt.timedelta(days=1))
        assert (after.status_code, after.json()["error"]) == (401, "invalid_token")
        refresh = http.post(livenet.url(HH0) + "/oauth/token", auth=(client["client_id"], client["client_secret"]),
                            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        assert (refresh.status_code, refresh.json()["error"]) == (401, "invalid_client")
    code, out, err = run(capsys, livenet, "consent", "grants", "--json")
    doc = json.loads(out)
    assert client["client_id"] not in {c["client_id"] for c in doc["clients"]}
    assert [g["status"] for g in doc["grants"] if g["client_name"] == "Gone App"] == ["revoked"]
    code, out, err = run(capsys, livenet, "consent", "client", "remove", "--client", client["client_id"])
    assert code == 1 and f"no client {client['client_id']}" in err and "Traceback" not in err
    code, out, err = run(capsys, livenet, "consent", "client", "remove", "--client", "not/an id")
    assert code == 1 and "is not a client id" in err and "Traceback" not in err
