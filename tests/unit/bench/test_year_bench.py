"""``voisinage bench year``: a short run through the real ledger, store and block-sync replay."""

from __future__ import annotations

import json

import pytest

from node.bench import year
from node.bench.year import YearBenchFailed, build_chain, replay_from_genesis, resume_dir_name, run_year_bench
from node.cli import main
from node.sim.ledger_day import build_commune, compute_seed_key
from node.store.store import Store, StoreError


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


class Stop(Exception):
    """A run stopped from outside (a session's end, a reboot)."""


def stop_at(phase: str, done: int):
    def progress(p, d, total):
        if p == phase and d == done:
            raise Stop
    return progress


def test_a_resumed_run_ends_where_an_unbroken_one_does(tmp_path):
    whole = run_year_bench(households=3, days=1)
    for phase, done in (("chain", 17), ("replay", 30)):
        with pytest.raises(Stop):
            run_year_bench(households=3, days=1, workdir=tmp_path, progress=stop_at(phase, done), resume=True)
    resumed = run_year_bench(households=3, days=1, workdir=tmp_path, resume=True)
    assert resumed["state_hash"] == whole["state_hash"]
    assert (resumed["blocks"], resumed["readings"]) == (48, 144)
    assert resumed["build_s"] > 0 and resumed["replay_s"] > 0
    progress = json.loads((tmp_path / resume_dir_name(3, 1, 0) / "progress.json").read_text())
    assert progress["height"] == 48 and progress["replay_height"] == 48 and progress["compacted"]


def test_resume_repairs_a_stop_between_the_two_stores_and_the_checkpoint(tmp_path, monkeypatch):
    whole = run_year_bench(households=3, days=1)
    root = tmp_path / resume_dir_name(3, 1, 0)
    real = year.commit_household

    def stop_before_the_household(store, pruner, block, commit, result):
        if block.header.height == 12:
            raise Stop                                     # the validator has block 12, the household not
        real(store, pruner, block, commit, result)
    monkeypatch.setattr(year, "commit_household", stop_before_the_household)
    with pytest.raises(Stop):
        run_year_bench(households=3, days=1, workdir=tmp_path, resume=True)
    monkeypatch.setattr(year, "commit_household", real)
    assert json.loads((root / "progress.json").read_text())["height"] == 11   # one behind the validator
    chain_id = build_commune(3, 0, validators=4).genesis.chain_id
    with Store.open(root / "household", chain_id=chain_id, create=False) as household:
        assert household.height() == 11
    resumed = run_year_bench(households=3, days=1, workdir=tmp_path, resume=True)
    assert resumed["state_hash"] == whole["state_hash"]
    with Store.open(root / "household", chain_id=chain_id, create=False) as household:
        assert (household.height(), household.state_hash().hex()) == (48, whole["state_hash"])


def test_resume_refuses_a_checkpoint_that_does_not_match_the_stores(tmp_path):
    root = tmp_path / resume_dir_name(3, 1, 0)
    with pytest.raises(Stop):
        run_year_bench(households=3, days=1, workdir=tmp_path, progress=stop_at("chain", 20), resume=True)
    progress = json.loads((root / "progress.json").read_text())
    (root / "progress.json").write_text(json.dumps({**progress, "height": 5}))
    with pytest.raises(YearBenchFailed, match="validator store is at height 20 but .* at 5"):
        run_year_bench(households=3, days=1, workdir=tmp_path, resume=True)


def test_resume_refuses_another_runs_directory(tmp_path, capsys):
    root = tmp_path / resume_dir_name(3, 1, 0)
    root.mkdir()
    (root / "progress.json").write_text(json.dumps({"identity": {"households": 4}}))
    with pytest.raises(YearBenchFailed, match="another run"):
        run_year_bench(households=3, days=1, workdir=tmp_path, resume=True)
    assert main(["bench", "year", "--days", "1", "--resume"]) != 0
    err = capsys.readouterr().err
    assert "--resume needs --workdir" in err and "Traceback" not in err
