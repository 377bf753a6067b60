"""Arriving txs' checks in worker processes (issue 20): a slice of a batch goes to a
process, which decodes each tx, checks its signatures and opens its envelope with the
node's own code (``txcheck.check_one``), and sends back the ``Checked`` results.

Worker threads share the GIL: what runs around libsodium (decoding envelope and inner
tx, the MAC, building the results) does not scale over cores on threads. Processes share
nothing, at the price of sending the tx bytes and receiving the decoded txs (pickled: a
decoded tx unpickles in about a third of its strict decode, so the node's thread does not
decode it a second time).

A process cannot read the node's LevelDB store. Opening a household's envelope needs the
state's copy of its sealed data key, so each process holds a copy of the state's
household data keys (``hdk/`` entries): the node's thread scans them again whenever the
state's version has moved, and sends each process the entries that changed since it
last sent it any, with the next slice it gives it (an erased household's entries go,
and the process forgets what it opened of it). The commune secrets go the same way when
they change. Each process keeps the household data keys it opened (X25519 once per
household and epoch, as the node's own keyring does); the results carry what it opened,
for the node's keyring. A result says which state version its opening read, exactly as
a worker thread's does (``txcheck.seed`` then decides what to keep).

Processes ignore SIGINT (Ctrl-C stops the node, which then stops them) and leave when
told to, or when the node's end of their pipe closes. A process that dies is not used
again: its slices are checked on a worker thread instead, with the same results.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import trio

from tokens import layout as L
from tokens.sealing import Keyring

log = logging.getLogger(__name__)

# A committed state prefix -> its (key, raw value) entries, in key order.
StateScan = Callable[[bytes], Iterable[tuple[bytes, bytes]]]
# (state key, raw value or None: gone) of the household data keys.
Update = tuple[bytes, "bytes | None"]
JOIN_S = 5.0            # a process told to leave is waited for this long, then terminated


class WorkerLost(Exception):
    """A check process died or its pipe broke: its slice is checked elsewhere."""


def serve_checks(conn: Connection, chain_id: bytes) -> None:
    """A check process's loop: (secrets or None, updates, txs, version) in, results out."""
    from node.service.txcheck import check_one_into   # the process imports it once

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    table: dict[bytes, bytes] = {}
    keys = Keyring()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        secrets, updates, txs, version = message
        if secrets is not None:
            keys.secrets = dict(secrets)
        apply_updates(table, keys, updates)
        conn.send(check_one_into(txs, chain_id, table.get, keys if keys.secrets else None, version))


def apply_updates(table: dict[bytes, bytes], keys: Keyring, updates: Sequence[Update]) -> None:
    """The state's changed household data keys into a process's copy; a household whose
    data key left the state (erased) is forgotten by the process's keyring too."""
    for key, raw in updates:
        if raw is None:
            table.pop(key, None)
            keys.forget_household(key[len(L.HOUSEHOLD_DATA_KEY):-8])
        else:
            table[key] = raw


@dataclass
class Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    lock: trio.Lock = field(default_factory=trio.Lock)
    sent: int = 0                           # updates sent, counted from the log's start
    secrets: dict[int, bytes] | None = None  # the commune secrets it holds
    alive: bool = True

    def call(self, message: tuple) -> list:
        """Send one slice and wait for its results (on a thread: it blocks)."""
        try:
            self.conn.send(message)
            return self.conn.recv()
        except (EOFError, OSError) as exc:
            raise WorkerLost(f"check process {self.process.pid} lost: {exc or type(exc).__name__}") from None


class CheckProcesses:
    """``workers`` check processes and the copy of the household data keys they hold."""

    def __init__(self, chain_id: bytes, workers: int, scan: StateScan | None) -> None:
        context = multiprocessing.get_context("spawn")
        self.scan = scan
        self.workers: list[Worker] = []
        self._table: dict[bytes, bytes] = {}
        self._log: list[Update] = []
        self._base = 0          # updates dropped from the log's start (every worker had them)
        self._at: int | None = None
        try:
            for index in range(workers):
                here, there = context.Pipe()
                process = context.Process(target=serve_checks, args=(there, chain_id), daemon=True,
                                          name=f"voisinage-check-{index}")
                process.start()
                there.close()
                self.workers.append(Worker(process, here))
        except BaseException:
            self.close()
            raise

    def live(self) -> list[Worker]:
        return [worker for worker in self.workers if worker.alive]

    def refresh(self, version: int) -> None:
        """The state's household data keys again if its version moved; what changed, logged."""
        if version == self._at or self.scan is None:
            return
        table = dict(self.scan(L.HOUSEHOLD_DATA_KEY))
        old = self._table
        self._log.extend((key, raw) for key, raw in table.items() if old.get(key) != raw)
        self._log.extend((key, None) for key in old if key not in table)
        self._table, self._at = table, version

    async def check(self, worker: Worker, txs: Sequence[bytes | None], version: int,
                    secrets: dict[int, bytes] | None) -> list:
        """One slice on ``worker``, with the updates and secrets it lacks; raises WorkerLost."""
        async with worker.lock:
            if not worker.alive:
                raise WorkerLost(f"check process {worker.process.pid} lost")
            upto = self._base + len(self._log)
            updates = self._log[worker.sent - self._base:]
            fresh = None if secrets == worker.secrets else dict(secrets or {})
            try:
                results = await trio.to_thread.run_sync(worker.call, (fresh, updates, txs, version))
            except WorkerLost:
                worker.alive = False
                log.error("a tx check process died; its checks run on threads from now on")
                raise
            worker.sent = upto
            if fresh is not None:
                worker.secrets = fresh
            self._trim()
            return results

    def _trim(self) -> None:
        live = self.live()
        done = min((worker.sent for worker in live), default=self._base + len(self._log))
        if done > self._base:
            del self._log[:done - self._base]
            self._base = done

    def close(self) -> None:
        """Tell every process to leave, wait for it (terminate it if it does not)."""
        for worker in self.workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        for worker in self.workers:
            worker.process.join(JOIN_S)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(JOIN_S)
            worker.conn.close()
            worker.alive = False
        self.workers = []
