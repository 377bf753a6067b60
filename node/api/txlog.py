"""Recent transactions by account or type, found by walking committed blocks backwards.

The ledger keeps balances, not a per-account history, and DESIGN §9 asks for no
index; a household wants "what moved on my account lately". ``TxLog`` walks back
from a height over at most ``SCAN_BLOCKS`` blocks per request, and keeps a bounded
cache of each block's decoded transactions (blocks are final, so the cache never
goes stale). A page answers ``next_before``: the height to continue below.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from consensus.block import Block
from node.api.private import compute_parties
from node.api.render import tx_json
from wire import MAX_BLOCK_BYTES, DecodeError, decode

SCAN_BLOCKS = 512
CACHE_BLOCKS = 8192
READING = "tx/reading"


class BlockReader(Protocol):
    def height(self) -> int: ...
    def block(self, height: int) -> bytes | None: ...


@dataclass(frozen=True)
class LoggedTx:
    doc: dict[str, Any]
    parties: frozenset[str]


class TxLog:
    def __init__(self) -> None:
        self._cache: OrderedDict[int, tuple[LoggedTx, ...]] = OrderedDict()

    def get_block_txs(self, reader: BlockReader, height: int) -> tuple[LoggedTx, ...]:
        """The decoded txs of a committed block, with its height and time added."""
        found = self._cache.get(height)
        if found is not None:
            self._cache.move_to_end(height)
            return found
        raw = reader.block(height)
        try:
            block = decode(raw, Block, MAX_BLOCK_BYTES) if raw is not None else None
        except DecodeError:
            block = None
        txs: tuple[LoggedTx, ...] = ()
        if block is not None:
            docs = [dict(tx_json(data), height=height, time_ms=block.header.time_ms) for data in block.txs]
            txs = tuple(LoggedTx(doc, compute_parties(doc)) for doc in docs)
        self._cache[height] = txs
        if len(self._cache) > CACHE_BLOCKS:
            self._cache.popitem(last=False)
        return txs

    def find(self, reader: BlockReader, *, account: str | None, tx_type: str | None, before: int | None,
             limit: int, readings: bool,
             visible: Callable[[dict[str, Any], frozenset[str]], bool] = lambda doc, parties: True,
             ) -> dict[str, Any]:
        """Newest first: txs below height ``before`` touching ``account`` and of ``tx_type``
        that ``visible(doc, parties)`` lets the reader see (node/api/private.py).
        A page ends at a block boundary, so it holds the whole last block's matches
        (possibly a few more than ``limit``)."""
        top = reader.height() if before is None else min(before - 1, reader.height())
        found: list[dict[str, Any]] = []
        height = top
        floor = max(0, top - SCAN_BLOCKS)
        while height > floor and len(found) < limit:
            for item in reversed(self.get_block_txs(reader, height)):
                if self.is_match(item, account, tx_type, readings) and visible(item.doc, item.parties):
                    found.append(item.doc)
            height -= 1
        return {"txs": found, "scanned": [height + 1, top] if top > height else None,
                "next_before": height + 1 if height > 0 else None}

    @staticmethod
    def is_match(item: LoggedTx, account: str | None, tx_type: str | None, readings: bool) -> bool:
        kind = item.doc["type"]
        if tx_type is not None:
            return kind == tx_type and (account is None or account in item.parties)
        if kind == READING and not readings:
            return False
        return account is None or account in item.parties
