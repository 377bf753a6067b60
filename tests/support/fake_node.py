"""Fake nodes for tests of code that talks to a node, so no real node need start.

``NodeStub`` is a real HTTP server (http.server in a thread) with the two routes the
meter agent uses, as DESIGN §9 describes them: GET /status gives the chain id; POST /tx
decodes the body strictly with tokens.txs.decode_tx, checks the signature with
wire.verify_message, checks that seq and t rise and indexes never fall (DESIGN §4), and
answers 202 {"id"} or 400 {"error"}.

``RecordingNode`` stands in for the node behind the real ASGI app (node/api/app.py's
``NodeAPI``) when only the HTTP layer is under test; ``asgi_client`` speaks to that
app as a client at any address, so a remote client needs no second machine.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from node.api.app import TxRefused, build_app
from tests.support.ports import free_port
from tokens.txs import MeterReading, decode_tx
from wire import DecodeError, compute_id, verify_message

FULL = TxRefused("mempool is full (10000 txs)", 503)
BAD = TxRefused("bad_signature: the signature does not verify", 400)


class RecordingNode:
    """Records what it is given. ``submit_tx`` refuses the body b"bad"; ``submit_txs``
    refuses a tx starting with b"full" (503) or b"bad" (400) and takes the rest."""

    def __init__(self) -> None:
        self.received: list[bytes] = []         # submit_tx bodies taken
        self.calls: list[list[bytes]] = []      # submit_txs batches, each whole

    def submit_tx(self, data: bytes) -> bytes:
        if data == b"bad":
            raise TxRefused("malformed: test")
        self.received.append(data)
        return bytes(32)

    def submit_txs(self, txs: Sequence[bytes]) -> list[tuple[bytes, TxRefused | None]]:
        self.calls.append(list(txs))
        return [(compute_id(tx), FULL if tx.startswith(b"full") else BAD if tx.startswith(b"bad") else None)
                for tx in txs]

    async def submit_batch(self, txs: Sequence[bytes]) -> list[tuple[bytes, TxRefused | None]]:
        return self.submit_txs(txs)


def asgi_client(node: object, host: str = "127.0.0.1", token: str | None = None) -> httpx.AsyncClient:
    """A client of the production app over ``node`` (any stand-in for its NodeAPI), seen
    by it as coming from ``host``."""
    app = build_app(node, api_token=token, peer_id_of=lambda key: "peer")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app, client=(host, 40000)), base_url="http://node")


class NodeStub:
    """A minimal node HTTP API on 127.0.0.1 (a free port unless given); can be stopped
    and started again. ``with NodeStub(chain_id) as node:`` runs it for the block."""

    def __init__(self, chain_id: bytes, port: int | None = None, interval_s: int = 1800) -> None:
        self.port, self.chain_id = port if port is not None else free_port(), chain_id
        self.interval_s = interval_s      # GET /commune's settlement_interval_s
        self.accepted: list[MeterReading] = []
        self.refused: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _make_handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> NodeStub:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def check_tx(self, body: bytes) -> tuple[int, dict[str, str]]:
        try:
            tx = decode_tx(body)
        except DecodeError as exc:
            return 400, {"error": f"malformed: {exc}"}
        if not isinstance(tx, MeterReading):
            return 400, {"error": "only MeterReading is accepted here"}
        if not verify_message(tx, self.chain_id):
            return 400, {"error": "bad signature"}
        with self._lock:
            last = self.accepted[-1] if self.accepted else None
            if last is not None and (tx.seq <= last.seq or tx.t <= last.t):
                return 400, {"error": "stale seq or t"}
            if last is not None and (tx.import_wh < last.import_wh or tx.export_wh < last.export_wh):
                return 400, {"error": "index fell"}
            self.accepted.append(tx)
        return 202, {"id": tx.id().hex()}


class JSONHandler(BaseHTTPRequestHandler):
    """A quiet http.server handler answering JSON, the base of the tests' fake nodes."""

    def log_message(self, *args: object) -> None:
        return

    def answer(self, code: int, doc: object) -> None:
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def serve_handler(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served by a real HTTP server on a free loopback port; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _make_handler(stub: NodeStub) -> type[BaseHTTPRequestHandler]:
    class Handler(JSONHandler):
        def do_GET(self) -> None:
            if self.path == "/status":
                self.answer(200, {"chain_id": stub.chain_id.hex(), "height": "0"})
            elif self.path == "/commune":
                self.answer(200, {"params": {"settlement_interval_s": stub.interval_s, "time_scale": 1},
                                  "sealing": None})
            else:
                self.answer(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            if self.path != "/tx" or length > 4096:
                self.answer(400, {"error": "bad request"})
                return
            if self.headers.get("content-type") != "application/msgpack":
                self.answer(400, {"error": "content-type must be application/msgpack"})
                return
            code, doc = stub.check_tx(self.rfile.read(length))
            if code != 202:
                stub.refused.append(doc["error"])
            self.answer(code, doc)

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler
