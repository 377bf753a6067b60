"""Test helpers for node/meter: shared captures, a TIC frame builder, and a tiny real node.

``NodeStub`` is a real HTTP server (http.server in a thread) that implements the two routes
the meter agent uses, as DESIGN §9 describes them: GET /status gives the chain id; POST /tx
decodes the body strictly with tokens.txs.decode_tx, checks the signature with
wire.verify_message, checks that seq and t rise and indexes never fall (DESIGN §4), and
answers 202 {"id"} or 400 {"error"}.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tokens.txs import MeterReading, decode_tx
from wire import DecodeError, verify_message

# The repo sits beside ../shared: <repo>/tests/unit/meter/this_file.
TIC_DIR = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "tic"
CAPTURES = ("historic_base_1frame.bin", "historic_bbr_10frames.bin", "standard_base_1frame.bin")


def load_capture(name: str) -> bytes:
    return (TIC_DIR / name).read_bytes()


def split_frames(data: bytes) -> list[bytes]:
    """Cut a clean capture into its STX..ETX frames."""
    return [b"\x02" + part for part in data.split(b"\x02")[1:]]


def checksum(body: bytes) -> bytes:
    return bytes([(sum(body) & 0x3F) + 0x20])


def make_group(label: str, value: str, standard: bool = False, date: str | None = None,
               bad_checksum: bool = False) -> bytes:
    """One group with its checksum, as the meter sends it (Enedis NOI-CPT_02E / 54E)."""
    if standard:
        fields = [label] + ([date] if date is not None else []) + [value]
        body = "\t".join(fields).encode() + b"\t"
        cs = checksum(body)
        line = body + cs
    else:
        body = f"{label} {value}".encode()
        cs = checksum(body)
        line = body + b" " + cs
    if bad_checksum:
        line = line[:-1] + bytes([0x20 + ((line[-1] - 0x20 + 1) % 0x40)])
    return b"\n" + line + b"\r"


def make_frame(*groups: bytes) -> bytes:
    return b"\x02" + b"".join(groups) + b"\x03"


def historic_base_frame(meter: str = "031428571428", base: int = 1000, papp: int = 500) -> bytes:
    return make_frame(make_group("ADCO", meter), make_group("OPTARIF", "BASE"),
                      make_group("BASE", f"{base:09d}"), make_group("PAPP", f"{papp:05d}"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NodeStub:
    """A minimal node HTTP API on 127.0.0.1:port; can be stopped and started again."""

    def __init__(self, port: int, chain_id: bytes) -> None:
        self.port, self.chain_id = port, chain_id
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


def _make_handler(stub: NodeStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, code: int, doc: dict[str, str]) -> None:
            data = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/status":
                self._answer(200, {"chain_id": stub.chain_id.hex(), "height": "0"})
            else:
                self._answer(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            if self.path != "/tx" or length > 4096:
                self._answer(400, {"error": "bad request"})
                return
            if self.headers.get("content-type") != "application/msgpack":
                self._answer(400, {"error": "content-type must be application/msgpack"})
                return
            code, doc = stub.check_tx(self.rfile.read(length))
            if code != 202:
                stub.refused.append(doc["error"])
            self._answer(code, doc)

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler
