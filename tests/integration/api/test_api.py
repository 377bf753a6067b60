"""Every route of DESIGN §9 against live node processes: contents, paging, JSON errors."""

from __future__ import annotations

import httpx
import pytest

from node.api.app import build_app
from tests.integration.api.conftest import OPERATOR_TOKEN
from tests.support.livenet import LiveNet
from tests.support.wait import wait_for

HH0, HH1, VAL = "household-0", "household-1", "validator-0"


def test_status_has_every_documented_field(livenet: LiveNet):
    doc = livenet.get_json(HH0, "/openapi.json")
    status = livenet.get_json(HH0, "/status")
    assert set(doc["components"]["schemas"]["Status"]["required"]) <= set(status)
    assert status["address"] == livenet.address(HH0)
    assert status["commune"] == "Testville"
    assert status["interval_s"] == 1800


def test_openapi_documents_every_route(livenet: LiveNet):
    app = build_app(object(), peer_id_of=lambda key: "peer")
    documented = livenet.get_json(HH0, "/openapi.json")["paths"]
    assert {route.path for route in app.routes} == set(documented)


def test_block_and_account(livenet: LiveNet):
    wait_for(lambda: livenet.height(HH0) >= 1, 60, "the first block", livenet.logs)
    block = livenet.get_json(HH0, "/blocks/1")
    assert block["height"] == 1 and len(block["id"]) == 64
    account = livenet.get_json(HH0, f"/accounts/{livenet.address(HH0)}", signer=HH0)
    assert account["household"]["label"] == "Foyer 0"
    assert set(account["balances"]) == {"kwh", "hour"}
    assert account["ballot_by_category"] is None
    # Unsigned: what the chain needs in clear, no balances, no label.
    public = livenet.get_json(HH0, f"/accounts/{livenet.address(HH0)}")
    assert public["redacted"] and "balances" not in public and "label" not in public["household"]
    assert public["nonce"] == account["nonce"]


def test_block_long_poll_answers_with_the_next_block(livenet: LiveNet):
    # Without ?wait the next block is a 404 (it is not stored yet); with it the node
    # answers once the block is stored. Blocks commit about every second here.
    wait_for(lambda: livenet.height(HH0) >= 1, 60, "the first block", livenet.logs)
    for _ in range(3):
        after = livenet.height(HH0) + 1
        r = httpx.get(f"{livenet.url(HH0)}/blocks/{after}", params={"wait": 10}, timeout=30)
        assert r.status_code == 200, (after, r.text)
        assert r.json()["height"] == after
    far = livenet.height(HH0) + 50
    assert httpx.get(f"{livenet.url(HH0)}/blocks/{far}", params={"wait": 10}, timeout=30).status_code == 404


def test_intervals_show_production_after_an_interval_settles(livenet: LiveNet):
    row = livenet.wait_settled_production(HH0)
    assert row["export_wh"] > 0 and row["minted_wh"] > 0
    assert row["k"] * 1800 == row["start"]
    doc = livenet.get_json(HH0, f"/households/{livenet.address(HH0)}/intervals", signer=HH0)
    assert doc["to"] - doc["from"] == 47 * 1800       # the last 48 half hours
    assert [r["start"] for r in doc["intervals"]] == sorted(r["start"] for r in doc["intervals"])


def test_intervals_page_with_limit_and_next_from(livenet: LiveNet):
    livenet.wait_settled_production(HH0)
    addr = livenet.address(HH0)
    everything = livenet.get_json(HH0, f"/households/{addr}/intervals", signer=HH0)["intervals"]
    assert len(everything) >= 2
    first = livenet.get_json(HH0, f"/households/{addr}/intervals?limit=1&from={everything[0]['start']}", signer=HH0)
    assert len(first["intervals"]) == 1 and first["next_from"] == everything[0]["start"] + 1
    rest = livenet.get_json(HH0, f"/households/{addr}/intervals?from={first['next_from']}&to={first['to']}",
                            signer=HH0)
    assert [r["start"] for r in rest["intervals"]][:1] == [everything[1]["start"]]


def get_operator(livenet: LiveNet, name: str, path: str) -> httpx.Response:
    return httpx.get(livenet.url(name) + path, headers={"authorization": f"Bearer {OPERATOR_TOKEN}"}, timeout=10)


def test_consumers_are_counted_for_the_household_and_named_for_the_operator(livenet: LiveNet):
    row = livenet.wait_settled_production(HH0)
    path = f"/households/{livenet.address(HH0)}/consumers?interval={row['k']}"
    own = livenet.get_json(HH0, path, signer=HH0)
    assert own["settled"] and own["export_wh"] == row["export_wh"]
    assert own["consumers"] == [] and own["consumers_count"] >= 1 and 0 < own["local_wh"] <= row["export_wh"]
    doc = get_operator(livenet, VAL, path).json()
    users = {c["consumer"]: c for c in doc["consumers"]}
    assert livenet.address(HH1) in users and doc["named"]
    for c in doc["consumers"]:
        assert c["wh"] == c["numerator"] // c["denominator"]
    # local_wh is the exact total M·E_j/ΣE rounded once; each row is rounded down.
    floors = sum(c["wh"] for c in doc["consumers"])
    assert floors <= own["local_wh"] < floors + len(doc["consumers"]) and own["local_wh"] <= row["export_wh"]
    assert own["local_wh"] == sum(c["numerator"] for c in doc["consumers"]) // doc["consumers"][0]["denominator"]
    page = get_operator(livenet, VAL, path + "&limit=1").json()
    assert len(page["consumers"]) == 1


def test_household_routes_refuse_the_public_and_other_households(livenet: LiveNet):
    livenet.wait_settled_production(HH0)
    path = f"/households/{livenet.address(HH1)}/intervals"
    unsigned = livenet.get(VAL, path)
    assert unsigned.status_code == 401 and "sign the request" in unsigned.json()["error"]
    foreign = livenet.get(VAL, path, signer=HH0)
    assert foreign.status_code == 403 and "not by the household it belongs to" in foreign.json()["error"]
    # A validator's node serves each household its own data; another household's node does not.
    assert livenet.get(VAL, path, signer=HH1).status_code == 200
    other_node = livenet.get(HH0, path, signer=HH1)
    assert other_node.status_code == 403 and "another household's node" in other_node.json()["error"]
    assert get_operator(livenet, VAL, path).status_code == 200
    assert get_operator(livenet, HH0, path).status_code == 200


def test_aggregates_are_public_and_suppressed_below_min_aggregate(livenet: LiveNet):
    row = livenet.wait_settled_production(HH0)
    doc = livenet.get_json(VAL, f"/aggregates?from={row['start']}&to={row['start']}")
    assert doc["min_aggregate"] == 5
    (interval,) = doc["intervals"]
    # Two households: a sum would be one neighbour's curve, so none is published.
    assert interval["k"] == row["k"] and interval["producers"] >= 1 and interval["consumers"] >= 1
    assert (interval["sum_e"], interval["sum_i"], interval["m"], interval["suppressed"]) == (None, None, None, True)
    assert livenet.get_json(VAL, "/commune")["params"]["min_aggregate"] == 5


def test_governance_allocation_and_proposals(livenet: LiveNet):
    doc = livenet.get_json(HH0, "/governance/allocation")
    assert sum(doc["allocation"].values()) == 10_000 and sum(doc["applied"].values()) == 10_000
    assert doc["categories"] == list(doc["allocation"])
    assert doc["rule"] == "independent_markets"
    proposals = livenet.get_json(HH0, "/governance/proposals")
    assert proposals == {"proposals": [], "next_cursor": None}
    assert livenet.get_json(HH0, "/governance/proposals?status=open&limit=5") == proposals


def test_validators_show_health(livenet: LiveNet):
    doc = livenet.get_json(HH0, "/validators")
    assert doc["total"] == 1 and doc["next_offset"] is None
    (v,) = doc["validators"]
    assert v["name"] == "validator-0" and v["active"] and not v["equivocating"] and not v["self"]
    own = livenet.get_json(VAL, "/validators")["validators"][0]
    assert own["self"] and own["connected"] and own["height"] >= 1
    assert livenet.get_json(HH0, "/validators?offset=1")["validators"] == []


