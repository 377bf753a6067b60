"""The mempool: admitted transactions waiting for a block, with explicit limits (DESIGN §7).

Admission runs the ledger's ``check_tx`` against committed state. The pool keeps
insertion order; ``reap`` hands a proposer each signer's transactions in nonce (or
reading seq) order so one block never holds them out of order. Committed and
proposer-rejected transactions are removed; nothing is silently dropped without a
reason being returned to the caller.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from tokens.txs import MeterReading, Sealed, SealedCosigned, Tx
from wire import compute_id

DEFAULT_MAX_TXS = 50_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class MempoolFull(Exception):
    """The pool is at its limit: the transaction is ignored, the sender is not at fault."""


class Duplicate(Exception):
    """The transaction is already in the pool."""


@dataclass(frozen=True)
class Entry:
    id: bytes
    data: bytes
    tx: Tx
    arrived: float   # monotonic seconds, for commit latency

    @property
    def order_key(self) -> int:
        return self.tx.seq if isinstance(self.tx, MeterReading) else getattr(self.tx, "nonce", 0)

    @property
    def signer(self) -> bytes:
        return getattr(self.tx, "signer", b"")


class Mempool:
    def __init__(self, max_txs: int = DEFAULT_MAX_TXS, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_txs, self.max_bytes = max_txs, max_bytes
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._entries

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def add(self, data: bytes, check: Callable[[bytes], Tx], now: float | None = None) -> Entry:
        """Admit ``data`` after ``check`` (which raises DecodeError/InvalidTx for bad txs)."""
        tx_id = compute_id(data)
        if tx_id in self._entries:
            raise Duplicate(tx_id.hex())
        if len(self._entries) >= self.max_txs or self._bytes + len(data) > self.max_bytes:
            raise MempoolFull(f"mempool full ({len(self._entries)} txs, {self._bytes} bytes)")
        tx = check(data)
        entry = Entry(tx_id, data, tx, time.monotonic() if now is None else now)
        self._entries[tx_id] = entry
        self._bytes += len(data)
        return entry

    def entries(self) -> list[Entry]:
        """Every entry, oldest first (a copy: the pool may change meanwhile)."""
        return list(self._entries.values())

    def get(self, tx_id: bytes) -> Entry | None:
        return self._entries.get(tx_id)

    def remove(self, tx_ids) -> list[Entry]:
        removed = []
        for tx_id in tx_ids:
            entry = self._entries.pop(tx_id, None)
            if entry is not None:
                self._bytes -= len(entry.data)
                removed.append(entry)
        return removed

    def reap(self, max_txs: int) -> list[Entry]:
        """Up to ``max_txs`` entries: signers by first arrival, each signer's txs in nonce order."""
        by_signer: dict[bytes, list[Entry]] = {}
        for entry in self._entries.values():
            by_signer.setdefault(entry.signer, []).append(entry)
        out: list[Entry] = []
        for entries in by_signer.values():
            entries.sort(key=lambda e: e.order_key)
            out.extend(entries[: max_txs - len(out)])
            if len(out) >= max_txs:
                break
        return out


def get_pending_nonce(pool: Mempool, signer: bytes,
                      inner: Callable[[Tx], Tx | None] = lambda tx: tx) -> int | None:
    """The highest account nonce among ``signer``'s txs waiting in ``pool``, or None.

    A client that picks its next nonce from the committed one alone (``fetch_next_nonce``)
    may pick one that a tx still waiting here spends first: its tx then goes stale in the
    block that commits the other, and is never committed. A reading counts its ``seq``,
    not a nonce, and is left out; so is a household's sealed envelope that ``inner``
    cannot open (its clear nonce is a reading's seq or a tx's nonce: nobody outside can
    tell which)."""
    highest = None
    for entry in pool.entries():
        if entry.signer != signer:
            continue
        tx = inner(entry.tx)
        if tx is None or isinstance(tx, (MeterReading, Sealed, SealedCosigned)):
            continue
        nonce = getattr(tx, "nonce", None)
        if type(nonce) is int and (highest is None or nonce > highest):
            highest = nonce
    return highest
