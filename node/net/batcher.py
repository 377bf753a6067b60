"""TxBatcher: many signed txs per gossip message (DESIGN §7: gossip pays per message).

Txs wait at most ``delay_s`` (0.75 s by default) after the first one of a batch (0.05 s
after 0.5 s without sending: see IDLE_S); a batch that would exceed ``max_txs`` or
``max_bytes`` is flushed at once. Under load a batch leaves earlier, on the node's
cue that a proposal of the current height was seen (``cue``, at least CUE_MIN_AGE_S
after its first tx): the next block is built when this height commits, so a batch
sent then makes it, where one sent on a timer of its own waits on average half a
height more.

Every gossip message is received up to D = 6 times by every node, and py-libp2p
handles a few hundred messages a second per node (DEPENDENCIES.md): per message
costs more than a wait of up to 0.75 s. Batches stay well under 1 MiB so that go and
js peers, whose RPC limit is 1 MiB, relay them too. The delays were chosen by bench
localnet runs: docs/performance.md, "Constants and the runs behind them".
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import trio

from wire.limits import MAX_GOSSIP_BYTES, MAX_TX_BYTES

from node.net.errors import LocalProtocolError
from node.net.messages import MAX_BATCH_TXS, TxBatch

DEFAULT_DELAY_S = 0.75
# A tx that finds the batcher idle (nothing sent for IDLE_S) leaves after QUICK_DELAY_S:
# batching only pays when messages are many, and a household's one reading a minute, or
# a transfer made from the dashboard, would otherwise wait the whole delay for nothing.
# Under load (txs less than IDLE_S apart) a batch leaves every DEFAULT_DELAY_S.
IDLE_S = 0.5
QUICK_DELAY_S = 0.05
# A cue flushes a batch whose first tx is at least this old: at 100 readings/s heights
# take 0.35 s, and batches should not shrink to a few txs each.
CUE_MIN_AGE_S = 0.2
# Room for the gossipsub envelope (signature, key, topic, peer record) inside 1 MiB.
DEFAULT_MAX_BYTES = MAX_GOSSIP_BYTES - 16 * 1024
_BATCH_OVERHEAD = 32     # msgpack array and list headers, tag, version
_PER_TX_OVERHEAD = 5     # msgpack bin 16/32 header


def compute_batch_cost(tx: bytes) -> int:
    """Upper bound of the bytes ``tx`` adds to an encoded TxBatch."""
    return len(tx) + _PER_TX_OVERHEAD


class TxBatcher:
    """Collects txs and hands each full or aged batch, encoded, to ``publish``."""

    def __init__(self, publish: Callable[[bytes], Awaitable[None]], *,
                 max_txs: int = MAX_BATCH_TXS, max_bytes: int = DEFAULT_MAX_BYTES,
                 delay_s: float = DEFAULT_DELAY_S) -> None:
        if not 1 <= max_txs <= MAX_BATCH_TXS:
            raise ValueError(f"max_txs must be in 1..{MAX_BATCH_TXS}")
        if not _BATCH_OVERHEAD + MAX_TX_BYTES + _PER_TX_OVERHEAD <= max_bytes <= MAX_GOSSIP_BYTES:
            raise ValueError("max_bytes must fit one largest tx and stay within 1 MiB")
        self._publish = publish
        self._max_txs, self._max_bytes, self._delay_s = max_txs, max_bytes, delay_s
        self._txs: list[bytes] = []
        self._size = _BATCH_OVERHEAD
        self._pending = trio.Event()
        self._cued = trio.Event()
        self._last_flush = -math.inf
        self.batches_sent = 0
        self.txs_sent = 0

    def __len__(self) -> int:
        return len(self._txs)

    def is_full_with(self, tx: bytes) -> bool:
        """True iff adding ``tx`` would break the count or byte limit of the batch."""
        return (len(self._txs) + 1 > self._max_txs
                or self._size + compute_batch_cost(tx) > self._max_bytes)

    async def add(self, tx: bytes) -> None:
        """Queue one signed tx. Flushes first (publishing inline) if it would not fit."""
        if type(tx) is not bytes or not 0 < len(tx) <= MAX_TX_BYTES:
            raise LocalProtocolError(f"a tx is 1..{MAX_TX_BYTES} bytes")
        if self._txs and self.is_full_with(tx):
            await self.flush()
        self._txs.append(tx)
        self._size += compute_batch_cost(tx)
        self._pending.set()

    def cue(self) -> None:
        """A proposal was seen: the next block is built when this height commits, so a
        batch sent now makes it, and one sent later may wait a whole height more."""
        self._cued.set()

    async def flush(self) -> None:
        """Publish what is queued, if anything, as one TxBatch."""
        if not self._txs:
            return
        txs, self._txs, self._size = self._txs, [], _BATCH_OVERHEAD
        self._pending = trio.Event()
        self._last_flush = trio.current_time()
        data = TxBatch(txs=tuple(txs)).encode()
        self.batches_sent += 1
        self.txs_sent += len(txs)
        await self._publish(data)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Flush each batch on a cue, once CUE_MIN_AGE_S old, or ``delay_s`` after its
        first tx, whichever comes first (QUICK_DELAY_S if the batcher was idle). Gossip
        is best effort (DEPENDENCIES.md), so what is queued at shutdown is dropped, not
        flushed."""
        task_status.started()
        while True:
            await self._pending.wait()
            first = trio.current_time()
            if first - self._last_flush >= IDLE_S:
                await trio.sleep(min(QUICK_DELAY_S, self._delay_s))
            else:
                self._cued = trio.Event()
                with trio.move_on_after(self._delay_s):
                    await self._cued.wait()
                    await trio.sleep_until(first + CUE_MIN_AGE_S)
            await self.flush()
