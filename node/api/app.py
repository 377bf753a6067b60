"""Routes of the HTTP API (DESIGN §9), the OpenAPI document and the dashboard.

Every error is JSON, ``{"error": "..."}``: 400 bad input, 401/403 a refused writer,
404 nothing there, 405 wrong method, 413 too large, 500 a bug (logged), 503 busy.
Reads use one consistent store snapshot per request; nothing here holds a key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.api import params as P
from node.api.auth import verify_write_allowed
from node.api.openapi import build_openapi
from node.api.assets import StaticAssets
from node.api.txlog import TxLog
from node.net.messages import TxBatch
from node.api.views import (
    Liveness, compute_live_allocation, decode_commit, get_account_view, get_allocation_view,
    get_commune_view, get_consumers_view, get_intervals_view, get_proposals_view, get_validators_view,
)
from tokens.queries import get_interval_s, get_time_ms
from tokens.txs import TX_TYPES
from wire import DecodeError, decode
from wire.limits import MAX_GOSSIP_BYTES, MAX_TX_BYTES

log = logging.getLogger("voisinage.http")

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
TX_TAGS = tuple(t.TAG for t in TX_TYPES)
PROPOSAL_STATUSES = ("open", "passed", "rejected", "failed")
# Paging bounds per list (also in the OpenAPI document).
LIMITS = {"intervals": (1000, 48), "consumers": (1000, 100), "proposals": (100, 20), "validators": (100, 100),
          "txs": (100, 20)}


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

    def status(self) -> dict[str, Any]: ...
    def block_json(self, height: int) -> dict[str, Any] | None: ...
    async def wait_for_height(self, height: int) -> None: ...
    def submit_tx(self, data: bytes) -> bytes: ...
    def submit_txs(self, txs: Sequence[bytes]) -> list[tuple[bytes, TxRefused | None]]: ...
    def render_metrics(self) -> bytes: ...


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def get_limit(request: Request, name: str) -> int:
    high, default = LIMITS[name]
    return P.get_int(request, "limit", 1, high, default)


async def read_body(request: Request, limit: int = MAX_TX_BYTES, what: str = "a transaction") -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"{what} is at most {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"{what} is at most {limit} bytes")
    return b"".join(chunks)


class Api:
    """The route handlers over one node."""

    def __init__(self, node: NodeAPI, api_token: str | None, peer_id_of: Callable[[bytes], str]) -> None:
        self.node, self.api_token, self.peer_id_of = node, api_token, peer_id_of
        self.txlog = TxLog()
        self._allocation: tuple[int, list[int]] | None = None   # (height, live allocation)

    def with_snapshot(self, read: Callable[[Any], Any]) -> Any:
        with self.node.store.snapshot() as snap:
            return read(snap)

    def found(self, doc: dict[str, Any] | None, what: str) -> Response:
        return error(404, what) if doc is None else JSONResponse(doc)

    async def status(self, request: Request) -> Response:
        def read(snap) -> dict[str, Any]:
            return dict(self.node.status(), commune=self.node.genesis.name,
                        interval_s=get_interval_s(snap.state), block_time_ms=get_time_ms(snap.state))
        return JSONResponse(self.with_snapshot(read))

    async def block(self, request: Request) -> Response:
        height = P.parse_int(request.path_params["height"], "height", 0, P.MAX_HEIGHT)
        wait_s = P.get_int(request, "wait", 0, P.MAX_BLOCK_WAIT_S, 0)
        if wait_s and height == self.node.store.height() + 1:
            # A follower asking for the next block is answered when it is stored,
            # instead of polling /status.
            with trio.move_on_after(wait_s):
                await self.node.wait_for_height(height)
        found = self.node.block_json(height)
        return self.found(found, f"no block at height {height}")

    async def account(self, request: Request) -> Response:
        addr = P.parse_hex32(request.path_params["addr"], "address")
        return self.found(self.with_snapshot(lambda s: get_account_view(s.state, addr)), "unknown account")

    async def intervals(self, request: Request) -> Response:
        addr = P.parse_hex32(request.path_params["addr"], "address")
        lo = P.get_int(request, "from", 0, P.MAX_TIME_S)
        hi = P.get_int(request, "to", 0, P.MAX_TIME_S)
        limit = get_limit(request, "intervals")
        doc = self.with_snapshot(lambda s: get_intervals_view(s.state, addr, lo, hi, limit))
        return self.found(doc, "not a registered household")

    async def consumers(self, request: Request) -> Response:
        addr = P.parse_hex32(request.path_params["addr"], "address")
        k = P.get_required_int(request, "interval", 0, P.MAX_INTERVAL_INDEX)
        after = P.get_hex32(request, "cursor")
        limit = get_limit(request, "consumers")
        doc = self.with_snapshot(lambda s: get_consumers_view(s.state, addr, k, after, limit))
        return self.found(doc, "not a registered household")

    def get_live_allocation(self, snap) -> list[int]:
        """Cached per height: the ballots only change when a block commits."""
        height = snap.height()
        if self._allocation is None or self._allocation[0] != height:
            self._allocation = (height, compute_live_allocation(snap.state, self.node.genesis))
        return self._allocation[1]

    async def allocation(self, request: Request) -> Response:
        return JSONResponse(self.with_snapshot(lambda s: get_allocation_view(s.state, self.get_live_allocation(s))))

    async def proposals(self, request: Request) -> Response:
        status = P.get_choice(request, "status", PROPOSAL_STATUSES)
        after = P.get_hex32(request, "cursor")
        limit = get_limit(request, "proposals")
        return JSONResponse(self.with_snapshot(lambda s: get_proposals_view(s.state, status, after, limit)))

    async def commune(self, request: Request) -> Response:
        return JSONResponse(self.with_snapshot(lambda s: get_commune_view(s.state, self.node.genesis)))

    def get_liveness(self, height: int) -> Liveness:
        net = self.node.net
        return Liveness(own_key=self.node.key.public, own_height=height, own_round=self.node.engine.round,
                        peer_heights=dict(net.peer_heights()) if net is not None else {},
                        connected=frozenset(net.peers()) if net is not None else frozenset())

    async def validators(self, request: Request) -> Response:
        offset = P.get_int(request, "offset", 0, P.MAX_HEIGHT, 0)
        limit = get_limit(request, "validators")

        def read(snap) -> dict[str, Any]:
            height = snap.height()
            last = decode_commit(snap.commit(height)) if height > 0 else None
            return get_validators_view(snap.state, last, self.get_liveness(height), self.peer_id_of, offset, limit)
        return JSONResponse(self.with_snapshot(read))

    async def txs(self, request: Request) -> Response:
        account = P.get_hex32(request, "account")
        tx_type = P.get_choice(request, "type", TX_TAGS)
        before = P.get_int(request, "before", 1, P.MAX_HEIGHT)
        limit = get_limit(request, "txs")
        readings = P.get_bool(request, "readings")
        doc = self.with_snapshot(lambda s: self.txlog.find(
            s, account=account.hex() if account else None, tx_type=tx_type, before=before, limit=limit,
            readings=readings))
        return JSONResponse(doc)

    async def submit(self, request: Request) -> Response:
        verify_write_allowed(request, self.api_token)
        try:
            body = await read_body(request)
        except ClientDisconnect:
            # The client left before its body arrived: nobody to answer, nothing to log.
            return Response(status_code=400)
        try:
            tx_id = self.node.submit_tx(body)
        except TxRefused as exc:
            return error(exc.status, exc.reason)
        return JSONResponse({"id": tx_id.hex()}, status_code=202)

    async def txs_route(self, request: Request) -> Response:
        return await (self.submit_batch if request.method == "POST" else self.txs)(request)

    async def submit_batch(self, request: Request) -> Response:
        """Many signed txs in one request, encoded as the gossip TxBatch: a meter gateway
        or a node that buffered readings while offline. Each tx is judged on its own."""
        verify_write_allowed(request, self.api_token)
        try:
            body = await read_body(request, MAX_GOSSIP_BYTES, "a batch")
        except ClientDisconnect:
            return Response(status_code=400)
        try:
            batch = decode(body, expect=TxBatch, limit=MAX_GOSSIP_BYTES)
        except DecodeError as exc:
            return error(400, f"malformed: the body is not a tx batch ({exc.reason})")
        results = self.node.submit_txs(batch.txs)
        refused = [{"index": i, "error": why.reason, "status": why.status}
                   for i, (_, why) in enumerate(results) if why is not None]
        if results and len(refused) == len(results) and all(r["status"] == 503 for r in refused):
            return error(503, refused[0]["error"])
        return JSONResponse({"ids": [tx_id.hex() for tx_id, _ in results], "accepted": len(results) - len(refused),
                             "refused": refused}, status_code=202)

    async def metrics(self, request: Request) -> Response:
        return Response(self.node.render_metrics(), media_type=PROMETHEUS_TEXT)


def build_app(node: NodeAPI, *, api_token: str | None = None,
              peer_id_of: Callable[[bytes], str] | None = None) -> Starlette:
    """The node's ASGI app. ``api_token`` lets remote clients write (see node.api.auth)."""
    if peer_id_of is None:
        from node.net.identity import peer_id_of_key as peer_id_of
    api = Api(node, api_token or None, peer_id_of)
    assets = StaticAssets()
    own_key = getattr(getattr(node, "key", None), "public", bytes(32))
    openapi = build_openapi(TX_TAGS, PROPOSAL_STATUSES, LIMITS, own_key.hex(),
                            tuple(name for name in assets.files if name != "index.html"))

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi)

    routes = [
        Route("/", assets.index),
        Route("/static/{name}", assets.file),
        Route("/openapi.json", openapi_json),
        Route("/status", api.status),
        Route("/blocks/{height}", api.block),
        Route("/accounts/{addr}", api.account),
        Route("/households/{addr}/intervals", api.intervals),
        Route("/households/{addr}/consumers", api.consumers),
        Route("/governance/allocation", api.allocation),
        Route("/governance/proposals", api.proposals),
        Route("/commune", api.commune),
        Route("/validators", api.validators),
        Route("/txs", api.txs_route, methods=["GET", "POST"]),   # one route: 405 then lists both in Allow
        Route("/tx", api.submit, methods=["POST"]),
        Route("/metrics", api.metrics),
    ]

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed: %r", request.method, request.url.path, exc)
        return error(500, "internal error; see the node's log")

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: server_error})
