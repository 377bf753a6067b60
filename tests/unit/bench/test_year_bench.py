"""``voisinage bench year``: a short run through the real ledger, store and block-sync replay."""

from __future__ import annotations

import json

import pytest

from node.bench.year import build_chain, replay_from_genesis, run_year_bench
from node.cli import main
from node.sim.ledger_day import build_commune, compute_seed_key
from node.store.store import StoreError


def test_one_day_builds_one_block_per_interval_and_replays_to_the_same_state():
    report = run_year_bench(households=6, days=1)
    assert report["blocks"] == 48
    assert report["readings"] == 48 * 6
    assert report["validator_disk_bytes"] > 0 and report["household_disk_bytes"] > 0
    assert report["state_entries"] > 6
    assert report["replay_s"] > 0
    assert report["snapshot_bytes"] > 0 and report["snapshot_entries"] >= report["state_entries"]
    assert report["join_s"] > 0 and report["replay_over_join"] > 0


def test_replay_refuses_another_communes_store(tmp_path):
    c = build_commune(3, 0, validators=4)
    build_chain(c, [compute_seed_key(0, "validator", i) for i in range(4)], 1, tmp_path / "v", lambda *a: None)
    other = build_commune(3, 1, validators=4)   # another seed: other keys, another chain id
    with pytest.raises(StoreError, match="belongs to chain"):
        replay_from_genesis(other, tmp_path / "v", tmp_path / "r", lambda *a: None)


def test_cli_prints_json_with_the_figures(capsys):
    assert main(["bench", "year", "--households", "3", "--days", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["households"] == 3 and report["days"] == 1 and report["blocks"] == 48


def test_cli_refuses_a_missing_workdir(tmp_path, capsys):
    assert main(["bench", "year", "--days", "1", "--workdir", str(tmp_path / "nope")]) != 0
    err = capsys.readouterr().err
    assert "is not a directory" in err and "Traceback" not in err


def test_keep_leaves_the_stores_and_says_where(tmp_path):
    report = run_year_bench(households=2, days=1, workdir=tmp_path, keep=True)
    stores = tmp_path / report["stores"]
    assert {p.name for p in stores.iterdir()} == {"validator", "household", "replay", "join"}
    assert run_year_bench(households=2, days=1, workdir=tmp_path)["blocks"] == 48
    assert [p for p in tmp_path.iterdir()] == [stores]      # without --keep, nothing is left
