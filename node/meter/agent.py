"""The meter agent: read TIC, sign one cumulative reading per period, submit it to a node.

DESIGN §4 MeterReading: the indexes are cumulative, so a lost or refused submission loses
no energy; the next one carries the delta. When the node is down the agent keeps only the
latest reading and retries with backoff, re-signing it with a fresh ``seq``.

- ``t`` is the unix second at which the latest frame arrived (the meter's own DATE is
  local time and absent in historic mode). A reading is submitted only if its ``t`` is
  past the last submitted one, so ``t`` rises.
- ``seq`` is the signing time in milliseconds, bumped past the previous value and, from
  the first contact with the node on, past the household's last committed seq. So it
  rises across restarts without any state on disk, and a clock that ran ahead and was
  set back does not lock the meter out: the ledger refuses a seq more than
  ``max_nonce_ahead_s`` ahead of block time (``seq_ahead``), and the agent starts
  again from the seq that was committed.
- On a chain that seals payloads (docs/privacy.md) the reading is posted sealed under
  the household's data key; the agent publishes that key (``SetDataKey``) when the
  node says it has none of the current epoch, at the start and after a rotation, and
  retries the reading once the key is in a block.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import httpx
import trio

from node.api.status import parse_status_chain_id
from node.meter.reading import Reading, compute_reading
from node.meter.sealing import NEEDS_DATA_KEY, ChainSealing, make_data_key_tx, parse_commune_sealing, seal_tx
from node.meter.source import ByteSource, SourceError
from node.meter.tic import Mode, TicParser
from tokens.txs import MeterReading, Tx
from wire import Keypair, sign_message

READ_SIZE = 4096
MAX_BACKOFF_S = 30.0
HTTP_TIMEOUT_S = 5.0


class NodeUnavailable(Exception):
    """The node did not answer, or answered with a server error: retry later."""


class NodeRejected(Exception):
    """The node answered 400 (or another client error) with a reason: do not resend."""


def build_reading_tx(key: Keypair, chain_id: bytes, reading: Reading, t: int, seq: int) -> MeterReading:
    """The signed MeterReading for ``reading`` at unix time ``t`` (DESIGN §4)."""
    tx = MeterReading(signer=key.public, meter=reading.meter, seq=seq, t=t,
                      import_wh=reading.import_wh, export_wh=reading.export_wh, sig=b"\0" * 64)
    signed = sign_message(tx, chain_id, key)
    if not isinstance(signed, MeterReading):
        raise TypeError("sign_message returned another message type")
    return signed


def compute_nonce_ms(now_s: float) -> int:
    """A clock nonce (tokens/txs.py: rising, gaps allowed)."""
    return int(now_s * 1000)


def compute_next_seq(previous: int, now_s: float) -> int:
    """seq = signing time in ms, strictly above the previous seq."""
    return max(previous + 1, int(now_s * 1000))


def compute_next_reading_s(now_s: float, period_s: float) -> float:
    """When the agent next submits, with one reading per settlement interval: a little
    before the interval's end (a tenth of it, at most a minute), so the reading's
    energy counts for the interval it was used in (DESIGN §4: deltas count for the
    interval that contains t). Wall seconds; strictly after ``now_s``."""
    lead = min(60.0, period_s / 10)
    k = (now_s + lead) // period_s + 1
    return k * period_s - lead


class NodeClient:
    """GET /status for the chain id; POST /tx with an encoded signed tx (DESIGN §9)."""

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url = url.rstrip("/")
        self.client = client

    async def _get_json(self, path: str):
        """The JSON of a 200 answer to GET ``path``; NodeUnavailable for anything else."""
        try:
            resp = await self.client.get(f"{self.url}{path}", timeout=HTTP_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise NodeUnavailable(f"GET {path}: {str(exc)[:120] or type(exc).__name__}") from None
        if resp.status_code != 200:
            raise NodeUnavailable(f"GET {path} answered {resp.status_code}")
        try:
            return resp.json()
        except ValueError:
            raise NodeUnavailable(f"GET {path}: the node's answer is not JSON") from None

    async def get_chain_id(self) -> bytes:
        doc = await self._get_json("/status")
        try:
            return parse_status_chain_id(doc)
        except ValueError as exc:
            raise NodeUnavailable(str(exc)) from None

    async def get_interval_wall_s(self) -> float:
        """The settlement interval in wall seconds (interval_s / time_scale), from GET /commune."""
        doc = await self._get_json("/commune")
        try:
            params = doc["params"]
            interval, scale = params["settlement_interval_s"], params.get("time_scale", 1)
        except (KeyError, TypeError, AttributeError):
            raise NodeUnavailable("GET /commune: no settlement_interval_s in the node's answer") from None
        if type(interval) is not int or type(scale) is not int or interval < 1 or scale < 1:
            raise NodeUnavailable("GET /commune: settlement_interval_s or time_scale is not a positive integer")
        return interval / scale

    async def get_sealing(self) -> ChainSealing | None:
        """Whether the chain seals payloads, and under which commune key now (GET /commune)."""
        try:
            return parse_commune_sealing(await self._get_json("/commune"))
        except ValueError as exc:
            raise NodeUnavailable(str(exc)) from None

    async def get_last_seq(self, signer: bytes) -> int:
        """The household's last committed seq (0 for none yet), from GET /accounts/{addr}."""
        path = f"/accounts/{signer.hex()}"
        try:
            resp = await self.client.get(f"{self.url}{path}", timeout=HTTP_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise NodeUnavailable(f"GET {path}: {str(exc)[:120] or type(exc).__name__}") from None
        if resp.status_code == 404:
            return 0
        if resp.status_code != 200:
            raise NodeUnavailable(f"GET {path} answered {resp.status_code}")
        try:
            seq = ((resp.json().get("household") or {}).get("last_reading") or {}).get("seq", 0)
        except (ValueError, AttributeError):
            raise NodeUnavailable(f"GET {path}: not an account document") from None
        if type(seq) is not int:
            raise NodeUnavailable(f"GET {path}: the household's seq is not an integer")
        return seq

    async def submit(self, tx: Tx) -> str:
        """POST the tx; return the id the node gives it."""
        try:
            resp = await self.client.post(f"{self.url}/tx", content=tx.encode(), timeout=HTTP_TIMEOUT_S,
                                          headers={"content-type": "application/msgpack"})
        except httpx.HTTPError as exc:
            raise NodeUnavailable(f"POST /tx: {str(exc)[:120] or type(exc).__name__}") from None
        if resp.status_code >= 500:
            raise NodeUnavailable(f"POST /tx answered {resp.status_code}")
        try:
            doc = resp.json()
        except ValueError:
            doc = {}
        doc = doc if isinstance(doc, dict) else {}
        if resp.status_code in (200, 202):
            return str(doc.get("id", tx.id().hex()))
        raise NodeRejected(str(doc.get("error", f"status {resp.status_code}"))[:200])


@dataclass
class AgentStatus:
    """What the agent shows: last frame, last reading, last submission."""

    frames: int = 0
    unusable_frames: int = 0      # frames that gave no reading (a critical group was dropped)
    last_frame_at: float | None = None
    last_mode: Mode | None = None
    reading: Reading | None = None
    reading_t: int | None = None
    submitted_t: int = 0
    last_seq: int = 0
    accepted: int = 0
    rejected: int = 0
    failures: int = 0
    last_submission: str = "none yet"
    # The last accepted submissions, (seq, t, reading), newest last; bounded.
    accepted_log: deque[tuple[int, int, Reading]] = field(default_factory=lambda: deque(maxlen=64))

    def compute_line(self, now: float) -> str:
        mode = self.last_mode.value if self.last_mode else "?"
        frame = ("no frame yet" if self.last_frame_at is None else
                 f"{self.frames} frames ({self.unusable_frames} unusable), "
                 f"last {now - self.last_frame_at:.0f}s ago ({mode})")
        reading = ("no reading yet" if self.reading is None else
                   f"meter {self.reading.meter} import {self.reading.import_wh} Wh "
                   f"export {self.reading.export_wh} Wh power {self.reading.power_va} VA")
        return f"frame: {frame} | reading: {reading} | submission: {self.last_submission}"


class MeterAgent:
    """Reads a source, keeps the latest reading and submits it every ``every_s`` seconds,
    or, with ``every_s`` None, once per settlement interval (asked of the node) plus a
    catch-up reading as soon as an outage (node or meter) ends (docs/cadence.md)."""

    def __init__(self, source: ByteSource, key: Keypair, node: NodeClient, every_s: float | None, *,
                 now: Callable[[], float] = time.time, out: Callable[[str], None] = print,
                 max_submissions: int = 0) -> None:
        self.source, self.key, self.node, self.every_s = source, key, node, every_s
        self.now, self.out, self.max_submissions = now, out, max_submissions
        self.parser = TicParser()
        self.status = AgentStatus()
        self.chain_id: bytes | None = None
        self.period_s: float | None = None     # the settlement interval, wall seconds
        self.sealing: ChainSealing | None = None
        self.data_key_epoch: int | None = None  # the epoch whose data key this agent published
        self._done = trio.Event()

    async def run(self) -> None:
        """Run until cancelled, or until ``max_submissions`` readings were accepted."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read_loop)
            nursery.start_soon(self._submit_loop)
            await self._done.wait()
            nursery.cancel_scope.cancel()

    def process_chunk(self, chunk: bytes) -> None:
        """Feed bytes to the parser; every usable frame replaces the latest reading."""
        for frame in self.parser.feed(chunk):
            now = self.now()
            self.status.frames += 1
            self.status.last_frame_at, self.status.last_mode = now, frame.mode
            if self.status.frames == 1:
                self.out(f"first frame: {frame.mode.value} mode, {len(frame.groups)} groups")
            reading = compute_reading(frame)
            if reading is None:
                self.status.unusable_frames += 1
            else:
                self.status.reading, self.status.reading_t = reading, int(now)

    async def _read_loop(self) -> None:
        while True:
            try:
                chunk = await trio.to_thread.run_sync(self.source.read, READ_SIZE)
            except SourceError as exc:
                self.out(f"source: {exc}; retrying in 1s")
                await trio.sleep(1.0)
                continue
            self.process_chunk(chunk)
            if not chunk:   # end of a followed file: wait for more (a port read already waited)
                await trio.sleep(self.source.idle_sleep_s)

    async def get_wait_s(self) -> float:
        """Seconds until the next scheduled submission: ``every_s``, or the next reading
        time of the settlement interval (asked of the node once)."""
        if self.every_s is not None:
            return self.every_s
        if self.period_s is None:
            self.period_s = await self.node.get_interval_wall_s()
            self.out(f"one reading per settlement interval: every {self.period_s:g}s")
        now = self.now()
        return compute_next_reading_s(now, self.period_s) - now

    async def _submit_loop(self) -> None:
        backoff = 0.0
        while True:
            try:
                await trio.sleep(backoff if backoff else await self.get_wait_s())
                if not await self.submit_latest() and self.every_s is None:
                    # A meter outage: no fresh frame for this interval. Catch up as soon
                    # as one comes, not an interval later.
                    backoff = min(MAX_BACKOFF_S, max(1.0, backoff * 2) if backoff else 1.0)
                    self.status.last_submission = f"no fresh reading from the meter; retry in {backoff:.0f}s"
                else:
                    backoff = 0.0
            except NodeUnavailable as exc:
                # Keep the latest reading; cumulative indexes make the retry lossless. The
                # retry is the catch-up reading: it does not wait for the next interval.
                cap = MAX_BACKOFF_S if self.every_s is None else min(self.every_s, MAX_BACKOFF_S)
                backoff = min(cap, max(1.0, backoff * 2) if backoff else 1.0)
                self.status.failures += 1
                self.status.last_submission = f"node unreachable ({exc}); retry in {backoff:.0f}s"
            self.out(self.status.compute_line(self.now()))
            if self.max_submissions and self.status.accepted >= self.max_submissions:
                self._done.set()

    async def publish_data_key(self) -> None:
        """docs/privacy.md: post the household's data key of the current epoch, once per
        epoch; the node's own copy (``data_key_exists``) is as good."""
        self.sealing = await self.node.get_sealing()
        if self.sealing is None or self.data_key_epoch == self.sealing.epoch:
            return
        tx = make_data_key_tx(self.key, self.chain_id, compute_nonce_ms(self.now()), self.sealing)
        try:
            await self.node.submit(tx)
        except NodeRejected as exc:
            if "data_key_exists" not in str(exc):
                raise
        self.data_key_epoch = self.sealing.epoch
        self.out(f"published this household's data key of epoch {self.sealing.epoch}")

    async def submit_latest(self) -> bool:
        """Sign and submit the latest reading if it is newer than the last one submitted;
        False when there was none to submit."""
        status = self.status
        if status.reading is None or status.reading_t is None or status.reading_t <= status.submitted_t:
            return False
        if self.chain_id is None:
            status.last_seq = max(status.last_seq, await self.node.get_last_seq(self.key.public))
            self.chain_id = await self.node.get_chain_id()
            self.sealing = await self.node.get_sealing()
        reading, t = status.reading, status.reading_t
        seq = compute_next_seq(status.last_seq, self.now())
        tx: Tx = build_reading_tx(self.key, self.chain_id, reading, t, seq)
        status.last_seq = seq
        if self.sealing is not None:
            tx = seal_tx(tx, self.key, self.chain_id, self.sealing)
        try:
            tx_id = await self.node.submit(tx)
        except NodeRejected as exc:
            if self.sealing is not None and any(code in str(exc) for code in NEEDS_DATA_KEY):
                await self.publish_data_key()
                # The reading is kept: it goes again, sealed anew, once the key is in a block.
                raise NodeUnavailable(f"waiting for this household's data key of epoch {self.sealing.epoch} "
                                      f"to be in a block ({exc})") from None
            status.submitted_t, status.rejected = t, status.rejected + 1
            status.last_submission = f"rejected seq {seq}: {exc}"
            return True
        status.submitted_t, status.accepted = t, status.accepted + 1
        status.accepted_log.append((seq, t, reading))
        status.last_submission = f"accepted seq {seq} t {t} id {tx_id[:16]}"
        return True
