"""Routes of the HTTP API. Every error is JSON: ``{"error": "..."}``."""

from __future__ import annotations

from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wire.limits import MAX_TX_BYTES

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class TxRefused(Exception):
    """A submitted transaction the node will not take; ``status`` is the HTTP code."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


class NodeAPI(Protocol):
    def status(self) -> dict[str, Any]: ...
    def block_json(self, height: int) -> dict[str, Any] | None: ...
    def submit_tx(self, data: bytes) -> bytes: ...
    def account_json(self, addr: bytes) -> dict[str, Any] | None: ...
    def render_metrics(self) -> bytes: ...


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _parse_addr(text: str) -> bytes:
    try:
        addr = bytes.fromhex(text)
    except ValueError:
        addr = b""
    if len(addr) != 32:
        raise HTTPException(400, "address must be 64 hex characters")
    return addr


def _parse_height(text: str) -> int:
    if not text.isdigit() or len(text) > 19:
        raise HTTPException(400, "height must be a non-negative integer")
    return int(text)


def build_app(node: NodeAPI) -> Starlette:
    async def status(request: Request) -> Response:
        return JSONResponse(node.status())

    async def block(request: Request) -> Response:
        height = _parse_height(request.path_params["height"])
        found = node.block_json(height)
        if found is None:
            return _error(404, f"no block at height {height}")
        return JSONResponse(found)

    async def account(request: Request) -> Response:
        found = node.account_json(_parse_addr(request.path_params["addr"]))
        if found is None:
            return _error(404, "unknown account")
        return JSONResponse(found)

    async def submit(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_TX_BYTES:
                return _error(413, f"a transaction is at most {MAX_TX_BYTES} bytes")
        try:
            tx_id = node.submit_tx(body)
        except TxRefused as exc:
            return _error(exc.status, exc.reason)
        return JSONResponse({"id": tx_id.hex()}, status_code=202)

    async def metrics(request: Request) -> Response:
        return Response(node.render_metrics(), media_type=PROMETHEUS_TEXT)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail))

    routes = [
        Route("/status", status),
        Route("/blocks/{height}", block),
        Route("/accounts/{addr}", account),
        Route("/tx", submit, methods=["POST"]),
        Route("/metrics", metrics),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
