"""The HTTP API (DESIGN §9): its handlers, and the app made from the route table.

Every error is JSON, ``{"error": "..."}``: 400 bad input, 401/403 a refused writer,
404 nothing there, 405 wrong method, 410 pruned on this node, 413 too large, 500 a bug (logged), 503 busy.
Reads use one consistent store snapshot per request; nothing here holds a key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from node.api import params as P
from node.api.access import Gate
from node.api.assets import StaticAssets
from node.api.consent import ConsentApi
from node.api.openapi import build_openapi
from node.api.operations import Call, build_routes
from node.api.private import (
    check_proof_access, check_proven_value_access, filter_rows, may_read_tx, redact_account, redact_block,
    redact_reconciliation, redact_registrars,
)
from node.api.proofs import ProofPruned, get_proof_salt, get_proof_view
from node.api.routes import build_route_table
from node.api.txlog import TxLog
from node.api.views import (
    Liveness, compute_live_allocation, decode_commit, get_account_view, get_aggregates_view, get_allocation_view,
    get_commune_view, get_consumers_view, get_intervals_view, get_proposals_view, get_validator_change_view,
    get_validators_view,
)
from node.consent.signed import ReplayGuard
from node.consent.store import ConsentStore
from node.net.messages import TxBatch
from tokens import layout as L
from tokens.queries import get_interval_s, get_registrar_set, get_time_ms, get_upgrade_view
from tokens.queries_euro import get_associations, get_euro_ledger, get_payout, get_payouts
from tokens.queries_reconcile import get_household_reconciliation, get_reconciliation
from wire import DecodeError, decode
from wire.limits import MAX_GOSSIP_BYTES

log = logging.getLogger("voisinage.http")

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class TxRefused(Exception):
    """A submitted transaction the node will not take; ``status`` is the HTTP code."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


