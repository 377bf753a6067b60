"""``voisinage bench apply``: the harness runs the real pipeline and reports every key."""

from __future__ import annotations

import dataclasses
import json

import pytest

from node.cli import main
from node.bench.apply import (
    BenchFailed, Phases, init_store, prepare_checks, process_block, run_apply_bench, verify_txs,
)
from node.store.store import Store
from node.bench.workload import make_workload
from tokens.txs import ValidatorSetChange

KEYS = {"n", "blocks", "households", "txs_per_s", "raw_verify_per_s", "ratio", "block_apply_p99_s",
        "cpu_ratio", "phases_s", "pipelined", "sealed"}


def test_report_has_every_key_and_consistent_figures():
    report = run_apply_bench(600, households=100, block_max=200, verify_threads=2)
    assert set(report) == KEYS
    assert report["n"] == 600 and report["blocks"] == 3 and report["households"] == 100
    for figures in (report, report["pipelined"]):
        assert figures["txs_per_s"] > 0 and figures["raw_verify_per_s"] > 0
        assert figures["ratio"] == pytest.approx(figures["txs_per_s"] / figures["raw_verify_per_s"], rel=0.01)
        assert figures["block_apply_p99_s"] > 0
    assert report["pipelined"]["verify_threads"] == 2
    assert 0 < report["cpu_ratio"] < 1.5
    assert set(report["phases_s"]) == {"verify", "apply", "persist"}
    sealed = report["sealed"]
    assert sealed["ratio"] == pytest.approx(sealed["txs_per_s"] / sealed["raw_verify_open_per_s"], rel=0.01)
    pooled = sealed["pooled"]
    assert pooled["threads"] == 2 and pooled["txs_per_s"] > 0
    assert pooled["ratio"] == pytest.approx(pooled["txs_per_s"] / pooled["raw_verify_open_per_s"], rel=0.01)
    assert pooled["check_speedup"] == pytest.approx(pooled["check_pool_per_s"] / pooled["check_one_thread_per_s"],
                                                    rel=0.01)
    assert pooled["vs_sequential"] == pytest.approx(pooled["txs_per_s"] / sealed["txs_per_s"], rel=0.01)
    assert set(sealed["parallel"]) == {"workers", "one_thread_per_s", "threads_per_s", "threads_speedup",
                                       "processes_per_s", "processes_speedup"}


def test_progress_callbacks_count_every_tx():
    signed, applied = [], []
    run_apply_bench(300, households=50, block_max=128, on_signed=signed.append, on_block=applied.append)
    assert signed[-1] == 300
    assert sum(applied) == 3 * 300   # the sequential run, the pipelined run, the sealed run


def test_invalid_bad_signature_is_reported(tmp_path):
    w = make_workload(4, households=4, block_max=4)
    raw = bytearray(w.txs[1].raw)
    raw[-1] ^= 1   # the signature is the last field
    with pytest.raises(BenchFailed, match="bad signature"):
        verify_txs([w.txs[0].raw, bytes(raw)], w.genesis.chain_id)


def test_checks_cover_every_signer_and_leave_cosigned_txs_to_the_ledger():
    w = make_workload(6, households=3, block_max=6)
    vsc = ValidatorSetChange(nonce=1, add=(), add_addrs=(), remove=(), sigs=()).encode()
    prepared = prepare_checks([*w.blocks[0].txs, vsc], w.genesis.chain_id)
    assert len(prepared.checks) == 6 and len(prepared.decoded) == 6
    assert all(public == tx.signer for (public, _, _), tx in zip(prepared.checks, prepared.decoded.values()))


def test_invalid_refused_block_is_reported(tmp_path):
    w = make_workload(8, households=4, block_max=8)
    block = w.blocks[0]
    replayed = dataclasses.replace(block, txs=block.txs + block.txs[:1])   # a reading replayed
    with Store.open(tmp_path / "db") as store:
        init_store(store, w)
        ids = verify_txs(replayed.txs, w.genesis.chain_id)
        with pytest.raises(BenchFailed, match="block 1 refused"):
            process_block(store, w, replayed, ids, Phases())
        assert store.height() == 0


def test_cli_prints_json(capsys):
    assert main(["bench", "apply", "--n", "300", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == KEYS and report["n"] == 300 and report["households"] == 1000


def test_cli_prints_figures(capsys):
    assert main(["bench", "apply", "--n", "200", "--verify-workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "ratio" in out and "goal ratio >= 0.5" in out
    assert "the node's 1 check processes" in out


def test_invalid_cli_n_zero(capsys):
    assert main(["bench", "apply", "--n", "0"]) == 2
    assert "--n" in capsys.readouterr().err


def test_sealed_workload_hides_every_reading_and_reaches_the_same_balances(tmp_path):
    from node.bench.sealed import make_sealed_workload, run_sealed
    from tokens.txs import Sealed, decode_tx

    w = make_sealed_workload(40, households=10, block_max=20)
    assert all(isinstance(decode_tx(raw), Sealed) for block in w.blocks for raw in block.txs)
    assert all(b"0214" not in raw for block in w.blocks for raw in block.txs)   # no meter serial in clear
    report = run_sealed(w, tmp_path / "s", lambda txs: None)
    assert report["txs_per_s"] > 0 and report["raw_verify_open_per_s"] > 0


def test_sealed_pooled_run_checks_through_the_pool_and_reaches_the_sequential_state(tmp_path):
    from node.bench.sealed import make_sealed_workload, run_sealed, run_sealed_pooled

    w = make_sealed_workload(60, households=10, block_max=20)
    seq = run_sealed(w, tmp_path / "s", lambda txs: None)
    applied: list[int] = []
    pooled = run_sealed_pooled(w, tmp_path / "p", 2, applied.append)
    assert pooled["state_hash"] == seq["state_hash"]
    assert applied == [20, 20, 20]
    assert pooled["check_speedup"] > 0 and pooled["threads"] == 2


def test_sealed_run_on_check_processes_reaches_the_sequential_state(tmp_path):
    from node.bench.sealed import run_sealed_bench

    # run_sealed_bench raises SealedBenchFailed if a pooled run reaches another state hash.
    report = run_sealed_bench(60, 10, 20, tmp_path, threads=2, workers=2)
    procs = report["processes"]
    assert procs["workers"] == 2 and report["pooled"]["workers"] == 0
    assert procs["ratio"] == pytest.approx(procs["txs_per_s"] / procs["raw_verify_open_per_s"], rel=0.01)
    assert procs["vs_sequential"] == pytest.approx(procs["txs_per_s"] / report["txs_per_s"], rel=0.01)
    assert "processes" not in run_sealed_bench(20, 10, 20, tmp_path / "none", threads=2)


def test_invalid_sealed_envelope_is_reported(tmp_path):
    from node.bench.sealed import SealedBenchFailed, check_and_seed, make_sealed_workload
    from node.service.txcheck import TxChecker
    from tokens.sealing import Keyring

    w = make_sealed_workload(4, households=4, block_max=4)
    block = w.blocks[0]
    raw = bytearray(block.txs[1])
    raw[-1] ^= 1   # the signature is the last field
    bad = dataclasses.replace(block, txs=(block.txs[0], bytes(raw)))
    with pytest.raises(SealedBenchFailed, match="does not verify"):
        check_and_seed(TxChecker(w.genesis.chain_id, lambda key: None, lambda: 0, Keyring()), bad)
