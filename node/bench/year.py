"""``voisinage bench year``: a year of a commune through the real ledger and store.

No network: the chain is built as a validator builds it, in accelerated time. Every
settlement interval, each household's simulated Linky (``node.sim.profiles``, shared
sky, seeded) gives one cumulative reading, signed by the household's key and admitted
to a mempool by ``tokens.check_tx`` (signature included); the proposer's
``LedgerApp.propose`` selects and applies them, the validators sign a precommit each,
and ``LedgerApp.commit`` persists block, commit and state in one synced batch into a
real LevelDB store. That is the one block per interval that is due (it settles the
interval before it; the one after midnight runs the treasury epoch).

The validator's store is written with ``--pruning default`` (every block, the state
tree of the last ``keep_states`` heights, the whole history archive); the same blocks
and state results are also written to a household node's store as it keeps them (the
tree and block bodies of its last heights, headers and commits of all, its own
archived history). Both are built without fsync (the bytes are the same; a simulated
year takes minutes instead of hours).

Measured at the end, in the same run:
- each store's bytes on disk after a compaction (what pruning deleted has left);
- the entries in the state;
- replay from genesis: a fresh store fed every stored block as block sync feeds it
  (``consensus.sync.verify_next_block``, every tx signature checked, apply, one synced
  batch per block) until it reaches the same state hash;
- join by state sync: the validator's snapshot of its last height
  (``node.bench.statesync.measure_join``: chunks checked against their hashes, the tree
  rebuilt to the committed root, installed into a fresh store), its bytes and seconds,
  and replay seconds / join seconds. The network transfer is not counted.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from consensus.block import Block, Commit, CommitSig
from consensus.errors import InvalidBlock as InvalidConsensusBlock
from consensus.sync import Trusted, verify_next_block
from consensus.vote import PRECOMMIT, Vote
from node.bench.statesync import measure_join
from node.service.ledger_app import LedgerApp, compute_block_id
from node.service.mempool import Mempool
from node.sim.ledger_day import DemoCommune, build_commune, compute_seed_key
from node.store.pruning import Pruner, Pruning
from node.store.store import Store
from tokens import InvalidLedgerBlock, genesis_writes, get_state_hash, get_validator_set
from tokens.kv import MemoryKV
from tokens.state import check_tx
from tokens.statetree import is_proven_key
from tokens.txs import MeterReading
from wire import MAX_BLOCK_BYTES, Keypair, decode, sign_message

VALIDATORS = 4
READ_BEFORE_END_S = 1      # a reading is taken a second before its interval ends
BLOCK_AFTER_END_S = 2      # the interval's block follows its end by two seconds

Progress = Callable[[str, int, int], None]


class YearBenchFailed(Exception):
    """The benchmark's own chain was refused: a bug, reported loudly."""


@dataclass
class Counters:
    blocks: int = 0
    readings: int = 0
    build_s: float = 0.0     # sign + admit + propose + apply + persist, whole run


class Checkpoint:
    """Where a ``--resume`` run stands, in ``progress.json`` beside its stores: the last
    height built and replayed, the meters' cumulative energy after it, and the seconds
    spent so far. Written atomically after every block; a run killed between a store's
    commit and this file's write loses at most one block's seconds and is repaired on
    resume (``build_chain``)."""

    FILE = "progress.json"

    def __init__(self, root: Path, identity: dict) -> None:
        self.path = root / self.FILE
        self.identity = identity
        self.data: dict = {"identity": identity, "height": 0, "acc": None, "build_s": 0.0, "compacted": False,
                           "replay_height": 0, "replay_s": 0.0}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
            except (OSError, ValueError) as exc:
                raise YearBenchFailed(f"cannot resume: {self.path} is unreadable ({exc})") from None
            if not isinstance(data, dict) or data.get("identity") != identity:
                raise YearBenchFailed(f"cannot resume: {self.path} is from another run "
                                      f"({data.get('identity') if isinstance(data, dict) else data!r})")
            self.data = data

    def save(self, **fields) -> None:
        self.data.update(fields)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.path)


def _meters(c: DemoCommune) -> list:
    return [m.profile for m in c.meters]