class NodeAPI(Protocol):
    """What the API reads of a node (node/service/node.py's ``Node``)."""

    store: Any          # node.store.Store: .snapshot(), .height()
    genesis: Any        # tokens.genesis.Genesis
    key: Any            # wire.Keypair: the node's own household or validator key
    engine: Any         # consensus engine: .round
    net: Any            # node.net network or None: .peers(), .peer_heights()
    heartbeats: Any     # node.service.heartbeat.HeartbeatBook: .get_age_s(key), .is_live(key)

    def status(self) -> dict[str, Any]: ...
    def block_json(self, height: int) -> dict[str, Any] | None: ...
    async def wait_for_height(self, height: int) -> None: ...
    def submit_tx(self, data: bytes) -> bytes: ...
    def get_pending_nonce(self, addr: bytes) -> int | None: ...
    def submit_txs(self, txs: Sequence[bytes]) -> list[tuple[bytes, TxRefused | None]]: ...
    async def submit_batch(self, txs: Sequence[bytes]) -> list[tuple[bytes, TxRefused | None]]: ...
    def render_metrics(self) -> bytes: ...
    def backup_chunks(self, consent: Iterable[tuple[bytes, bytes]] = ()) -> tuple[int, Iterator[bytes]]: ...


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class Api:
    """The route handlers over one node; node/api/routes.py says which path reaches which."""

    def __init__(self, node: NodeAPI, peer_id_of: Callable[[bytes], str], consent: ConsentStore | None = None) -> None:
        self.node, self.peer_id_of, self.consent = node, peer_id_of, consent
        self.txlog = TxLog()
        self._allocation: tuple[int, list[int]] | None = None   # (height, live allocation)

    def with_snapshot(self, read: Callable[[Any], Any]) -> Any:
        with self.node.store.snapshot() as snap:
            return read(snap)

    def found(self, doc: dict[str, Any] | None, what: str) -> Response:
        return error(404, what) if doc is None else JSONResponse(doc)

    async def status(self, call: Call) -> Response:
        def read(snap) -> dict[str, Any]:
            return dict(self.node.status(), commune=self.node.genesis.name,
                        interval_s=get_interval_s(snap.state), block_time_ms=get_time_ms(snap.state))
        return JSONResponse(self.with_snapshot(read))

    async def block(self, call: Call) -> Response:
        height = call["height"]
        if call["wait"] and height == self.node.store.height() + 1:
            # A follower asking for the next block is answered when it is stored,
            # instead of polling /status.
            with trio.move_on_after(call["wait"]):
                await self.node.wait_for_height(height)
        return self.found(redact_block(self.node.block_json(height), call.viewer), f"no block at height {height}")

    async def account(self, call: Call) -> Response:
        doc = self.with_snapshot(lambda s: get_account_view(s.state, call["addr"]))
        if doc is not None:
            # What waits here for a block: the next nonce goes above it too (the clear
            # nonce of a tx in gossip is public, as the committed one is).
            doc["pending_nonce"] = self.node.get_pending_nonce(call["addr"])
        return self.found(redact_account(doc, call.viewer), "unknown account")

    async def aggregates(self, call: Call) -> Response:
        return JSONResponse(self.with_snapshot(lambda s: get_aggregates_view(s.history, call["from"], call["to"],
                                                                             call["limit"], s.is_light())))

    async def intervals(self, call: Call) -> Response:
        # The recent intervals from the state, the older ones from the archive (a/).
        doc = self.with_snapshot(lambda s: get_intervals_view(s.history, call["addr"], call["from"], call["to"],
                                                              call["limit"], s.is_light()))
        return self.found(doc, "not a registered household")

    async def household_reconciliation(self, call: Call) -> Response:
        doc = self.with_snapshot(lambda s: get_household_reconciliation(s.state, call["addr"]))
        return self.found(doc, "not a registered household")

    async def household_reads(self, call: Call) -> Response:
        """docs/privacy.md "Privileged reads": what this node's operator or a registrar read
        of the household's data, newest first."""
        known = self.with_snapshot(lambda s: s.state.get(L.key_household(call["addr"])) is not None
                                   or s.state.get(L.key_status(call["addr"])) is not None)
        if not known:
            return error(404, "not a registered household")
        entries = [] if self.consent is None else self.consent.read_reads(call["addr"], call["before"], call["limit"])
        return JSONResponse({"household": call["addr"].hex(), "entries": entries,
                             "next_before": entries[-1]["seq"] if len(entries) == call["limit"] else None})

    async def reconciliation(self, call: Call) -> Response:
        return JSONResponse(redact_reconciliation(self.with_snapshot(lambda s: get_reconciliation(s.state)),
                                                  call.viewer))

    async def consumers(self, call: Call) -> Response:
        doc = self.with_snapshot(lambda s: get_consumers_view(s.history, call["addr"], call["interval"],
                                                              call["cursor"], call["limit"], call.viewer.operator,
                                                              s.is_light()))
        return self.found(doc, "not a registered household")

    def get_live_allocation(self, snap) -> list[int]:
        """Cached per height: the ballots only change when a block commits."""
        height = snap.height()
        if self._allocation is None or self._allocation[0] != height:
            self._allocation = (height, compute_live_allocation(snap.state, self.node.genesis))
        return self._allocation[1]

    async def allocation(self, call: Call) -> Response:
        return JSONResponse(self.with_snapshot(lambda s: get_allocation_view(s.state, self.get_live_allocation(s))))

    async def proposals(self, call: Call) -> Response:
        return JSONResponse(self.with_snapshot(lambda s: get_proposals_view(s.state, call["status"], call["cursor"],
                                                                            call["limit"])))

    async def commune(self, call: Call) -> Response:
        return JSONResponse(self.with_snapshot(lambda s: get_commune_view(s.state, self.node.genesis)))

    async def payouts(self, call: Call) -> Response:
        doc = self.with_snapshot(lambda s: get_payouts(s.state, call["status"], call["cursor"], call["limit"]))
        return JSONResponse(dict(doc, payouts=filter_rows(doc["payouts"], call.viewer)))

    async def payout(self, call: Call) -> Response:
        doc = self.with_snapshot(lambda s: get_payout(s.state, call["id"]))
        if doc is not None and not call.viewer.may_read_records(bytes.fromhex(doc["account"])):
            call.viewer.require(bytes.fromhex(doc["account"]), "a household's payout")
        return self.found(doc, "no such payout")

    async def euro_ledger(self, call: Call) -> Response:
        start = call["from"] or 0
        end = P.MAX_TIME_S if call["to"] is None else call["to"]
        doc = self.with_snapshot(lambda s: get_euro_ledger(s.state, start, end, call["after"], call["limit"]))
        return JSONResponse(dict(doc, rows=filter_rows(doc["rows"], call.viewer)))

    async def associations(self, call: Call) -> Response:
        return JSONResponse(self.with_snapshot(lambda s: {"associations": get_associations(s.state)}))

    async def registrars(self, call: Call) -> Response:
        return JSONResponse(redact_registrars(self.with_snapshot(lambda s: get_registrar_set(s.state)), call.viewer))

    def get_liveness(self, height: int) -> Liveness:
        net = self.node.net
        return Liveness(own_key=self.node.key.public, own_height=height, own_round=self.node.engine.round,
                        peer_heights=dict(net.peer_heights()) if net is not None else {},
                        connected=frozenset(net.peers()) if net is not None else frozenset(),
                        heartbeats=self.node.heartbeats)

    async def validators(self, call: Call) -> Response:
        def read(snap) -> dict[str, Any]:
            height = snap.height()
            last = decode_commit(snap.commit(height)) if height > 0 else None
            return get_validators_view(snap.state, last, self.get_liveness(height), self.peer_id_of,
                                       call["offset"], call["limit"])
        return JSONResponse(self.with_snapshot(read))

    async def upgrades(self, call: Call) -> Response:
        return JSONResponse(self.with_snapshot(lambda s: get_upgrade_view(s.state, s.height(), s.chain_id())))

    async def validator_change(self, call: Call) -> Response:
        return JSONResponse(self.with_snapshot(lambda s: get_validator_change_view(s.state)))

    async def txs(self, call: Call) -> Response:
        account, viewer = call["account"], call.viewer
        doc = self.with_snapshot(lambda s: self.txlog.find(
            s, account=account.hex() if account else None, tx_type=call["type"], before=call["before"],
            limit=call["limit"], readings=call["readings"],
            visible=lambda tx, parties: may_read_tx(tx, parties, viewer)))
        return JSONResponse(doc)

    async def proof(self, call: Call) -> Response:
        self.with_snapshot(lambda s: check_proof_access(s.state, call["key"], call.viewer))
        try:
            doc = self.with_snapshot(lambda s: get_proof_view(s, call["key"], call["height"]))
        except ProofPruned as exc:
            return error(410, str(exc))
        if doc is not None and doc["value"] is not None:
            value = bytes.fromhex(doc["value"])
            self.with_snapshot(lambda s: check_proven_value_access(s.state, call["key"], value, call.viewer))
            doc["salt"] = self.with_snapshot(lambda s: get_proof_salt(s.state, getattr(self.node, "keys", None),
                                                                       call["key"], value))
        return self.found(doc, "no committed header carries the state root of that height yet")

    async def submit(self, call: Call) -> Response:
        try:
            tx_id = self.node.submit_tx(call.body)
        except TxRefused as exc:
            return error(exc.status, exc.reason)
        return JSONResponse({"id": tx_id.hex()}, status_code=202)

    async def submit_batch(self, call: Call) -> Response:
        """Many signed txs in one request, encoded as the gossip TxBatch: a meter gateway
        or a node that buffered readings while offline. Each tx is judged on its own."""
        try:
            batch = decode(call.body, expect=TxBatch, limit=MAX_GOSSIP_BYTES)
        except DecodeError as exc:
            return error(400, f"malformed: the body is not a tx batch ({exc.reason})")
        results = await self.node.submit_batch(batch.txs)
        refused = [{"index": i, "error": why.reason, "status": why.status}
                   for i, (_, why) in enumerate(results) if why is not None]
        if results and len(refused) == len(results) and all(r["status"] == 503 for r in refused):
            return error(503, refused[0]["error"])
        return JSONResponse({"ids": [tx_id.hex() for tx_id, _ in results], "accepted": len(results) - len(refused),
                             "refused": refused}, status_code=202)

    async def backup(self, call: Call) -> Response:
        """One consistent snapshot of the database (and of the household's consent
        database), streamed in the backup format; the event loop runs between chunks, so
        the node keeps committing meanwhile."""
        height, chunks = self.node.backup_chunks(self.consent.iter_entries() if self.consent is not None else ())

        async def stream():
            for chunk in chunks:
                yield chunk
                await trio.sleep(0)
        return StreamingResponse(stream(), media_type="application/octet-stream",
                                 headers={"X-Voisinage-Height": str(height)})

    async def metrics(self, call: Call) -> Response:
        return Response(self.node.render_metrics(), media_type=PROMETHEUS_TEXT)


