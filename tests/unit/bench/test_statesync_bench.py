"""node/bench/statesync.py on a small chain: real ledger, real LevelDB stores."""

from __future__ import annotations

from pathlib import Path

from node.bench.statesync import run_statesync_bench


def test_join_and_replay_end_at_the_validators_root(tmp_path: Path):
    report = run_statesync_bench(tmp_path, households=4, days=1, idle_s=600)
    # Both stores were checked against the validator's root inside the bench.
    assert report["blocks"] == 144 and report["snapshot_height"] == 144
    assert report["snapshot_entries"] > 4 and report["snapshot_bytes"] > 0 and report["snapshot_chunks"] == 1
    assert report["replay_s"] > 0 and report["join_s"] > 0 and report["ratio"] > 0
