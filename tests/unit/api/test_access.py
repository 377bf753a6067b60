"""Who sees what through the API (node/api/access.py, node/api/private.py, docs/privacy.md
"Who sees what through the API"): the access class of every route, and the answers a
real node (a real commune home, LevelDB store, blocks committed through the node's own
commit path) gives the public, a household by its signature, another household, a
registrar and the operator; and the public aggregates with ``min_aggregate``."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import trio

from node.api.access import ACCESS_CLASSES, Viewer
from node.api.app import build_app
from node.api.assets import StaticAssets
from node.api.operations import Operation, Reply, build_routes
from node.api.private import PUBLIC_TXS, redact_tx
from node.api.views import get_aggregates_view, get_consumers_view
from node.api.routes import build_route_table
from node.consent.signed import NONCE_BYTES, sign_target
from node.consent.store import open_consent_store
from node.home.homedir import KEY_FILE, create_network, load_home
from node.home.keyfile import load_key
from node.store.pruning import Pruning
from tests.unit.service.test_pruning_node import Run
from tokens import layout as L
from tokens.genesis import DEFAULT_PARAMS
from tokens.txs import TX_TYPES, Delegate
from wire import Keypair, sign_message

GENESIS_TIME = 1_700_000_000 - 1_700_000_000 % 1800
TOKEN = "the-mairie-s-token"
HOUSEHOLDS = [f"household-{i}" for i in range(6)]
PRODUCERS, CONSUMERS = HOUSEHOLDS[:3], HOUSEHOLDS[3:]
K0 = GENESIS_TIME // 1800


@pytest.fixture(scope="module")
def commune(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("access")
    create_network(root, name="Testville", insee="12345", validators=1, households=6, base_port=41100,
                   genesis_time=GENESIS_TIME, params={"min_aggregate": 3})
    return root


def feed(run: Run) -> None:
    """Interval 0: three producers (100 Wh each) and three consumers (60 Wh each);
    interval 1: one producer (50 Wh), the same three consumers (60 Wh each); then a
    block that settles both."""
    t0 = GENESIS_TIME
    run.commit(t0 + 1, [run.reading(n, t0 + 1, 0, 0) for n in HOUSEHOLDS])
    run.commit(t0 + 901, [run.reading(n, t0 + 900, 0, 100) for n in PRODUCERS]
               + [run.reading(n, t0 + 900, 60, 0) for n in CONSUMERS])
    run.commit(t0 + 2701, [run.reading(PRODUCERS[0], t0 + 2700, 0, 150)]
               + [run.reading(n, t0 + 2700, 120, 0) for n in CONSUMERS])
    run.commit(t0 + 3600 + 400)


@pytest.fixture(scope="module")
def validator(commune: Path):
    run = Run(commune, "validator-0", Pruning(mode="archive"))
    feed(run)
    yield run
    run.close()


@pytest.fixture(scope="module")
def household_node(commune: Path, validator: Run):
    """household-0's own node, fed the same blocks."""
    run = Run(commune, "household-0", Pruning(mode="archive"))
    feed(run)
    yield run
    run.close()


def key(commune: Path, name: str) -> Keypair:
    return load_key(commune / name / KEY_FILE)


def addr(commune: Path, name: str) -> str:
    return key(commune, name).public.hex()


def get(run: Run, path: str, signer: Keypair | None = None, token: str | None = None,
        headers: dict[str, str] | None = None) -> httpx.Response:
    """GET ``path`` of ``run``'s app (run with the operator token TOKEN), signed by
    ``signer`` and/or with the bearer ``token``."""
    sent = dict(headers or {})
    if signer is not None:
        sent.update(sign_target(signer, "GET", path, int(time.time()), secrets.token_bytes(NONCE_BYTES)))
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    app = build_app(run.node, api_token=TOKEN, peer_id_of=lambda k: "peer")

    async def fetch():
        transport = httpx.ASGITransport(app, client=("192.0.2.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            return await client.get(path, headers=sent)
    return trio.run(fetch)


# -- the table ------------------------------------------------------------------------------


class Untouchable:
    key = SimpleNamespace(public=bytes(32))

    def __getattr__(self, name):
        raise AssertionError(f"the node was read: {name}")


def test_every_route_has_an_access_class_shown_in_openapi():
    app = build_app(Untouchable(), peer_id_of=lambda k: "peer")
    doc = trio.run(lambda: _get_doc(app))
    assert doc["x-access-classes"] == ACCESS_CLASSES
    ops = [(path, method, op) for path, methods in doc["paths"].items() for method, op in methods.items()]
    assert len(ops) >= 40 and all(op["x-access"] in ACCESS_CLASSES for _, _, op in ops)
    by_class = {(method.upper(), path): op["x-access"] for path, method, op in ops}
    assert by_class[("GET", "/households/{addr}/intervals")] == "household"
    assert by_class[("GET", "/households/{addr}/consumers")] == "household"
    assert by_class[("GET", "/accounts/{addr}")] == "redacted"
    assert by_class[("GET", "/aggregates")] == by_class[("GET", "/commune")] == "public"
    assert by_class[("GET", "/consent/log")] == "own" and by_class[("POST", "/tx")] == "local"
    # A household route says how to reach it: a signature or the operator's token.
    intervals = doc["paths"]["/households/{addr}/intervals"]["get"]
    assert intervals["security"] == [{"householdSignature": []}, {"apiToken": []}]
    assert {"401", "403"} <= set(intervals["responses"])


async def _get_doc(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://node") as client:
        return (await client.get("/openapi.json")).json()


def test_a_row_without_an_access_class_is_refused_by_the_table():
    async def handler(call):
        raise AssertionError("never called")
    row = Operation("/x", "GET", handler, "x", "node", Reply(200, "x", {}))
    with pytest.raises(ValueError, match="access class"):
        build_routes([row], None, None)
    table = build_route_table(_AnyHandler(), _AnyHandler(), StaticAssets(), handler, "00" * 32)
    assert all(op.access in ACCESS_CLASSES for op in table)


class _AnyHandler:
    def __getattr__(self, name):
        async def handler(call):
            raise AssertionError("never called")
        return handler

    def dataconnect_handler(self, measure):
        return self.__getattr__("dataconnect")


# -- household routes --------------------------------------------------------------------------


HOUSEHOLD_PATHS = ("/households/{a}/intervals?from={t}&to={t2}", "/households/{a}/consumers?interval={k}",
                   "/households/{a}/reconciliation")


def paths_of(commune: Path, name: str) -> list[str]:
    return [p.format(a=addr(commune, name), t=GENESIS_TIME, t2=GENESIS_TIME + 1800, k=K0) for p in HOUSEHOLD_PATHS]


def test_a_household_route_unsigned_is_refused_401_with_a_clear_error(commune, validator):
    for path in paths_of(commune, "household-3"):
        r = get(validator, path)
        assert r.status_code == 401, path
        assert "private" in r.json()["error"] and "sign the request" in r.json()["error"]
        assert r.headers["www-authenticate"].startswith("Voisinage-Signature")


def test_a_household_route_signed_by_another_household_is_refused_403(commune, validator):
    for path in paths_of(commune, "household-3"):
        r = get(validator, path, signer=key(commune, "household-4"))
        assert r.status_code == 403, path
        assert "not by the household it belongs to" in r.json()["error"]


def test_a_validator_serves_each_household_its_own_data_by_its_signature(commune, validator):
    for name in ("household-3", "household-1"):
        for path in paths_of(commune, name):
            assert get(validator, path, signer=key(commune, name)).status_code == 200, path
    doc = get(validator, paths_of(commune, "household-3")[0], signer=key(commune, "household-3")).json()
    assert [(r["start"] - GENESIS_TIME, r["import_wh"]) for r in doc["intervals"]] == [(0, 60), (1800, 60)]


def test_the_operator_token_reads_every_household(commune, validator):
    for path in paths_of(commune, "household-4"):
        assert get(validator, path, token=TOKEN).status_code == 200, path
    wrong = get(validator, paths_of(commune, "household-4")[0], token="not-the-token")
    assert wrong.status_code == 401 and "API token" in wrong.json()["error"]


def test_a_household_node_serves_only_its_own_household(commune, household_node):
    own = paths_of(commune, "household-0")[0]
    assert get(household_node, own, signer=key(commune, "household-0")).status_code == 200
    other = paths_of(commune, "household-3")[0]
    refused = get(household_node, other, signer=key(commune, "household-3"))
    assert refused.status_code == 403 and "another household's node" in refused.json()["error"]
    # Its operator (the household running it, with its token) reads what the node holds.
    assert get(household_node, other, token=TOKEN).status_code == 200


def test_a_signature_is_taken_once(commune, validator):
    path = paths_of(commune, "household-3")[0]
    headers = sign_target(key(commune, "household-3"), "GET", path, int(time.time()), bytes(16))
    app = build_app(validator.node, api_token=TOKEN, peer_id_of=lambda k: "peer")

    async def twice():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://node") as client:
            return [(await client.get(path, headers=headers)) for _ in range(2)]
    first, second = trio.run(twice)
    assert first.status_code == 200 and second.status_code == 401 and "already used" in second.json()["error"]


def test_a_signature_over_another_query_is_refused(commune, validator):
    path = paths_of(commune, "household-3")[0]
    headers = sign_target(key(commune, "household-3"), "GET", path, int(time.time()), bytes(range(16)))
    r = get(validator, path.replace("from=", "from=1"), headers=headers)
    assert r.status_code == 401 and "bad signature" in r.json()["error"]


def test_who_used_my_energy_counts_consumers_but_names_them_only_to_the_operator(commune, validator):
    path = paths_of(commune, "household-0")[1]
    own = get(validator, path, signer=key(commune, "household-0")).json()
    assert own["consumers"] == [] and not own["named"]
    assert own["consumers_count"] == 3 and own["local_wh"] == 60     # M·E_j/ΣE = 180·100/300
    full = get(validator, path, token=TOKEN).json()
    assert {row["consumer"] for row in full["consumers"]} == {addr(commune, n) for n in CONSUMERS}
    assert full["local_wh"] == own["local_wh"] and full["named"]


def test_a_light_node_tells_how_much_of_my_energy_was_used_but_not_by_how_many(commune, validator):
    # A light household node holds its own interval record and the public one, not its
    # neighbours': the same total, no count it cannot make (docs/privacy.md "The dashboard").
    with validator.store.snapshot() as snap:
        light = get_consumers_view(snap.history, key(commune, "household-0").public, K0, None, 100, light=True)
    assert (light["local_wh"], light["consumers_count"], light["consumers"]) == (60, None, [])


# -- redacted routes ---------------------------------------------------------------------------


def test_an_account_shows_the_public_only_what_the_chain_needs_in_clear(commune, validator):
    path = f"/accounts/{addr(commune, 'household-3')}"
    public = get(validator, path).json()
    assert public["redacted"] and "balances" not in public and "gifts" not in public
    assert set(public["household"]) == {"solidarity", "since_height", "last_reading"}
    assert set(public["household"]["last_reading"]) == {"seq", "t"} and public["household"]["last_reading"]["seq"] == 3
    assert public["nonce"] == 0 and public["delegations"] == {} and public["pending_nonce"] is None
    own = get(validator, path, signer=key(commune, "household-3")).json()
    assert "redacted" not in own and own["household"]["label"] == "Foyer 3" and own["household"]["prm"]
    assert own["balances"]["kwh"] < 0 and own["household"]["last_reading"]["import_wh"] == 120
    assert get(validator, path, token=TOKEN).json() == own
    # The registrar reads the record it registered, not the balances.
    registrar = get(validator, path, signer=key(commune, "registrar")).json()
    assert registrar["household"]["prm"] == own["household"]["prm"] and "balances" not in registrar
    other = get(validator, path, signer=key(commune, "household-4")).json()
    assert other == public


def test_an_account_shows_the_highest_nonce_waiting_in_the_mempool(commune, validator):
    """A client picks its next nonce past it (node/commands/client.py ``fetch_next_nonce``):
    one past the committed nonce would be spent by the tx that waits."""
    h5 = key(commune, "household-5")
    path = f"/accounts/{h5.public.hex()}"
    waiting = [sign_message(Delegate(signer=h5.public, nonce=nonce, topic="*", to=key(commune, "household-4").public,
                                     sig=bytes(64)), validator.node.chain_id, h5) for nonce in (7, 9)]
    ids = [validator.node.submit_tx(tx.encode()) for tx in waiting]
    try:
        assert get(validator, path).json()["pending_nonce"] == 9
        assert get(validator, f"/accounts/{addr(commune, 'household-4')}").json()["pending_nonce"] is None
    finally:
        validator.node.mempool.remove(ids)
    assert get(validator, path).json()["pending_nonce"] is None


def test_blocks_and_txs_keep_a_household_s_transactions_to_it_and_the_operator(commune, validator):
    public = get(validator, "/blocks/2").json()
    assert len(public["txs"]) == 6 and public["header"]["height"] == 2
    assert all(tx["redacted"] and set(tx) == {"id", "type", "signer", "redacted"} for tx in public["txs"])
    full = get(validator, "/blocks/2", token=TOKEN).json()
    assert [tx["id"] for tx in full["txs"]] == [tx["id"] for tx in public["txs"]]
    assert {tx["export_wh"] for tx in full["txs"]} == {0, 100}
    mine = get(validator, "/blocks/2", signer=key(commune, "household-3")).json()
    shown = [tx for tx in mine["txs"] if "redacted" not in tx]
    assert [tx["signer"] for tx in shown] == [addr(commune, "household-3")] and shown[0]["import_wh"] == 60
    # A listing leaves out what the reader may not see.
    assert get(validator, "/txs?readings=true").json()["txs"] == []
    own = get(validator, f"/txs?account={addr(commune, 'household-3')}&readings=true",
              signer=key(commune, "household-3")).json()["txs"]
    assert len(own) == 3 and all(tx["type"] == "tx/reading" and "import_wh" in tx for tx in own)
    assert len(get(validator, "/txs?readings=true", token=TOKEN).json()["txs"]) == 16     # 6 + 6 + 4 readings


def test_proofs_of_a_household_s_entries_are_its_own(commune, validator):
    account_key = L.key_account(key(commune, "household-3").public).hex()
    assert get(validator, f"/proofs/{account_key}").status_code == 401
    assert get(validator, f"/proofs/{account_key}", signer=key(commune, "household-4")).status_code == 403
    assert get(validator, f"/proofs/{account_key}", signer=key(commune, "household-3")).status_code == 200
    assert get(validator, f"/proofs/{b'meta/height'.hex()}").status_code == 200
    # The same rule as for light household nodes (tokens/visibility.py): a meter's entry
    # names its household (read from the value); an index no household owns, the operator's.
    spec = {h.key: h for h in load_home(commune / "household-3").genesis.households}
    meter = L.key_meter(spec[key(commune, "household-3").public].meter).hex()
    assert get(validator, f"/proofs/{meter}", signer=key(commune, "household-3")).status_code == 200
    assert get(validator, f"/proofs/{meter}", signer=key(commune, "household-4")).status_code == 403
    index = L.key_offer_expiry(GENESIS_TIME, bytes(32)).hex()
    assert get(validator, f"/proofs/{index}", signer=key(commune, "household-3")).status_code == 403
    assert get(validator, f"/proofs/{index}").status_code == 401
    assert get(validator, f"/proofs/{index}", token=TOKEN).status_code == 200


# -- public aggregates ---------------------------------------------------------------------------


def test_aggregates_show_sums_enough_households_make_up_and_suppress_the_rest(commune, validator):
    doc = get(validator, f"/aggregates?from={GENESIS_TIME}&to={GENESIS_TIME + 1800}").json()
    assert doc["min_aggregate"] == 3
    shown, suppressed = doc["intervals"]
    # Interval 0: three producers, three consumers, 300 Wh exported, 180 Wh imported.
    assert (shown["k"], shown["producers"], shown["consumers"], shown["participants"]) == (K0, 3, 3, 6)
    assert (shown["sum_e"], shown["sum_i"], shown["m"], shown["suppressed"]) == (300, 180, 180, False)
    # Interval 1: one producer; its 50 Wh would be its own curve, and M = min(ΣE, ΣI) too.
    assert (suppressed["producers"], suppressed["consumers"]) == (1, 3)
    assert (suppressed["sum_e"], suppressed["sum_i"], suppressed["m"], suppressed["suppressed"]) == \
        (None, 180, None, True)
    assert "50" not in str({k: v for k, v in suppressed.items() if k not in ("start", "end", "k")})
    assert doc["counted"]


def test_a_light_node_counts_no_households_so_it_shows_no_sum(commune, validator):
    # A light store holds one household's ie/ records: counting them would say "1"
    # where six took part, so it counts none and applies the rule to none.
    with validator.store.snapshot() as snap:
        doc = get_aggregates_view(snap.history, GENESIS_TIME, GENESIS_TIME + 1800, 48, light=True)
    assert not doc["counted"] and len(doc["intervals"]) == 2
    for row in doc["intervals"]:
        assert (row["participants"], row["producers"], row["consumers"]) == (None, None, None)
        assert (row["sum_e"], row["sum_i"], row["m"], row["suppressed"]) == (None, None, None, True)


def test_aggregates_default_to_five_households(commune, tmp_path):
    assert DEFAULT_PARAMS["min_aggregate"] == 5
    root = tmp_path / "default"
    create_network(root, name="Testville", insee="12345", validators=1, households=6, base_port=41200,
                   genesis_time=GENESIS_TIME)
    run = Run(root, "validator-0", Pruning(mode="archive"))
    try:
        feed(run)
        doc = get(run, f"/aggregates?from={GENESIS_TIME}&to={GENESIS_TIME}").json()
    finally:
        run.close()
    assert doc["min_aggregate"] == 5
    assert [(r["sum_e"], r["sum_i"], r["m"], r["suppressed"]) for r in doc["intervals"]] == [(None, None, None, True)]


def test_every_transaction_type_is_public_or_private_by_a_list_and_new_ones_are_private():
    tags = {t.TAG for t in TX_TYPES}
    assert PUBLIC_TXS <= tags
    private = tags - PUBLIC_TXS
    assert {"tx/reading", "tx/transfer", "tx/gift", "tx/service", "tx/offer", "tx/register", "tx/redeem"} <= private
    doc = {"id": "00" * 32, "type": "tx/some-future-type", "signer": "ab" * 32, "nonce": 1, "payload": "secret"}
    assert redact_tx(doc, Viewer()) == {"id": "00" * 32, "type": "tx/some-future-type", "signer": "ab" * 32,
                                        "nonce": 1, "redacted": True}
    assert redact_tx(doc, Viewer(signer=bytes.fromhex("ab" * 32))) == doc
    assert redact_tx(doc, Viewer(operator=True)) == doc


# -- privileged reads (docs/privacy.md "Privileged reads") ------------------------------------


def test_privileged_reads_are_logged_and_shown_to_the_household_they_name(commune, validator, tmp_path):
    h0, h1 = key(commune, "household-0"), key(commune, "household-1")
    registrar = key(commune, "registrar")

    def ask(app, path: str, signer: Keypair | None = None, token: str | None = None) -> httpx.Response:
        sent = {} if signer is None else sign_target(signer, "GET", path, int(time.time()),
                                                      secrets.token_bytes(NONCE_BYTES))
        if token is not None:
            sent["authorization"] = f"Bearer {token}"

        async def fetch():
            transport = httpx.ASGITransport(app, client=("192.0.2.7", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
                return await client.get(path, headers=sent)
        return trio.run(fetch)

    with open_consent_store(tmp_path) as reads:
        app = build_app(validator.node, api_token=TOKEN, peer_id_of=lambda k: "peer", consent=reads)
        assert ask(app, f"/households/{h0.public.hex()}/intervals", token=TOKEN).status_code == 200
        assert ask(app, f"/accounts/{h0.public.hex()}", token=TOKEN).status_code == 200
        assert ask(app, f"/accounts/{h1.public.hex()}", signer=registrar).status_code == 200
        # Not privileged: a household's own read, the public's, a refused one.
        assert ask(app, f"/households/{h0.public.hex()}/intervals", signer=h0).status_code == 200
        assert ask(app, "/aggregates").status_code == 200
        assert ask(app, f"/households/{h1.public.hex()}/intervals", signer=h0).status_code == 403
        assert len(reads.read_reads(None, None, 100)) == 3

        mine = ask(app, f"/households/{h0.public.hex()}/reads", signer=h0)
        assert mine.status_code == 200
        entries = mine.json()["entries"]
        assert [(e["who"], e["path"], e["status"]) for e in entries] == [
            ("operator", f"/accounts/{h0.public.hex()}", 200),
            ("operator", f"/households/{h0.public.hex()}/intervals", 200)]
        assert all(e["household"] == h0.public.hex() and e["registrar"] is None for e in entries)
        theirs = ask(app, f"/households/{h1.public.hex()}/reads", signer=h1).json()["entries"]
        assert [(e["who"], e["registrar"]) for e in theirs] == [("registrar", registrar.public.hex())]
        # Another household's log is its own; the operator reads any (and that read is logged too).
        assert ask(app, f"/households/{h1.public.hex()}/reads", signer=h0).status_code == 403
        assert ask(app, f"/households/{h1.public.hex()}/reads", token=TOKEN).status_code == 200
        assert len(ask(app, f"/households/{h1.public.hex()}/reads", signer=h1).json()["entries"]) == 2
        assert ask(app, f"/households/{bytes(32).hex()}/reads", token=TOKEN).status_code == 404
