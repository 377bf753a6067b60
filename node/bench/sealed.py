"""``voisinage bench apply``, sealed part: the same workload sealed (docs/privacy.md).

A chain that seals payloads costs each tx, at a validator, an envelope signature check
plus opening its box under the household's data key (XSalsa20-Poly1305) and checking
the payload MAC (BLAKE2b); the household's data key itself is opened (X25519) once per
household and epoch, then cached. The pipeline measured here is what a validator does
with the txs of a block: check every envelope's signature and open it with the node's
own code (node/service/txcheck.py: what the mempool runs on arriving txs), keep the
opened inner txs in the keyring, apply the block, persist it; the reference is raw
Ed25519 verify plus raw secretbox open and MAC on the same bytes, timed per block
alongside.

The pooled run is the same with the checks on the node's pool of worker threads
(PyNaCl's cffi calls release the GIL), as the node runs them; with the pool's own
speed-up on the checks alone. With ``workers``, the same again with the checks in the
node's check processes (node/service/txprocs.py: no GIL shared at all). The parallel figures: raw verify + open of every tx on 1
thread, on 2 threads and on 2 processes, on the same machine in the same run.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import nacl.bindings
import trio
import trio.testing

from node.bench.stats import compute_percentile
from node.bench.workload import (
    ANCHOR, BenchBlock, Signed, compute_seed, make_blocks, make_genesis, make_reading, make_transfer,
)
from node.service.txcheck import Checked, TxChecker
from node.store.store import Store
from tokens import BlockContext, InvalidLedgerBlock, apply_block, genesis_writes, get_state_hash
from tokens.genesis import Genesis
from tokens.kv import MemoryKV
from tokens.sealing import Keyring, build_sealed, build_set_data_key, compute_genesis_keyring, compute_keyring
from tokens.txs import MeterReading, Sealed, Tx
from wire import Keypair, compute_id, signing_bytes
from wire.seal import compute_commune_public, compute_payload_mac, derive_household_keys, seal_commune_secret


class SealedBenchFailed(Exception):
    """The benchmark's own sealed workload was refused: a bug, reported loudly."""


@dataclass(frozen=True)
class SealedWorkload:
    genesis: Genesis
    validator: Keypair
    setup: tuple[bytes, ...]                    # every household's SetDataKey: one block, not timed
    blocks: tuple[BenchBlock, ...]
    raw: tuple[tuple[bytes, bytes, bytes, bytes], ...]   # per tx: (sig + signing bytes, public, box, data key)


def make_sealed_workload(n: int, households: int, block_max: int,
                         progress: Callable[[int], None] = lambda done: None) -> SealedWorkload:
    """The apply bench's readings and transfers, each sealed under its household's data key."""
    keys = [Keypair(compute_seed("household", i)) for i in range(households)]
    validator = Keypair(compute_seed("validator", 0))
    secret = compute_seed("commune", 0)
    sealing = {"public": compute_commune_public(secret).hex(),
               "sealed": {validator.public.hex(): seal_commune_secret(validator.public, secret,
                                                                       compute_seed("eph", 0)).hex()}}
    genesis = make_genesis(keys, sealing)
    chain_id = genesis.chain_id
    setup = tuple(build_set_data_key(k, chain_id, 1, 0, compute_commune_public(secret),
                                     compute_seed("eph-hh", i)).encode() for i, k in enumerate(keys))
    signed, raw, rnd = [], [], 0
    while len(signed) < n:
        for index, key in enumerate(keys):
            # The transfer's nonce comes after the SetDataKey's (1).
            for inner in (make_reading(index, key, rnd), replace(make_transfer(index, keys, rnd), nonce=rnd + 2)):
                if len(signed) >= n:
                    break
                env = build_sealed(inner, key, chain_id, 0, compute_seed("box", len(signed))[:24])
                data = signing_bytes(chain_id, env)
                t = inner.t if isinstance(inner, MeterReading) else 0
                signed.append(Signed(env.encode(), key.public, data, env.sig, t))
                raw.append((env.sig + data, key.public, env.box, derive_household_keys(key.seed, 0)[0]))
        rnd += 1
        progress(len(signed))
    return SealedWorkload(genesis, validator, setup, tuple(make_blocks(signed, block_max)), tuple(raw))


# -- raw crypto: the reference --------------------------------------------------------------------

def run_raw(items: Sequence[tuple[bytes, bytes, bytes, bytes]]) -> int:
    """Ed25519 verify, secretbox open and payload MAC of each item; how many."""
    sign_open, box_open = nacl.bindings.crypto_sign_open, nacl.bindings.crypto_secretbox_open
    for signed, public, box, data_key in items:
        sign_open(signed, public)
        compute_payload_mac(data_key, box_open(box[24:], box[:24], data_key))
    return len(items)


