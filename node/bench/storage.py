"""``voisinage bench storage``: a store's disk bytes per simulated day, with and without
history leaving the state and pruning (docs/performance.md "Storage").

Real ledger (``tokens.apply_block``), real LevelDB stores (``Store.commit_block``, the
node's ``Pruner`` after each commit, a compaction at each day's end so the figure is
live data, not what LevelDB has yet to compact; the live bytes, keys and values
summed, are given too: LevelDB's files round them by whole tables), real consensus block and commit bytes
(4 validators, a 3-signature commit). The commune is the ledger-day simulator's
(node/sim: PV under a shared sky, H0-like loads): one reading per household per
settlement interval, and between them an empty block every ``idle_s`` seconds (the
``max_idle_s`` heartbeat of today's chain). Commits are not fsynced: the bytes are
the same, and a simulated day takes seconds instead of minutes.

Three stores, in the same run:

- ``before``: the state keeps every interval (a retention of 100 years) and the store
  every block and state tree version (``--pruning archive``): the store as it was;
- ``validator``: ``history_retention_s`` of the genesis defaults, ``--pruning default``
  on a validator (the tree of the last ``keep_states`` heights, every block, the whole
  history archive);
- ``household``: the same chain on a household node (the tree and the block bodies of
  the last ``keep_states`` / ``keep_blocks`` heights, its own archived history).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consensus.block import ZERO_ID, Block, Commit, CommitSig, Header, compute_block_id, compute_tx_root
from consensus.block import compute_validators_hash
from node.sim.ledger_day import DEMO_DAY, DemoCommune, build_commune
from node.store.pruning import Pruner, Pruning
from node.store.store import Store
from tokens import BlockContext, MemoryKV, apply_block, genesis_writes, get_state_hash
from tokens import txs as T
from tokens.genesis import DEFAULT_PARAMS
from tokens.layout import INTERVAL, INTERVAL_ENTRY, TREE
from tokens.statetree import is_proven_key
from tokens.upgrades import GENESIS_VERSION
from wire import compute_id

ZERO_SIG = bytes(64)
FOREVER_S = 100 * 365 * 86_400
COMMIT_SIGS = 3


class BenchFailed(RuntimeError):
    """The simulated chain did not apply (a bug, reported as one line)."""


@dataclass
class Measured:
    name: str
    store: Store
    pruner: Pruner
    days: list[dict[str, int]] = field(default_factory=list)

    def measure(self) -> dict[str, int]:
        self.store.compact()
        state = tree = 0
        for key, _ in self.store.state.iter_prefix(b""):
            if is_proven_key(key):
                state += 1
            elif key.startswith(TREE):
                tree += 1
        archived = sum(1 for prefix in (INTERVAL, INTERVAL_ENTRY) for _ in self.store.archive.iter_prefix(prefix))
        row = {"disk_bytes": self.store.disk_bytes(), "live_bytes": self.store.live_bytes(),
               "state_entries": state, "tree_nodes": tree,
               "archived_entries": archived, "blocks_from": self.store.blocks_from(),
               "tree_from": self.store.tree_from()}
        self.days.append(row)
        return row


def fake_sig(*parts: int) -> bytes:
    seed = hashlib.sha256(repr(parts).encode()).digest()
    return seed + hashlib.sha256(seed).digest()


def build_block(c: DemoCommune, height: int, time_ms: int, txs: list[bytes], parent: bytes, state_hash: bytes,
                last_commit: Commit | None) -> tuple[Block, Commit]:
    header = Header(chain_id=c.genesis.chain_id, height=height, time_ms=time_ms, parent=parent,
                    tx_root=compute_tx_root(txs), state_hash=state_hash, proposer=c.genesis.validators[0].key,
                    next_validators=compute_validators_hash([v.key for v in c.genesis.validators]),
                    version=GENESIS_VERSION)
    block = Block(header=header, txs=tuple(txs), last_commit=last_commit, evidence=())
    block_id = compute_block_id(block)
    sigs = tuple(CommitSig(validator=fake_sig(height, i)[:32], sig=fake_sig(height, i, 1))
                 for i in range(COMMIT_SIGS))
    return block, Commit(height=height, round=0, block_id=block_id, sigs=sigs)


def build_readings(c: DemoCommune, seq: int, t: int, last: dict[int, tuple[int, int]]) -> list[bytes]:
    """Every household's reading at ``t``. MeterSim's midpoint sums can step back by a
    Wh across an hour when read off its 5-minute grid: held at the last index, as a
    meter's never falls."""
    out = []
    for i, (key, meter) in enumerate(zip(c.keys, c.meters)):
        imp, exp = meter.index_at(t)
        before = last.get(i, (0, 0))
        imp, exp = max(imp, before[0]), max(exp, before[1])
        last[i] = (imp, exp)
        out.append(c.sign(T.MeterReading(signer=key.public, meter=f"0214{i:08d}", seq=seq, t=t, import_wh=imp,
                                         export_wh=exp, sig=ZERO_SIG), key))
    return out


