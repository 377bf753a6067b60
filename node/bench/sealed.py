"""``voisinage bench apply``, sealed part: the same workload sealed (docs/privacy.md).

A chain that seals payloads costs each tx, at a validator, an envelope signature check
plus opening its box under the household's data key (XSalsa20-Poly1305) and checking
the payload MAC (BLAKE2b); the household's data key itself is opened (X25519) once per
household and epoch, then cached. The pipeline measured here is what a validator does
with a committed block: check every envelope's signature, open every envelope, apply
the block, persist it; the reference is raw Ed25519 verify plus raw secretbox open and
MAC on the same bytes, timed per block alongside. The opened inner txs are cached by
envelope id in the keyring (tokens/sealing.py), as a validator's mempool leaves them,
so apply_block does not open them again.

The parallel figures: raw verify + open of every tx on 1 thread, on 2 threads (PyNaCl's
cffi calls release the GIL) and on 2 processes, on the same machine in the same run.
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

from node.bench.apply import submit_checks
from node.bench.stats import compute_percentile
from node.bench.workload import (
    ANCHOR, BenchBlock, Signed, compute_seed, make_blocks, make_genesis, make_reading, make_transfer,
)
from node.store.store import Store
from tokens import BlockContext, InvalidLedgerBlock, apply_block, genesis_writes, get_state_hash
from tokens.genesis import Genesis
from tokens.kv import MemoryKV
from tokens.ledger import Ledger
from tokens.rules_seal import open_envelope
from tokens.sealing import Keyring, build_sealed, build_set_data_key, compute_keyring
from tokens.txs import MeterReading, Sealed, Tx, decode_tx
from wire import Keypair, compute_id, signing_bytes, verify_signature
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


# -- the pipeline --------------------------------------------------------------------------------

def verify_and_open(store: Store, genesis: Genesis, keys: Keyring, block: BenchBlock) -> dict[bytes, Tx]:
    """What a validator's mempool does with each arriving envelope: decode, check its
    signature, open it (the inner tx is cached in the keyring). {id: envelope}."""
    lg = Ledger(store.state, genesis, block.height, block.time_ms, keys=keys)
    decoded: dict[bytes, Tx] = {}
    for raw in block.txs:
        env = decode_tx(raw)
        if not isinstance(env, Sealed) or not verify_signature(env.signer, signing_bytes(genesis.chain_id, env),
                                                                env.sig):
            raise SealedBenchFailed("an envelope of the benchmark's own workload does not verify")
        tx_id = compute_id(raw)
        open_envelope(lg, env, tx_id)
        decoded[tx_id] = env
    return decoded


def open_all(store: Store, genesis: Genesis, keys: Keyring, block: BenchBlock,
             decoded: dict[bytes, Tx]) -> None:
    """Open every envelope of ``block`` whose signature a worker thread checks meanwhile."""
    lg = Ledger(store.state, genesis, block.height, block.time_ms, keys=keys)
    for tx_id, env in decoded.items():
        open_envelope(lg, env, tx_id)


def apply_and_persist(store: Store, genesis: Genesis, keys: Keyring, block: BenchBlock,
                      verified: dict[bytes, Tx]) -> None:
    ctx = BlockContext(block.height, block.time_ms, genesis.validators[0].key)
    try:
        result = apply_block(store.state, genesis, ctx, block.txs, verified=verified, keys=keys)
    except InvalidLedgerBlock as exc:
        raise SealedBenchFailed(f"block {block.height} refused: {exc}") from None
    store.commit_block(block.height, hashlib.sha256(b"%d" % block.height).digest(), b"%d" % block.height, b"",
                       result.writes, result.state_hash)


def run_sealed(workload: SealedWorkload, path: Path, on_block: Callable[[int], None]) -> dict:
    """Per block: raw verify + open timed, then verify + open + apply + persist timed."""
    genesis = workload.genesis
    block_s, raw_s, cpu, raw_cpu, offset = [], 0.0, 0.0, 0.0, 0
    with Store.open(path, chain_id=genesis.chain_id) as store:
        writes = genesis_writes(genesis)
        store.init_genesis(genesis.chain_id, writes, get_state_hash(MemoryKV(writes)))
        keys = compute_keyring(store.state, workload.validator.seed, workload.validator.public)
        setup = BenchBlock(1, (ANCHOR + 1) * 1000, workload.setup, ())
        apply_and_persist(store, genesis, keys, setup, {})
        for block in workload.blocks:
            block = BenchBlock(block.height + 1, block.time_ms, block.txs, block.signed)
            items = workload.raw[offset:offset + len(block.txs)]
            offset += len(block.txs)
            cpu_start = time.thread_time()
            raw_s += measure_raw(items)
            raw_cpu += time.thread_time() - cpu_start
            cpu_start, start = time.thread_time(), time.perf_counter()
            verified = verify_and_open(store, genesis, keys, block)
            apply_and_persist(store, genesis, keys, block, verified)
            block_s.append(time.perf_counter() - start)
            cpu += time.thread_time() - cpu_start
            on_block(len(block.txs))
        store.verify_state_hash(keys)
    n = len(workload.raw)
    txs_per_s, raw_per_s = n / sum(block_s), n / raw_s
    return {"txs_per_s": round(txs_per_s, 1), "raw_verify_open_per_s": round(raw_per_s, 1),
            "ratio": round(txs_per_s / raw_per_s, 3), "cpu_ratio": round(raw_cpu / cpu, 3) if cpu else None,
            "block_apply_p99_s": round(compute_percentile(block_s, 0.99) or 0.0, 4)}


def run_sealed_pipelined(workload: SealedWorkload, path: Path, threads: int,
                         on_block: Callable[[int], None]) -> dict:
    """Worker threads check block h+1's envelope signatures (libsodium releases the GIL)
    while the main thread opens and applies block h; raw verify + open on as many
    threads is timed before and after."""
    genesis, blocks = workload.genesis, workload.blocks
    raw_before = measure_raw(workload.raw, threads=threads)
    with Store.open(path, chain_id=genesis.chain_id) as store, ThreadPoolExecutor(threads) as pool:
        writes = genesis_writes(genesis)
        store.init_genesis(genesis.chain_id, writes, get_state_hash(MemoryKV(writes)))
        keys = compute_keyring(store.state, workload.validator.seed, workload.validator.public)
        apply_and_persist(store, genesis, keys, BenchBlock(1, (ANCHOR + 1) * 1000, workload.setup, ()), {})
        begin = time.perf_counter()
        pending = submit_checks(pool, blocks[0], genesis.chain_id) if blocks else ({}, [])
        for index, block in enumerate(blocks):
            block = BenchBlock(block.height + 1, block.time_ms, block.txs, block.signed)
            decoded, futures = pending
            pending = submit_checks(pool, blocks[index + 1], genesis.chain_id) if index + 1 < len(blocks) \
                else ({}, [])
            open_all(store, genesis, keys, block, decoded)
            for future in futures:
                future.result()
            apply_and_persist(store, genesis, keys, block, decoded)
            on_block(len(block.txs))
        total = time.perf_counter() - begin
        store.verify_state_hash(keys)
    raw_s = (raw_before + measure_raw(workload.raw, threads=threads)) / 2
    n = len(workload.raw)
    return {"threads": threads, "txs_per_s": round(n / total, 1), "raw_verify_open_per_s": round(n / raw_s, 1),
            "ratio": round(raw_s / total, 3)}


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
                     on_block: Callable[[int], None] = lambda txs: None, threads: int = 2) -> dict:
    workload = make_sealed_workload(n, households, block_max)
    report = run_sealed(workload, path / "seq", on_block)
    report["pipelined"] = run_sealed_pipelined(workload, path / "piped", threads, lambda txs: None)
    report["parallel"] = measure_parallel(workload, threads)
    return report