def measure_raw(items: Sequence, threads: int = 1, processes: int = 0) -> float:
    """Seconds for ``run_raw`` over ``items``, on one thread, ``threads`` threads or
    ``processes`` processes (the pool started before the clock)."""
    if processes:
        chunks = [list(items[i::processes]) for i in range(processes)]
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(run_raw, [chunks[0][:1]] * processes))     # warm the workers up
            start = time.perf_counter()
            list(pool.map(run_raw, chunks))
            return time.perf_counter() - start
    if threads <= 1:
        start = time.perf_counter()
        run_raw(items)
        return time.perf_counter() - start
    chunks = [items[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        list(pool.map(run_raw, chunks))
        return time.perf_counter() - start


# -- the pipeline ----------------------------------------------------------------------------------

def check_and_seed(checker: TxChecker, block: BenchBlock, checked: Sequence[Checked] | None = None) -> dict[bytes, Tx]:
    """What a validator does with each arriving envelope (node/service/txcheck.py, the
    code the node runs): decode, check its signature, open it; then, on the node's own
    thread, keep the opened inner tx in the keyring. ``checked``: the checks, if worker
    threads ran them already; else they run here. {id: envelope}, for ``verified=``."""
    if checked is None:
        checked = checker.check_here(block.txs)
    verified: dict[bytes, Tx] = {}
    for raw, result in zip(block.txs, checked):
        if not result.signed or not isinstance(result.tx, Sealed) or result.opened is None:
            raise SealedBenchFailed("an envelope of the benchmark's own workload does not verify or open")
        tx_id = compute_id(raw)
        checker.seed(result, tx_id)
        verified[tx_id] = result.tx
    return verified


def apply_and_persist(store: Store, genesis: Genesis, keys: Keyring, block: BenchBlock,
                      verified: dict[bytes, Tx]) -> None:
    ctx = BlockContext(block.height, block.time_ms, genesis.validators[0].key)
    try:
        result = apply_block(store.state, genesis, ctx, block.txs, verified=verified, keys=keys)
    except InvalidLedgerBlock as exc:
        raise SealedBenchFailed(f"block {block.height} refused: {exc}") from None
    store.commit_block(block.height, hashlib.sha256(b"%d" % block.height).digest(), b"%d" % block.height, b"",
                       result.writes, result.state_hash)


def open_chain(workload: SealedWorkload, store: Store) -> Keyring:
    """Genesis, then the households' data keys in block 1 (not timed); the validator's keyring."""
    genesis = workload.genesis
    keys = compute_genesis_keyring(genesis, workload.validator.seed, workload.validator.public)
    writes = genesis_writes(genesis, keys)      # its households' index keys need the commune key
    store.init_genesis(genesis.chain_id, writes, get_state_hash(MemoryKV(writes)))
    keys = compute_keyring(store.state, workload.validator.seed, workload.validator.public, keys)
    apply_and_persist(store, genesis, keys, BenchBlock(1, (ANCHOR + 1) * 1000, workload.setup, ()), {})
    return keys


def after_setup(block: BenchBlock) -> BenchBlock:
    return BenchBlock(block.height + 1, block.time_ms, block.txs, block.signed)


def run_sealed(workload: SealedWorkload, path: Path, on_block: Callable[[int], None]) -> dict:
    """Per block: raw verify + open timed, then verify + open + apply + persist timed,
    all on this thread."""
    genesis = workload.genesis
    block_s, raw_s, cpu, raw_cpu, offset = [], 0.0, 0.0, 0.0, 0
    with Store.open(path, chain_id=genesis.chain_id) as store:
        keys = open_chain(workload, store)
        checker = TxChecker(genesis.chain_id, store.state.get, store.height, keys, threads=1)
        for block in workload.blocks:
            block = after_setup(block)
            items = workload.raw[offset:offset + len(block.txs)]
            offset += len(block.txs)
            cpu_start = time.thread_time()
            raw_s += measure_raw(items)
            raw_cpu += time.thread_time() - cpu_start
            cpu_start, start = time.thread_time(), time.perf_counter()
            verified = check_and_seed(checker, block)
            apply_and_persist(store, genesis, keys, block, verified)
            block_s.append(time.perf_counter() - start)
            cpu += time.thread_time() - cpu_start
            on_block(len(block.txs))
        state_hash = store.verify_state_hash(keys)
    n = len(workload.raw)
    txs_per_s, raw_per_s = n / sum(block_s), n / raw_s
    return {"txs_per_s": round(txs_per_s, 1), "raw_verify_open_per_s": round(raw_per_s, 1),
            "ratio": round(txs_per_s / raw_per_s, 3), "cpu_ratio": round(raw_cpu / cpu, 3) if cpu else None,
            "block_apply_p99_s": round(compute_percentile(block_s, 0.99) or 0.0, 4), "state_hash": state_hash.hex()}


async def time_checks(checker: TxChecker, txs: Sequence[bytes]) -> float:
    start = time.perf_counter()
    await checker.check(txs)
    return time.perf_counter() - start


async def run_pooled_chain(store: Store, genesis: Genesis, keys: Keyring, checker: TxChecker,
                           blocks: Sequence[BenchBlock], on_block: Callable[[int], None]) -> float:
    """As the node: block h+1's txs are checked on the worker threads (they arrive while
    block h is applied), and this thread seeds, applies and persists block h. Seconds."""
    results: list[list[Checked]] = [[] for _ in blocks]
    done = [trio.Event() for _ in blocks]

    async def check(index: int) -> None:
        results[index] = await checker.check(blocks[index].txs)
        done[index].set()
    begin = time.perf_counter()
    async with trio.open_nursery() as nursery:
        if blocks:
            nursery.start_soon(check, 0)
        for index, block in enumerate(blocks):
            await done[index].wait()
            if index + 1 < len(blocks):
                nursery.start_soon(check, index + 1)
                await trio.testing.wait_all_tasks_blocked()     # its worker threads are under way
            verified = check_and_seed(checker, block, results[index])
            apply_and_persist(store, genesis, keys, block, verified)
            results[index] = []
            on_block(len(block.txs))
    return time.perf_counter() - begin


def run_sealed_pooled(workload: SealedWorkload, path: Path, threads: int,
                      on_block: Callable[[int], None], workers: int = 0) -> dict:
    """The node's pool (node/service/txcheck.py) on ``threads`` worker threads, or with
    ``workers`` on that many check processes (node/service/txprocs.py): first its
    speed-up on the checks alone (every tx checked on 1 thread, then through the pool,
    twice each, alternated), then the chain with the checks of block h+1 in the pool
    while block h is applied; raw verify + open on one thread is the reference."""
    genesis = workload.genesis
    blocks = [after_setup(block) for block in workload.blocks]
    txs = [raw for block in blocks for raw in block.txs]
    with Store.open(path, chain_id=genesis.chain_id) as store:
        keys = open_chain(workload, store)
        one = TxChecker(genesis.chain_id, store.state.get, store.height, keys, threads=1)
        with TxChecker(genesis.chain_id, store.state.get, store.height, keys, threads=threads,
                       workers=workers, scan=store.state.iter_prefix) as pool:
            if workers and blocks:
                # Out of the clock: the processes start, and open every household's data
                # key once (the node's own keyring opened them when block 1 was applied).
                trio.run(time_checks, pool, blocks[0].txs)
            one_s = pool_s = 0.0
            for _ in range(2):
                one_s += trio.run(time_checks, one, txs)
                pool_s += trio.run(time_checks, pool, txs)
            raw_s = measure_raw(workload.raw)
            total = trio.run(run_pooled_chain, store, genesis, keys, pool, blocks, on_block)
            raw_s = (raw_s + measure_raw(workload.raw)) / 2
        state_hash = store.verify_state_hash(keys)
    n = len(txs)
    return {"state_hash": state_hash.hex(), "threads": threads, "workers": workers, "txs_per_s": round(n / total, 1),
            "raw_verify_open_per_s": round(n / raw_s, 1), "ratio": round(raw_s / total, 3),
            "check_one_thread_per_s": round(2 * n / one_s, 1), "check_pool_per_s": round(2 * n / pool_s, 1),
            "check_speedup": round(one_s / pool_s, 3)}


def measure_parallel(workload: SealedWorkload, workers: int = 2) -> dict:
    """Raw verify + open of every tx on 1 thread, ``workers`` threads, ``workers`` processes."""
    items = workload.raw
    one = measure_raw(items)
    threads = measure_raw(items, threads=workers)
    processes = measure_raw(items, processes=workers)
    n = len(items)
    return {"workers": workers, "one_thread_per_s": round(n / one, 1),
            "threads_per_s": round(n / threads, 1), "threads_speedup": round(one / threads, 3),
            "processes_per_s": round(n / processes, 1), "processes_speedup": round(one / processes, 3)}


def run_sealed_bench(n: int, households: int, block_max: int, path: Path,
                     on_block: Callable[[int], None] = lambda txs: None, threads: int = 2,
                     workers: int = 0) -> dict:
    """Sequential, pooled on threads, and with ``workers`` on check processes too."""
    workload = make_sealed_workload(n, households, block_max)
    report = run_sealed(workload, path / "seq", on_block)
    report["pooled"] = run_sealed_pooled(workload, path / "pooled", threads, lambda txs: None)
    runs = [report["pooled"]]
    if workers:
        report["processes"] = run_sealed_pooled(workload, path / "processes", threads, lambda txs: None, workers)
        runs.append(report["processes"])
    for run in runs:
        if run.pop("state_hash") != report["state_hash"]:
            raise SealedBenchFailed("a pooled run reached another state hash than the sequential one")
        run["vs_sequential"] = round(run["txs_per_s"] / report["txs_per_s"], 3)
    report["parallel"] = measure_parallel(workload, threads)
    return report
