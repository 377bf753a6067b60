"""``voisinage bench apply``: signature checks + apply_block + persist, against raw Ed25519.

The measured path is what a node does with a committed block: check every tx's
signature, apply the block to the state held in LevelDB, and commit the result as
one synced batch (DESIGN §8). The reference is the raw PyNaCl verify rate on the
same signed bytes; ``ratio`` says how much of that rate the whole pipeline keeps.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import msgpack
import nacl.bindings

from node.store.store import Store
from node.bench.stats import compute_percentile
from node.bench.workload import BenchBlock, Signed, Workload, make_workload
from tokens import BlockContext, InvalidLedgerBlock, apply_block, genesis_writes, get_state_hash
from tokens.kv import MemoryKV
from tokens.txs import Tx, decode_tx
from wire import compute_id, signing_bytes, verify_signature


class BenchFailed(Exception):
    """The benchmark's own workload was refused: a bug, reported loudly."""


@dataclass
class Phases:
    verify: float = 0.0
    apply: float = 0.0
    persist: float = 0.0


@dataclass(frozen=True)
class ChainRun:
    block_s: list[float]    # per block: seconds from the previous commit to this one
    total_s: float
    raw_s: float            # raw verification of the same txs, measured alongside
    phases: Phases
    state_hash: bytes
    cpu_ratio: float | None = None  # raw verify CPU time / pipeline CPU time, one thread