def test_commune_treasury_receives_the_levy(livenet: LiveNet):
    livenet.wait_settled_production(HH0)
    doc = livenet.get_json(HH0, "/commune")
    assert doc["households"] == 2 and doc["name"] == "Testville"
    held = doc["treasury"]["kwh"] + sum(f["received"] for f in doc["funds"].values())
    assert held > 0 and doc["totals"]["minted"] > 0


def test_txs_leave_readings_out_unless_asked(livenet: LiveNet):
    addr = livenet.address(HH0)
    livenet.wait_settled_production(HH0)
    assert all(t["type"] != "tx/reading" for t in livenet.get_json(HH0, f"/txs?account={addr}", signer=HH0)["txs"])
    # Readings are the household's: none to the public.
    assert livenet.get_json(HH0, f"/txs?account={addr}&readings=true")["txs"] == []
    readings = livenet.get_json(HH0, f"/txs?account={addr}&readings=true&limit=3", signer=HH0)
    assert readings["txs"] and all(t["signer"] == addr for t in readings["txs"])
    heights = [t["height"] for t in readings["txs"]]
    assert heights == sorted(heights, reverse=True)
    older = livenet.get_json(HH0, f"/txs?account={addr}&type=tx/reading&before={readings['next_before']}",
                             signer=HH0)
    assert all(t["height"] < readings["next_before"] for t in older["txs"])


def test_dashboard_and_its_files_are_served(livenet: LiveNet):
    page = livenet.get(HH0, "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/static/dashboard.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text      # no CDN
    js = livenet.get(HH0, "/static/dashboard.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "default-src 'self'" in js.headers["content-security-policy"]


@pytest.mark.parametrize("path, status", [
    ("/accounts/xyz", 400),
    ("/accounts/" + "AB" * 32, 400),
    ("/accounts/" + "ab" * 32, 404),
    ("/blocks/-1", 400),
    ("/blocks/abc", 400),
    ("/blocks/99999999999999999999", 400),
    ("/blocks/9999999", 404),
    ("/blocks/1?wait=11", 400),
    ("/blocks/1?wait=-1", 400),
    ("/blocks/1?wait=soon", 400),
    ("/households/" + "ab" * 32 + "/intervals", 401),
    ("/households/{hh0}/consumers", 400),
    ("/households/{hh0}/consumers?interval=-3", 400),
    ("/households/{hh0}/intervals?limit=0", 400),
    ("/households/{hh0}/intervals?from=x", 400),
    ("/governance/proposals?status=maybe", 400),
    ("/txs?type=tx/nothing", 400),
    ("/txs?readings=yes", 400),
    ("/txs?before=0", 400),
    ("/validators?limit=101", 400),
    ("/static/../../etc/passwd", 404),
    ("/no/such/route", 404),
])
def test_invalid_requests_get_a_json_error(livenet: LiveNet, path, status):
    resp = livenet.get(HH0, path.replace("{hh0}", livenet.address(HH0)))
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/json"
    assert isinstance(resp.json()["error"], str) and resp.json()["error"]


def test_invalid_method_is_405_json_with_allow(livenet: LiveNet):
    resp = httpx.delete(livenet.url(HH0) + "/status")
    assert resp.status_code == 405 and "GET" in resp.headers["allow"]
    assert resp.json()["error"]
    resp = httpx.get(livenet.url(HH0) + "/tx")
    assert resp.status_code == 405 and "POST" in resp.headers["allow"]


def test_invalid_tx_bodies(livenet: LiveNet):
    url = livenet.url(HH0) + "/tx"
    too_big = httpx.post(url, content=b"\x00" * 5000)
    assert too_big.status_code == 413 and "4096" in too_big.json()["error"]
    garbage = httpx.post(url, content=b"\x93\xa1x\x01\x02")
    assert garbage.status_code == 400 and garbage.json()["error"].startswith("malformed")
    empty = httpx.post(url, content=b"")
    assert empty.status_code == 400
