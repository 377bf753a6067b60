"""``voisinage bench cadence``: blocks, txs and block bytes per simulated day, with the
empty-block heartbeat and a reading a minute (``before``) against blocks only when
something is due and one reading per settlement interval (``after``), docs/cadence.md.

Both runs go through the real ledger (``tokens.apply_block`` on a MemoryKV) and real
block encodings (node/bench/storage.py's blocks, a 3-signature commit), on the
ledger-day simulator's commune (node/sim). In ``after`` a block is made at each
reading time (the interval's readings, as the validators batch them) and at each time
``tokens.due.get_next_due_ms`` names; nothing else. An idle commune sends no reading.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from consensus.block import ZERO_ID, Commit, compute_block_id
from node.bench.storage import BenchFailed, build_block, build_readings
from node.sim.ledger_day import DEMO_DAY, DemoCommune, build_commune
from tokens import BlockContext, MemoryKV, apply_block, genesis_writes, get_state_hash
from tokens.due import get_next_due_ms
from wire import compute_id

BEFORE_IDLE_S = 10          # the former default max_idle_s
BEFORE_READING_S = 60       # `meter tic --every 60`
DAY_S = 86_400


@dataclass
class Chain:
    """One simulated chain: its state, and what its blocks cost."""

    c: DemoCommune
    kv: MemoryKV
    height: int = 0
    parent: bytes = ZERO_ID
    last_commit: Commit | None = None
    blocks: int = 0
    empty: int = 0
    txs: int = 0
    block_bytes: int = 0

    def block(self, time_s: int, txs: list[bytes]) -> None:
        self.height += 1
        ctx = BlockContext(self.height, time_s * 1000, self.c.genesis.validators[0].key)
        try:
            result = apply_block(self.kv, self.c.genesis, ctx, txs, verified={compute_id(tx) for tx in txs})
        except Exception as exc:   # InvalidLedgerBlock: the bench is wrong
            raise BenchFailed(f"block {self.height} does not apply: {exc}") from None
        block, commit = build_block(self.c, self.height, time_s * 1000, txs, self.parent,
                                    get_state_hash(self.kv), self.last_commit)
        self.kv.apply(result.writes)
        self.parent, self.last_commit = compute_block_id(block), commit
        self.blocks += 1
        self.empty += not txs
        self.txs += len(txs)
        self.block_bytes += len(block.encode()) + len(commit.encode())

    def summary(self, days: int) -> dict[str, Any]:
        return {"blocks_per_day": self.blocks / days, "empty_blocks_per_day": self.empty / days,
                "txs_per_day": self.txs / days, "block_bytes_per_day": self.block_bytes // days}


def new_chain(households: int, seed: int) -> Chain:
    c = build_commune(households, seed)
    return Chain(c, MemoryKV(genesis_writes(c.genesis)))


def run_before(households: int, days: int, readings: bool, seed: int) -> Chain:
    """An empty block every BEFORE_IDLE_S s; every household's reading every minute."""
    chain = new_chain(households, seed)
    seq, indexes = 0, {}
    start = DEMO_DAY + 1
    for k in range(days * DAY_S // BEFORE_IDLE_S):
        t = start + k * BEFORE_IDLE_S
        txs: list[bytes] = []
        if readings and (t - start) % BEFORE_READING_S == 0:
            seq += 1
            txs = build_readings(chain.c, seq, t, indexes)
        chain.block(t, txs)
    return chain


def compute_reading_time(t: int, interval_s: int) -> int:
    """The agent's reading time for the interval holding ``t`` (node/meter/agent.py): a
    minute (at most a tenth of the interval) before its end."""
    return (t // interval_s + 1) * interval_s - min(60, interval_s // 10)


def run_after(households: int, days: int, readings: bool, seed: int) -> Chain:
    """A block at each reading time and each due time (tokens/due.py), nothing else."""
    chain = new_chain(households, seed)
    interval = chain.c.genesis.params["settlement_interval_s"]
    seq, indexes = 0, {}
    t, end = DEMO_DAY + 1, DEMO_DAY + days * DAY_S
    next_reading = compute_reading_time(t, interval) if readings else None
    while True:
        due = get_next_due_ms(chain.kv)
        due_s = None if due is None else max(-(-due // 1000), t)
        candidates = [x for x in (due_s, next_reading) if x is not None]
        if not candidates or min(candidates) >= end:
            return chain
        t = min(candidates)
        txs: list[bytes] = []
        if t == next_reading:
            seq += 1
            txs = build_readings(chain.c, seq, t, indexes)
            next_reading += interval
        chain.block(t, txs)
        t += 1


def run_cadence_bench(households: int = 10, days: int = 2, seed: int = 1) -> dict[str, Any]:
    """Per simulated day, before and after, for an idle commune and an active one."""
    started = time.perf_counter()
    out: dict[str, Any] = {"households": households, "days": days}
    for name, readings in (("idle", False), ("active", True)):
        before = run_before(households, days, readings, seed).summary(days)
        after = run_after(households, days, readings, seed).summary(days)
        out[name] = {"before": before, "after": after,
                     "blocks_ratio": round(after["blocks_per_day"] / before["blocks_per_day"], 5),
                     "bytes_ratio": round(after["block_bytes_per_day"] / before["block_bytes_per_day"], 5)}
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out
