"""``voisinage bench storage`` on a small commune: real ledger, real LevelDB stores. The
pruned stores hold the same chain as the unpruned one, and less of it."""

from __future__ import annotations

import pytest

from node.bench.storage import BenchFailed, run_storage_bench


def test_pruned_stores_grow_less_than_the_store_that_keeps_everything(tmp_path):
    report = run_storage_bench(tmp_path, households=6, days=3, idle_s=300, keep_states=20, keep_blocks=30)
    before, validator, household = (report[name] for name in ("before", "validator", "household"))
    assert report["blocks"] == 3 * 288
    assert validator["last_day_live_growth_bytes"] < before["last_day_live_growth_bytes"]
    assert household["last_day_live_growth_bytes"] < validator["last_day_live_growth_bytes"]
    last = {name: report[name]["days"][-1] for name in ("before", "validator", "household")}
    # History left the state after two days; the validator archived it, the household its share.
    assert last["validator"]["state_entries"] < last["before"]["state_entries"]
    assert last["validator"]["archived_entries"] > last["household"]["archived_entries"] > 0
    assert last["validator"]["tree_nodes"] < last["before"]["tree_nodes"]
    # The last pass ran at height 860 (every 10): bodies from 860 - 30 + 1 kept.
    assert (last["household"]["blocks_from"], last["validator"]["blocks_from"]) == (831, 1)


def test_invalid_idle_seconds():
    with pytest.raises(BenchFailed, match="idle_s"):
        run_storage_bench(None, idle_s=7)