def build_app(node: NodeAPI, *, api_token: str | None = None,
              peer_id_of: Callable[[bytes], str] | None = None, consent: ConsentStore | None = None) -> Starlette:
    """The node's ASGI app. ``api_token`` lets remote clients write (see node.api.auth);
    ``consent``: the household's consent store (node/consent/store.py), None to serve none."""
    if peer_id_of is None:
        from node.net.identity import peer_id_of_key as peer_id_of
    api = Api(node, peer_id_of, consent)
    # One replay guard: a signature taken by the consent routes is not taken again elsewhere.
    guard = ReplayGuard()
    consent_api = ConsentApi(node, consent, guard=guard)
    # The example address is this node's own key: a household node's is a real household.
    own_key = getattr(getattr(node, "key", None), "public", bytes(32))
    # The document describes the table that serves it: filled in once the table exists.
    document: dict[str, Any] = {}

    async def serve_openapi(call: Call) -> Response:
        return JSONResponse(document)

    table = build_route_table(api, consent_api, StaticAssets(), serve_openapi, own_key.hex())
    document.update(build_openapi(table))

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed: %r", request.method, request.url.path, exc)
        return error(500, "internal error; see the node's log")

    gate = Gate(node, api_token or None, guard, reads=consent)
    return Starlette(routes=build_routes(table, api_token or None, gate),
                     exception_handlers={HTTPException: http_error, Exception: server_error})