def run_chain(c: DemoCommune, runs: list[Measured], days: int, idle_s: int,
              on_day: Callable[[str, int], None]) -> int:
    """Apply ``days`` of blocks once, commit each to every store of ``runs``; blocks applied."""
    genesis = c.genesis
    writes = genesis_writes(genesis)
    for run in runs:
        run.store.init_genesis(genesis.chain_id, writes, get_state_hash(MemoryKV(writes)))
    lead = runs[0].store
    interval = genesis.params["settlement_interval_s"]
    per_day = 86_400 // idle_s
    last_commit: Commit | None = None
    seq = height = 0
    indexes: dict[int, tuple[int, int]] = {}
    for day in range(days):
        for k in range(per_day):
            block_s = DEMO_DAY + day * 86_400 + k * idle_s + 1
            txs: list[bytes] = []
            if height == 0 or block_s // interval != (block_s + idle_s) // interval:
                # The last block of an interval carries every household's reading of it.
                seq += 1
                txs = build_readings(c, seq, block_s - 1, indexes)
            height += 1
            ctx = BlockContext(height, block_s * 1000, genesis.validators[0].key)
            try:
                result = apply_block(lead.state, genesis, ctx, txs, verified={compute_id(tx) for tx in txs})
            except Exception as exc:   # InvalidLedgerBlock or a store error: the bench is wrong
                raise BenchFailed(f"block {height} does not apply: {exc}") from None
            block, commit = build_block(c, height, block_s * 1000, txs, lead.last_block_id() or ZERO_ID,
                                        lead.state_hash(), last_commit)
            block_bytes, commit_bytes = block.encode(), commit.encode()
            for run in runs:
                pruner = run.pruner
                run.store.commit_block(height, commit.block_id, block_bytes, commit_bytes, result.writes,
                                       result.state_hash, archive=pruner.get_archive(result.events),
                                       stale_nodes=result.stale_nodes if pruner.indexes_tree else None)
                pruner.process_commit(run.store, height, block_s)
            last_commit = commit
        for run in runs:
            run.measure()
            on_day(run.name, day + 1)
    return height


def summarise_runs(runs: list[Measured]) -> dict[str, Any]:
    out = {}
    for run in runs:
        disk = [row["disk_bytes"] for row in run.days]
        live = [row["live_bytes"] for row in run.days]
        growth = [b - a for a, b in zip([0] + disk, disk)]
        live_growth = [b - a for a, b in zip([0] + live, live)]
        out[run.name] = {"days": run.days, "growth_bytes_per_day": growth, "last_day_growth_bytes": growth[-1],
                         "live_growth_bytes_per_day": live_growth, "last_day_live_growth_bytes": live_growth[-1]}
    return out


def run_storage_bench(path: Path, households: int = 450, days: int = 4, idle_s: int = 10, seed: int = 1,
                      keep_states: int | None = None, keep_blocks: int = 0,
                      on_day: Callable[[str, int], None] = lambda name, day: None) -> dict[str, Any]:
    if 86_400 % idle_s or DEFAULT_PARAMS["settlement_interval_s"] % idle_s:
        raise BenchFailed(f"idle_s must divide the settlement interval ({DEFAULT_PARAMS['settlement_interval_s']} s)")
    started = time.perf_counter()
    before = build_commune(households, seed, {"history_retention_s": FOREVER_S})
    after = build_commune(households, seed)
    own = after.keys[0].public                 # the household node's own key (a producer or not)
    with Store.open(path / "before", sync=False) as s_before, \
            Store.open(path / "validator", sync=False) as s_validator, \
            Store.open(path / "household", sync=False) as s_household:
        runs_before = [Measured("before", s_before, Pruner(Pruning(mode="archive"), own, True))]
        runs_after = [Measured("validator", s_validator, Pruner(Pruning(keep_states=keep_states), own, True)),
                      Measured("household", s_household,
                               Pruner(Pruning(keep_states=keep_states, keep_blocks=keep_blocks), own, False))]
        blocks = run_chain(before, runs_before, days, idle_s, on_day)
        run_chain(after, runs_after, days, idle_s, on_day)
        return {"households": households, "days": days, "idle_s": idle_s, "blocks": blocks,
                "history_retention_s": DEFAULT_PARAMS["history_retention_s"], "keep_states": keep_states,
                "keep_blocks": keep_blocks, "seconds": round(time.perf_counter() - started, 1),
                **summarise_runs(runs_before + runs_after)}
