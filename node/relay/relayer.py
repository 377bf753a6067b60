"""A relayer between two communes (docs/communes.md). Untrusted: it can delay, never forge.

It keeps no state: each pass reads both chains (their light clients of each other,
packets in flight, receipts) and posts what moves them on:

1. ``UpdateClient`` of each chain on the other, when either has packets in flight: the
   set-change headers it has not followed yet, in order, then the latest header;
2. for each packet in flight from S to D, judged by D's state as S's client of D proves it:
   a receipt there → ``Acknowledge`` on S; none, and D's header time is past the
   timeout → ``Timeout`` on S; none yet → ``RecvPacket`` on D (its commitment proven
   against S's root in D's client);
3. a client frozen on misbehaviour → the two headers shown to the chain that signed them.

Killed at any point and started again, it picks up from the chains: a tx posted twice
is refused the second time (``replayed``, ``header_known``, ``unknown_sequence``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from node.errors import OneLineError
from tokens import ibc as I
from tokens.kv import decode_value
from tokens.queries_ibc import decode_packet_json
from tokens.txs import Acknowledge, Misbehaviour, Packet, RecvPacket, Timeout, Tx, UpdateClient
from wire.limits import MAX_HEADER_BYTES, MAX_TX_BYTES

log = logging.getLogger("voisinage.relay")

HTTP_TIMEOUT_S = 10.0
POLL_S = 0.2
UPDATE_WAIT_S = 30.0        # how long a pass waits for its client updates to be committed
MAX_PACKETS_PER_PASS = 500


class RelayError(OneLineError):
    """A node answered something a relayer cannot use, or the two chains are not linked."""


class Unreachable(RelayError):
    """A node did not answer: the relayer waits and tries again."""


class Side:
    """One commune's node, read and written through its HTTP API."""

    def __init__(self, url: str, token: str | None = None, client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.http = client or httpx.Client(timeout=HTTP_TIMEOUT_S)
        self.chain_id = bytes.fromhex(self.get("/status")["chain_id"])

    def get(self, path: str, missing: Any = None) -> Any:
        try:
            resp = self.http.get(f"{self.url}{path}")
        except httpx.HTTPError as exc:
            raise Unreachable(f"{self.url} does not answer: {str(exc)[:100] or type(exc).__name__}") from None
        if resp.status_code == 404 and missing is not None:
            return missing
        if resp.status_code != 200:
            raise RelayError(f"GET {self.url}{path} answered {resp.status_code}: {resp.text[:160]}")
        try:
            return resp.json()
        except ValueError:
            raise RelayError(f"GET {self.url}{path}: not JSON") from None

    def post(self, tx: Tx) -> str | None:
        """Post a tx; None if taken, else the node's reason."""
        headers = {"content-type": "application/msgpack"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        try:
            resp = self.http.post(f"{self.url}/tx", content=tx.encode(), headers=headers)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{self.url} does not answer: {str(exc)[:100] or type(exc).__name__}") from None
        if resp.status_code in (200, 202):
            return None
        try:
            return str(resp.json().get("error", resp.text))[:200]
        except ValueError:
            return resp.text[:200]

    def height(self) -> int:
        return int(self.get("/status")["height"])

    def ibc(self) -> dict[str, Any]:
        return self.get("/ibc")

    def client_of(self, chain: bytes, view: dict[str, Any] | None = None) -> dict[str, Any] | None:
        for client in (view or self.ibc())["clients"]:
            if client["chain_id"] == chain.hex():
                return client
        return None

    def signed_header(self, height: int) -> tuple[bytes, bytes, tuple[bytes, ...]]:
        """The encoded header of ``height``, its encoded commit and the next set's keys: carried
        as they are (the receiving ledger judges them; a relayer needs no consensus rules)."""
        doc = self.get(f"/ibc/headers/{height}")
        try:
            header, commit = bytes.fromhex(doc["header"]), bytes.fromhex(doc["commit"])
            keys = tuple(bytes.fromhex(k) for k in doc["next_validators"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RelayError(f"{self.url}: header {height} is malformed ({exc})") from None
        if not 0 < len(header) <= MAX_HEADER_BYTES or not 0 < len(commit) <= MAX_TX_BYTES:
            raise RelayError(f"{self.url}: header {height} or its commit is empty or oversized")
        return header, commit, keys

    def proof(self, key: bytes, height: int) -> tuple[bytes | None, bytes]:
        """The value under ``key`` in the state after ``height`` (None: absent), and its proof."""
        doc = self.get(f"/proofs/{key.hex()}?height={height}")
        value = doc.get("value")
        return (None if value is None else bytes.fromhex(value)), bytes.fromhex(doc["proof"])

    def packets(self, dest: bytes) -> list[Packet]:
        doc = self.get(f"/ibc/packets/{dest.hex()}?limit={MAX_PACKETS_PER_PASS}")
        try:
            return [decode_packet_json(p) for p in doc["packets"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise RelayError(f"{self.url}: malformed packet list ({exc})") from None


@dataclass
class PassReport:
    updates: int = 0
    received: int = 0
    acknowledged: int = 0
    timed_out: int = 0
    evidence: int = 0
    refused: list[str] = field(default_factory=list)

    def is_idle(self) -> bool:
        return not (self.updates or self.received or self.acknowledged or self.timed_out or self.evidence)

    def describe(self) -> str:
        text = (f"{self.updates} client updates, {self.received} packets relayed, {self.acknowledged} "
                f"acknowledged, {self.timed_out} timed out, {self.evidence} misbehaviour shown")
        return text + (f"; refused: {', '.join(sorted(set(self.refused)))[:300]}" if self.refused else "")


def post(side: Side, tx: Tx, report: PassReport) -> bool:
    reason = side.post(tx)
    if reason is not None:
        report.refused.append(f"{tx.TAG} {reason.split(':')[0]}")
        log.info("%s refused %s: %s", side.url, tx.TAG, reason)
    return reason is None


def update_client(src: Side, dst: Side, client: dict[str, Any], report: PassReport,
                  sleep: Callable[[float], None]) -> int:
    """Bring ``dst``'s client of ``src`` to ``src``'s last committed height; the height it
    holds afterwards (wait for the updates to commit, up to UPDATE_WAIT_S)."""
    latest = int(client["latest_height"])
    height = src.height()
    if height <= latest:
        return latest
    changes = [h for h in src.ibc()["set_change_heights"] if latest < h < height]
    for h in changes + [height]:
        header, commit, keys = src.signed_header(h)
        if post(dst, UpdateClient(header=header, commit=commit, next_validators=keys), report):
            report.updates += 1
    deadline = time.monotonic() + UPDATE_WAIT_S
    while time.monotonic() < deadline:
        now = dst.client_of(src.chain_id)
        if now is not None and int(now["latest_height"]) >= height:
            return int(now["latest_height"])
        sleep(POLL_S)
    return int((dst.client_of(src.chain_id) or client)["latest_height"])


def show_misbehaviour(src: Side, client: dict[str, Any], report: PassReport) -> None:
    """``client`` (of ``src``, on the other chain) is frozen: show both headers to ``src``."""
    evidence = client.get("evidence")
    if not evidence:
        return
    height = int(evidence["height"])
    if any(int(m["height"]) == height for m in src.ibc()["self_misbehaviour"]):
        return
    header, commit, _ = src.signed_header(height)
    try:
        other, other_commit = bytes.fromhex(evidence["other_header"]), bytes.fromhex(evidence["other_commit"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RelayError(f"malformed evidence ({exc})") from None
    if header == other:
        return      # canonical encoding: the same bytes are the same block
    if post(src, Misbehaviour(header_a=header, commit_a=commit, header_b=other, commit_b=other_commit), report):
        report.evidence += 1


def relay_packet(src: Side, dst: Side, packet: Packet, src_height: int, dst_height: int, dst_time_ms: int,
                 report: PassReport) -> None:
    """Move one packet from ``src`` to ``dst`` on: ``src_height`` is the height of ``src``'s
    header that ``dst`` holds, ``dst_height`` (at ``dst_time_ms``) that of ``dst``'s held by ``src``."""
    receipt_key = I.key_receipt(packet.source, packet.seq)
    receipt, proof = dst.proof(receipt_key, dst_height - 1)
    if receipt is not None:
        ok, reason = decode_value(receipt)
        if post(src, Acknowledge(packet=packet, ok=ok, reason=reason, proof_height=dst_height, proof=proof), report):
            report.acknowledged += 1
        return
    if dst_time_ms >= packet.timeout_s * 1000:
        if post(src, Timeout(packet=packet, proof_height=dst_height, proof=proof), report):
            report.timed_out += 1
        return
    if dst.proof(receipt_key, dst.height() - 1)[0] is not None:
        return      # received since the header src holds: acknowledged next pass
    commitment, proof = src.proof(I.key_commitment(packet.dest, packet.seq), src_height - 1)
    if commitment is None:
        return      # committed after the header dst holds: next pass
    if post(dst, RecvPacket(packet=packet, proof_height=src_height, proof=proof), report):
        report.received += 1


def relay_pass(a: Side, b: Side, sleep: Callable[[float], None] = time.sleep) -> PassReport:
    """One pass over both directions."""
    report = PassReport()
    views = {a: a.ibc(), b: b.ibc()}
    clients = {}
    for here, there in ((a, b), (b, a)):
        client = here.client_of(there.chain_id, views[here])
        if client is None:
            raise RelayError(f"{here.url} has no light client of chain {there.chain_id.hex()[:16]}…: its "
                             "registrar links it first (voisinage commune link)")
        if client["frozen"]:
            show_misbehaviour(there, client, report)
        clients[here] = client
    if any(c["frozen"] for c in clients.values()):
        return report
    flights = {a: a.packets(b.chain_id), b: b.packets(a.chain_id)}
    if not flights[a] and not flights[b]:
        return report
    held = {b: update_client(a, b, clients[b], report, sleep), a: update_client(b, a, clients[a], report, sleep)}
    times = {here: (here.client_of(there.chain_id) or {}).get("latest_time_ms") or 0
             for here, there in ((a, b), (b, a))}
    for src, dst in ((a, b), (b, a)):
        for packet in flights[src]:
            relay_packet(src, dst, packet, held[dst], held[src], times[src], report)
    return report


def run_relayer(a_url: str, b_url: str, *, interval_s: float = 1.0, passes: int | None = None,
                tokens: tuple[str | None, str | None] = (None, None),
                echo: Callable[[str], None] = print) -> None:
    """Relay until killed (or ``passes`` passes): a node that does not answer is waited for."""
    sides: tuple[Side, Side] | None = None
    done = 0
    while passes is None or done < passes:
        try:
            if sides is None:
                sides = (Side(a_url, tokens[0]), Side(b_url, tokens[1]))
                echo(f"relaying between {sides[0].chain_id.hex()[:16]}… ({a_url}) and "
                     f"{sides[1].chain_id.hex()[:16]}… ({b_url})")
            report = relay_pass(*sides)
            if not report.is_idle() or report.refused:
                echo(report.describe())
        except Unreachable as exc:
            echo(f"waiting: {exc}")
        except RelayError as exc:
            # A node's odd answer fails one pass, not the relayer: the chains stay the truth.
            echo(f"pass failed: {exc}")
        done += 1
        if passes is None or done < passes:
            time.sleep(interval_s)