def measure_raw_verify(txs: Sequence[Signed], threads: int = 1) -> float:
    """Seconds PyNaCl takes to check every signature on the exact signing bytes,
    split over ``threads`` threads (libsodium runs without the GIL)."""
    items = [(s.sig + s.data, s.public) for s in txs]
    if threads <= 1:
        start = time.perf_counter()
        _open_all(items)
        return time.perf_counter() - start
    chunks = [items[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        list(pool.map(_open_all, chunks))
        return time.perf_counter() - start


def _open_all(items: Sequence[tuple[bytes, bytes]]) -> None:
    open_ = nacl.bindings.crypto_sign_open
    for signed, public in items:
        open_(signed, public)


@dataclass(frozen=True)
class Prepared:
    """A block's decoded txs and the Ed25519 checks they need."""

    decoded: dict[bytes, Tx]                    # id -> tx, for ``verified=`` once checked
    checks: list[tuple[bytes, bytes, bytes]]    # (public key, signing bytes, signature)


def prepare_checks(txs: Sequence[bytes], chain_id: bytes) -> Prepared:
    """Decode each tx and list its signature checks: the part that needs the GIL."""
    decoded: dict[bytes, Tx] = {}
    checks: list[tuple[bytes, bytes, bytes]] = []
    for raw in txs:
        tx = decode_tx(raw)
        if not tx.SIGNERS:
            continue    # co-signed by validators: apply_block checks it against their set
        data = signing_bytes(chain_id, tx)
        checks.extend((getattr(tx, key), data, getattr(tx, sig)) for key, sig in tx.SIGNERS)
        decoded[compute_id(raw)] = tx
    return Prepared(decoded, checks)


def run_checks(checks: Sequence[tuple[bytes, bytes, bytes]]) -> None:
    """The Ed25519 checks themselves; libsodium runs them without the GIL."""
    for public, data, sig in checks:
        if not verify_signature(public, data, sig):
            raise BenchFailed("bad signature in the benchmark's own workload")


def verify_txs(txs: Sequence[bytes], chain_id: bytes) -> dict[bytes, Tx]:
    """Decode and check every tx's signatures; return {id: decoded tx} for ``verified=``,
    so that apply_block neither decodes nor checks them again."""
    prepared = prepare_checks(txs, chain_id)
    run_checks(prepared.checks)
    return prepared.decoded


def encode_bench_block(block: BenchBlock) -> bytes:
    return msgpack.packb([block.height, block.time_ms, list(block.txs)], use_bin_type=True)


def process_block(store: Store, workload: Workload, block: BenchBlock, ids: Mapping[bytes, Tx],
                  phases: Phases) -> None:
    """Apply one block whose signatures are checked, and persist it in one synced batch."""
    genesis = workload.genesis
    start = time.perf_counter()
    ctx = BlockContext(block.height, block.time_ms, genesis.validators[0].key)
    try:
        result = apply_block(store.state, genesis, ctx, block.txs, verified=ids)
    except InvalidLedgerBlock as exc:
        raise BenchFailed(f"block {block.height} refused: {exc}") from None
    applied = time.perf_counter()
    block_bytes = encode_bench_block(block)
    store.commit_block(block.height, hashlib.sha256(block_bytes).digest(), block_bytes, b"",
                       result.writes, result.state_hash)
    phases.apply += applied - start
    phases.persist += time.perf_counter() - applied


def init_store(store: Store, workload: Workload) -> None:
    writes = genesis_writes(workload.genesis)
    store.init_genesis(workload.genesis.chain_id, writes, get_state_hash(MemoryKV(writes)))


def run_sequential(workload: Workload, path: Path, on_block: Callable[[int], None]) -> ChainRun:
    """One thread: per block, check every signature, then apply, then persist.

    Right before each block, the raw verify of that block's txs is timed too, so both
    figures see the same machine load (a shared CI machine is noisy). The same two
    are also timed in CPU time of this thread, which other processes barely move
    (it leaves out the wait for fsync)."""
    phases, block_s, raw_s, raw_cpu, cpu = Phases(), [], 0.0, 0.0, 0.0
    chain_id = workload.genesis.chain_id
    with Store.open(path, chain_id=chain_id) as store:
        init_store(store, workload)
        for block in workload.blocks:
            cpu_start = time.thread_time()
            raw_s += measure_raw_verify(block.signed)
            raw_cpu += time.thread_time() - cpu_start
            cpu_start, start = time.thread_time(), time.perf_counter()
            ids = verify_txs(block.txs, chain_id)
            phases.verify += time.perf_counter() - start
            process_block(store, workload, block, ids, phases)
            block_s.append(time.perf_counter() - start)
            cpu += time.thread_time() - cpu_start
            on_block(len(block.txs))
        state_hash = store.verify_state_hash()
    return ChainRun(block_s, sum(block_s), raw_s, phases, state_hash, raw_cpu / cpu if cpu else None)


PREPARE_CHUNK = 500     # txs decoded before their checks are handed to a thread


def submit_checks(pool: ThreadPoolExecutor, block: BenchBlock, chain_id: bytes) -> tuple[dict, list[Future]]:
    """Decode ``block`` here, chunk by chunk, handing each chunk's checks to the pool at once."""
    decoded: dict[bytes, Tx] = {}
    futures = []
    for start in range(0, len(block.txs), PREPARE_CHUNK):
        prepared = prepare_checks(block.txs[start:start + PREPARE_CHUNK], chain_id)
        futures.append(pool.submit(run_checks, prepared.checks))
        decoded.update(prepared.decoded)
    return decoded, futures


def run_pipelined(workload: Workload, path: Path, threads: int, on_block: Callable[[int], None]) -> ChainRun:
    """The main thread decodes block h+1 and hands its Ed25519 checks to ``threads``
    worker threads, then applies and persists block h while they run: libsodium
    releases the GIL, so the checks use another core. The raw verify (with as many
    threads) is timed just before and just after the run."""
    phases, block_s = Phases(), []
    chain_id = workload.genesis.chain_id
    blocks = workload.blocks
    raw_before = measure_raw_verify(workload.txs, threads)
    with Store.open(path, chain_id=chain_id) as store, ThreadPoolExecutor(threads) as pool:
        init_store(store, workload)
        begin = last = time.perf_counter()
        pending = submit_checks(pool, blocks[0], chain_id) if blocks else ({}, [])
        for index, block in enumerate(blocks):
            started = time.perf_counter()
            decoded, futures = pending
            for future in futures:
                future.result()
            pending = submit_checks(pool, blocks[index + 1], chain_id) if index + 1 < len(blocks) else ({}, [])
            phases.verify += time.perf_counter() - started   # waiting for h, decoding h+1
            process_block(store, workload, block, decoded, phases)
            now = time.perf_counter()
            block_s.append(now - last)
            last = now
            on_block(len(block.txs))
        total = last - begin
        state_hash = store.verify_state_hash()
    raw_s = (raw_before + measure_raw_verify(workload.txs, threads)) / 2
    return ChainRun(block_s, total, raw_s, phases, state_hash)


def summarise(n: int, run: ChainRun) -> dict[str, float]:
    txs_per_s, raw_per_s = n / run.total_s, n / run.raw_s
    figures = {"txs_per_s": round(txs_per_s, 1), "raw_verify_per_s": round(raw_per_s, 1),
               "ratio": round(txs_per_s / raw_per_s, 3), "block_apply_p99_s": round(compute_percentile(run.block_s, 0.99) or 0.0, 4)}
    if run.cpu_ratio is not None:
        figures["cpu_ratio"] = round(run.cpu_ratio, 3)
    return figures


def run_apply_bench(n: int, households: int = 1000, block_max: int = 5000, verify_threads: int = 1,
                    verify_workers: int = 0, on_signed: Callable[[int], None] = lambda done: None,
                    on_block: Callable[[int], None] = lambda txs: None, sealed: bool = True) -> dict:
    """The whole benchmark: sequential run, then pipelined run, each against raw verify;
    then the same txs sealed (node/bench/sealed.py) against raw verify + open, the checks
    on this thread, on worker threads, and (``verify_workers``) in check processes."""
    from node.bench.sealed import run_sealed_bench   # it builds on this module's checks

    workload = make_workload(n, households, block_max, on_signed)
    with tempfile.TemporaryDirectory(prefix="voisinage-bench-") as tmp:
        seq = run_sequential(workload, Path(tmp) / "seq", on_block)
        piped = run_pipelined(workload, Path(tmp) / "piped", verify_threads, on_block)
        sealed_report = (run_sealed_bench(n, households, block_max, Path(tmp) / "sealed", on_block,
                                          max(2, verify_threads), verify_workers) if sealed else None)
    if piped.state_hash != seq.state_hash:
        raise BenchFailed("the pipelined run reached another state hash than the sequential one")
    report: dict = {"n": n, "blocks": len(workload.blocks), "households": households}
    report.update(summarise(n, seq))
    report["phases_s"] = {k: round(v, 4) for k, v in asdict(seq.phases).items()}
    report["pipelined"] = {"verify_threads": verify_threads, **summarise(n, piped)}
    if sealed_report is not None:
        report["sealed"] = sealed_report
    return report
