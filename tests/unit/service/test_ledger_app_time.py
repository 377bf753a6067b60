"""LedgerApp.is_timely (node/service/ledger_app.py): DESIGN §6's lower bound on a fresh
proposal's time, against this validator's clock, in wall time."""

from __future__ import annotations

import dataclasses

import pytest

from consensus.block import MAX_BLOCK_LAG_MS
from node.home.homedir import load_home
from node.service.ledger_app import LedgerApp
from node.service.mempool import Mempool
from tests.unit.service.test_trust_quorum import BLOCK_TIME_MS, block_of, commune, store  # noqa: F401


def app_at(store, commune, now_ms: int, time_scale: int = 1) -> LedgerApp:
    genesis = load_home(commune / "validator-0").genesis
    genesis = dataclasses.replace(genesis, params={**genesis.params, "time_scale": time_scale})
    return LedgerApp(genesis, store, Mempool(), None, lambda: now_ms)


@pytest.mark.parametrize("lag_ms, timely", [(0, True), (MAX_BLOCK_LAG_MS, True), (MAX_BLOCK_LAG_MS + 1, False)])
def test_a_fresh_proposal_is_timely_within_the_lag(store, commune, lag_ms, timely):
    block = block_of(store, commune, [])
    assert app_at(store, commune, BLOCK_TIME_MS + lag_ms).is_timely(block) is timely


def test_the_lag_is_wall_time_on_a_faster_development_clock(store, commune):
    block = block_of(store, commune, [])
    assert app_at(store, commune, BLOCK_TIME_MS + 60 * MAX_BLOCK_LAG_MS, time_scale=60).is_timely(block)
    assert not app_at(store, commune, BLOCK_TIME_MS + 60 * MAX_BLOCK_LAG_MS + 1, time_scale=60).is_timely(block)


def test_a_late_block_is_still_valid_for_deciding_and_syncing(store, commune):
    # validate() keeps only the parent and 5 s-ahead bounds: a decided block stays acceptable.
    block = block_of(store, commune, [])
    assert app_at(store, commune, BLOCK_TIME_MS + 3_600_000).validate(block)