def build_reading_batch(c: DemoCommune, profiles: list, acc: list[list[float]], interval: int, start: int,
                        step_s: int) -> list[bytes]:
    """Interval ``interval``'s readings: cumulative indexes after integrating each
    household's power at the interval's midpoint over the interval."""
    t_mid = start + interval * step_s + step_s / 2
    t_read = start + (interval + 1) * step_s - READ_BEFORE_END_S
    out = []
    for i, (key, profile) in enumerate(zip(c.keys, profiles)):
        imp_w, exp_w = profile.power_w(t_mid)
        acc[i][0] += imp_w * step_s / 3600.0
        acc[i][1] += exp_w * step_s / 3600.0
        tx = MeterReading(signer=key.public, meter=c.genesis.households[i].meter, seq=interval + 1, t=t_read,
                          import_wh=int(acc[i][0]), export_wh=int(acc[i][1]), sig=bytes(64))
        out.append(sign_message(tx, c.genesis.chain_id, key).encode())
    return out


def make_commit(c: DemoCommune, validators: list, block: Block) -> Commit:
    block_id = compute_block_id(block)
    sigs = []
    for key in validators:
        vote = sign_message(Vote(kind=PRECOMMIT, height=block.header.height, round=0, block_id=block_id,
                                 validator=key.public, sig=bytes(64)), c.genesis.chain_id, key)
        sigs.append(CommitSig(validator=key.public, sig=vote.sig))
    return Commit(height=block.header.height, round=0, block_id=block_id, sigs=tuple(sigs))


def init_store(store: Store, c: DemoCommune) -> None:
    writes = genesis_writes(c.genesis)
    store.init_genesis(c.genesis.chain_id, writes, get_state_hash(MemoryKV(writes)))


def commit_household(store: Store, pruner: Pruner, block: Block, commit: Commit, result) -> None:
    """Write a committed block as a household node does (its pruner decides what stays)."""
    store.commit_block(block.header.height, commit.block_id, block.encode(), commit.encode(), result.writes,
                       result.state_hash, archive=pruner.get_archive(result.events),
                       stale_nodes=result.stale_nodes if pruner.indexes_tree else None)
    pruner.process_commit(store, block.header.height, block.header.time_ms // 1000)


def build_chain(c: DemoCommune, validators: list[Keypair], days: int, path: Path, progress: Progress, household: Path | None = None,
                pruning: Pruning = Pruning(), checkpoint: Checkpoint | None = None) -> Counters:
    """The validator's chain: one block per settlement interval for ``days`` days; the
    same blocks written to a household node's store at ``household`` if given. With a
    ``checkpoint``, the stores at ``path`` and ``household`` are continued from where a
    stopped run left them."""
    step_s = c.genesis.params["settlement_interval_s"]
    start = c.genesis.genesis_time
    intervals = days * 86_400 // step_s
    profiles = _meters(c)
    acc = [[float(10_000 * (i + 1)), 0.0] for i in range(len(c.keys))]
    counters = Counters()
    now = {"ms": start * 1000}
    mempool = Mempool(max_txs=len(c.keys) * 4)
    spent = checkpoint.data["build_s"] if checkpoint else 0.0
    began = time.perf_counter()
    own = c.keys[0].public
    with Store.open(path, chain_id=c.genesis.chain_id, sync=False) as store, \
            Store.open(household or path.with_name(path.name + "-household"), chain_id=c.genesis.chain_id,
                       sync=False) as h_store:
        for fresh in (store, h_store):
            if not fresh.is_initialized():
                init_store(fresh, c)
        h_pruner = Pruner(pruning, own, False)
        last_commit: Commit | None = None
        first = 0
        if checkpoint:
            first, last_commit = _resume_build(c, store, h_store, h_pruner, checkpoint, acc, profiles, start, step_s)
        app = LedgerApp(c.genesis, store, mempool, validators[0], lambda: now["ms"],
                        pruner=Pruner(pruning, validators[0].public, True))
        counters.blocks = counters.readings = first
        counters.readings *= len(c.keys)
        for interval in range(first, intervals):
            now["ms"] = (start + (interval + 1) * step_s + BLOCK_AFTER_END_S) * 1000
            for data in build_reading_batch(c, profiles, acc, interval, start, step_s):
                mempool.add(data, lambda d: check_tx(store.state, c.genesis, d, now["ms"]))
            height = store.height() + 1
            block = app.propose(height, 0, last_commit, ())
            if len(block.txs) != len(c.keys):
                raise YearBenchFailed(f"block {height} kept {len(block.txs)} of {len(c.keys)} readings")
            last_commit = make_commit(c, validators, block)
            committed = app.commit(block, last_commit, ())
            commit_household(h_store, h_pruner, block, last_commit, committed.result)
            mempool.remove(committed.result.tx_ids)
            counters.blocks += 1
            counters.readings += len(block.txs)
            if checkpoint:
                checkpoint.save(height=height, acc=acc, build_s=spent + time.perf_counter() - began)
            progress("chain", interval + 1, intervals)
        if not (checkpoint and checkpoint.data["compacted"]):
            store.compact()
            h_store.compact()
    counters.build_s = spent + time.perf_counter() - began
    if checkpoint:
        checkpoint.save(build_s=counters.build_s, compacted=True)
    return counters


def _resume_build(c: DemoCommune, store: Store, h_store: Store, h_pruner: Pruner, checkpoint: Checkpoint,
                  acc: list[list[float]], profiles: list, start: int, step_s: int) -> tuple[int, Commit | None]:
    """Continue a stopped build: the next interval and the last commit. The checkpoint is
    written after both stores, so it may be one block behind (its meters are advanced by
    that interval again) and the household store may be one block behind the validator's
    (it applies that block as a household node block-syncs it)."""
    height = store.height()
    saved = checkpoint.data["height"]
    if height == 0:
        return 0, None
    if saved not in (height, height - 1) or checkpoint.data["acc"] is None and saved:
        raise YearBenchFailed(f"cannot resume: the validator store is at height {height} but "
                              f"{checkpoint.path} at {saved}")
    if saved:
        acc[:] = [list(pair) for pair in checkpoint.data["acc"]]
    if saved == height - 1:
        build_reading_batch(c, profiles, acc, height - 1, start, step_s)
        checkpoint.save(height=height, acc=acc)
    h_height = h_store.height()
    if h_height == height - 1:
        stored = store.get_stored_block(height)
        block = decode(stored.block, Block, MAX_BLOCK_BYTES)
        h_app = LedgerApp(c.genesis, h_store, Mempool(), None, lambda: 0, pruner=h_pruner)
        h_app.compute_result(block, check_time=False)
        h_app.commit(block, decode(stored.commit, Commit, MAX_BLOCK_BYTES), ())
    elif h_height != height:
        raise YearBenchFailed(f"cannot resume: the household store is at height {h_height}, "
                              f"the validator's at {height}")
    return height, decode(store.get_stored_block(height).commit, Commit, MAX_BLOCK_BYTES)


def replay_from_genesis(c: DemoCommune, source: Path, path: Path, progress: Progress,
                        checkpoint: Checkpoint | None = None) -> tuple[float, bytes]:
    """Seconds for a fresh node to block-sync every stored block from ``source``; with a
    ``checkpoint``, a stopped replay goes on from the height it reached (its seconds add up)."""
    spent = checkpoint.data["replay_s"] if checkpoint else 0.0
    began = time.perf_counter()
    with Store.open(source, chain_id=c.genesis.chain_id) as src, \
            Store.open(path, chain_id=c.genesis.chain_id) as store:
        tip = Trusted(0)
        if not store.is_initialized():
            init_store(store, c)
        elif checkpoint and store.height():
            last = store.get_stored_block(store.height())
            block = decode(last.block, Block, MAX_BLOCK_BYTES)
            tip = Trusted(block.header.height, last.block_id, block.header.time_ms)
        # A node joining by block sync runs with the default pruning, as `node run` does.
        app = LedgerApp(c.genesis, store, Mempool(), None, lambda: 0,
                        pruner=Pruner(Pruning(), compute_seed_key(0, "replay").public, True))
        total = src.height()
        for stored in src.iter_blocks(tip.height + 1):
            block = decode(stored.block, Block, MAX_BLOCK_BYTES)
            commit = decode(stored.commit, Commit, MAX_BLOCK_BYTES)
            try:
                block_id = verify_next_block(tip, c.genesis.chain_id, block, commit,
                                             lambda h: get_validator_set(store.state, h))
                app.compute_result(block, check_time=False)
            except (InvalidLedgerBlock, InvalidConsensusBlock) as exc:
                raise YearBenchFailed(f"replay refused block {block.header.height}: {exc}") from None
            app.commit(block, commit, ())
            tip = Trusted(block.header.height, block_id, block.header.time_ms)
            if checkpoint:
                checkpoint.save(replay_height=tip.height, replay_s=spent + time.perf_counter() - began)
            progress("replay", block.header.height, total)
        state_hash = store.state_hash()
    return spent + time.perf_counter() - began, state_hash


def resume_dir_name(households: int, days: int, seed: int) -> str:
    return f"year-{households}h-{days}d-seed{seed}"


def measure_dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def count_state_entries(path: Path, chain_id: bytes) -> int:
    with Store.open(path, chain_id=chain_id, create=False) as store:
        return sum(1 for key, _ in store.state.iter_prefix(b"") if is_proven_key(key))


def run_year_bench(households: int = 450, days: int = 365, seed: int = 0,
                   progress: Progress = lambda phase, done, total: None, workdir: Path | None = None,
                   keep: bool = False, resume: bool = False) -> dict:
    """``keep``: leave the stores in ``workdir`` (reported as "stores") for a later look.
    ``resume``: build in ``workdir``/``resume_dir_name(...)``, kept, and go on from where
    an earlier run with the same figures stopped (a year takes hours; a shared machine
    or a session may stop it). The seconds reported are the sums of every part's."""
    c = build_commune(households, seed, validators=VALIDATORS)
    checkpoint = None
    if resume:
        if workdir is None:
            raise YearBenchFailed("resume needs a work directory")
        root = workdir / resume_dir_name(households, days, seed)
        root.mkdir(exist_ok=True)
        checkpoint = Checkpoint(root, {"households": households, "days": days, "seed": seed})
        keep = True
    else:
        root = Path(tempfile.mkdtemp(prefix="voisinage-year-", dir=workdir))
    try:
        validator = root / "validator"
        keys = [compute_seed_key(seed, "validator", i) for i in range(VALIDATORS)]
        counters = build_chain(c, keys, days, validator, progress, root / "household", checkpoint=checkpoint)
        with Store.open(validator, chain_id=c.genesis.chain_id, create=False) as store:
            final_hash = store.state_hash()
        replay_s, replay_hash = replay_from_genesis(c, validator, root / "replay", progress, checkpoint)
        if replay_hash != final_hash:
            raise YearBenchFailed("replay from genesis reached another state hash")
        progress("join", 0, 1)
        shutil.rmtree(root / "join", ignore_errors=True)       # a resumed run joins afresh
        with Store.open(validator, chain_id=c.genesis.chain_id, create=False) as store:
            join = measure_join(store, c.genesis.chain_id, root / "join")
        progress("join", 1, 1)
        report = {
            "households": households, "days": days, "seed": seed, "validators": VALIDATORS,
            "blocks": counters.blocks, "readings": counters.readings,
            "build_s": round(counters.build_s, 1),
            "validator_disk_bytes": measure_dir_bytes(validator),
            "household_disk_bytes": measure_dir_bytes(root / "household"),
            "state_entries": count_state_entries(validator, c.genesis.chain_id),
            "replay_s": round(replay_s, 2),
            "snapshot_bytes": join["snapshot_bytes"], "snapshot_chunks": join["snapshot_chunks"],
            "snapshot_entries": join["snapshot_entries"], "join_s": join["join_s"],
            "replay_over_join": round(replay_s / max(join["join_s"], 1e-6), 1),
            "state_hash": final_hash.hex(),
            "cpus": os.cpu_count(),
        }
        if keep:
            report["stores"] = str(root)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return report


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def format_year_report(r: dict) -> str:
    lines = [f"{r['days']} simulated days of {r['households']} households, {r['validators']} validators: "
             f"{r['blocks']} blocks, {r['readings']} readings (built in {r['build_s']} s)",
             f"validator store   {_mb(r['validator_disk_bytes'])}",
             f"household store   {_mb(r['household_disk_bytes'])}",
             f"state entries     {r['state_entries']:,}",
             f"snapshot          {_mb(r['snapshot_bytes'])} in {r['snapshot_chunks']} chunks, "
             f"{r['snapshot_entries']:,} entries",
             f"join by state sync {r['join_s']} s; replay from genesis {r['replay_s']} s "
             f"({r['replay_over_join']}x)"]
    return "\n".join(lines)
