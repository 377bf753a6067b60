"""``voisinage bench statesync``: joining by state sync versus replaying from genesis, on
this machine, in the same run (docs/statesync.md).

The chain is ``bench storage``'s (node/bench/storage.py: the ledger-day simulator's
commune, one reading per household per settlement interval, an empty block every
``idle_s``), committed to a validator's store. Then, each into a fresh LevelDB store
with the node's synced commits:

- **replay**: every block applied from genesis (``tokens.apply_block``) and committed
  (``Store.commit_block``, one fsync each), as a node without state sync does. The
  commits' signatures are not checked (the bench's are fake), so the real replay is
  slower than this baseline;
- **join**: the validator's snapshot of its last height (``compute_store_snapshot``)
  checked chunk by chunk, its tree rebuilt and its root compared
  (``compute_snapshot_state``), and installed (``Store.init_snapshot``). The network
  transfer is not counted (loopback moves the snapshot bytes in well under a second).

The two stores must end with the same state root, or the bench fails.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from consensus.block import Block
from node.bench.storage import BenchFailed, Measured, run_chain
from node.sim.ledger_day import build_commune
from node.store.pruning import Pruner, Pruning
from node.store.snapshots import compute_store_snapshot
from node.store.store import Store, StoreReader
from tokens import BlockContext, MemoryKV, apply_block, genesis_writes, get_state_hash
from tokens.genesis import Genesis
from tokens.snapshot import compute_snapshot_state
from wire import MAX_BLOCK_BYTES, compute_id, decode


def measure_replay(source: StoreReader, genesis: Genesis, path: Path) -> float:
    """Seconds to apply and commit (fsync) every block of ``source`` from genesis into a
    fresh store at ``path``."""
    started = time.perf_counter()
    writes = genesis_writes(genesis)
    with Store.open(path) as store:
        store.init_genesis(genesis.chain_id, writes, get_state_hash(MemoryKV(writes)))
        for stored in source.iter_blocks():
            block = decode(stored.block, Block, MAX_BLOCK_BYTES)
            ctx = BlockContext(stored.height, block.header.time_ms, block.header.proposer)
            result = apply_block(store.state, genesis, ctx, block.txs, verified={compute_id(t) for t in block.txs})
            store.commit_block(stored.height, stored.block_id, stored.block, stored.commit, result.writes,
                               result.state_hash)
        if store.state_hash() != source.state_hash():
            raise BenchFailed("the replayed state root is not the validator's")
    return time.perf_counter() - started


def measure_join(source: StoreReader, chain_id: bytes, path: Path) -> dict[str, Any]:
    """Snapshot ``source``'s last state, then check, rebuild and install it into a fresh
    store at ``path``: the figures, and the seconds of each step."""
    started = time.perf_counter()
    snapshot = compute_store_snapshot(source)
    built = time.perf_counter()
    height = source.height()
    header = decode(source.block(height), Block, MAX_BLOCK_BYTES).header.encode()
    with Store.open(path) as store:
        writes = compute_snapshot_state(snapshot.meta, list(snapshot.chunks))
        store.init_snapshot(chain_id, height, source.block_id(height), header, source.commit(height), writes,
                            snapshot.meta.state_root)
        if store.state_hash() != source.state_hash():
            raise BenchFailed("the installed state root is not the validator's")
    done = time.perf_counter()
    return {"snapshot_height": height, "snapshot_bytes": sum(len(c) for c in snapshot.chunks),
            "snapshot_chunks": len(snapshot.chunks), "snapshot_entries": snapshot.meta.entries,
            "snapshot_build_s": round(built - started, 3), "join_s": round(done - built, 3)}


def run_statesync_bench(path: Path, households: int = 100, days: int = 1, idle_s: int = 10, seed: int = 1,
                        on_day: Callable[[str, int], None] = lambda name, day: None) -> dict[str, Any]:
    commune = build_commune(households, seed)
    own = commune.keys[0].public
    with Store.open(path / "validator", sync=False) as source:
        blocks = run_chain(commune, [Measured("validator", source, Pruner(Pruning(), own, True))], days, idle_s,
                           on_day)
        replay_s = measure_replay(source, commune.genesis, path / "replay")
        join = measure_join(source, commune.genesis.chain_id, path / "join")
    return {"households": households, "days": days, "idle_s": idle_s, "blocks": blocks, "replay_s": round(replay_s, 3),
            **join, "ratio": round(replay_s / max(join["join_s"], 1e-6), 1)}
