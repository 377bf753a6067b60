"""DESIGN §4 "History": a settled interval's records leave the state once its end is
``history_retention_s`` behind the block time; the block's HistoryLeft event carries
them as they last were, and the state root still agrees with a full rescan."""

from __future__ import annotations

import pytest

from tests.unit.tokens.commune import Chain, make_genesis
from tokens import get_household_intervals
from tokens import layout as L
from tokens.genesis import GenesisError
from tokens.kv import MemoryKV, decode_value
from tokens.settlement import HistoryLeft

RETENTION_S = 3600


def history_events(chain: Chain) -> list[HistoryLeft]:
    return [e for r in chain.results for e in r.events if isinstance(e, HistoryLeft)]


def interval_keys(kv) -> list[bytes]:
    return [k for k, _ in kv.iter_prefix(L.INTERVAL)] + [k for k, _ in kv.iter_prefix(L.INTERVAL_ENTRY)]


def producing_chain() -> tuple[Chain, list, int]:
    """Readings in interval 0 (household 0 exports, 2 imports) and interval 1 (idem)."""
    genesis, keys = make_genesis(3, {"history_retention_s": RETENTION_S})
    chain = Chain(genesis)
    t0 = chain.time_s
    chain.block([chain.reading(keys[0], 0, 1, t0 + 1, 0, 0), chain.reading(keys[2], 2, 1, t0 + 1, 0, 0)], dt_s=2)
    for n in (1, 2):        # at 901 s (interval 0) and 1801 s (interval 1)
        t = t0 + 1 + n * 900
        chain.block([chain.reading(keys[0], 0, n + 1, t, 0, 100 * n), chain.reading(keys[2], 2, n + 1, t, 50 * n, 0)],
                    at=t + 1)
    return chain, keys, t0


def test_settled_interval_leaves_the_state_after_the_retention_window():
    chain, keys, t0 = producing_chain()
    chain.block(at=t0 + 1800 + 300)                  # interval 0 settles (end + grace)
    settled = {k: v for k, v in chain.kv.iter_prefix(L.INTERVAL + L.u64(t0))}
    entries = dict(chain.kv.iter_prefix(L.INTERVAL_ENTRY + L.u64(t0)))
    assert decode_value(settled[L.key_interval(t0)])[L.IV_SETTLED] and len(entries) == 2
    chain.block(at=t0 + 1800 + RETENTION_S - 1)      # one second short: still in the state
    assert L.key_interval(t0) in dict(chain.kv.iter_prefix(L.INTERVAL))
    assert history_events(chain) == []
    chain.block(at=t0 + 1800 + RETENTION_S)          # interval 0's end is RETENTION_S behind
    (event,) = history_events(chain)
    assert event.intervals == 1 and dict(event.records) == {**settled, **entries}
    left = [k for k in interval_keys(chain.kv) if k[-40:-32] == L.u64(t0) or k == L.key_interval(t0)]
    assert left == []
    # Interval 1 settled too but is younger than the window: it stays.
    assert L.key_interval(t0 + 1800) in dict(chain.kv.iter_prefix(L.INTERVAL))
    assert chain.state_hash() == chain.full_hash()


def test_idle_gap_settles_and_archives_in_one_block_with_settled_values():
    chain, keys, t0 = producing_chain()
    result = chain.block(at=t0 + 10 * 86_400)        # a long outage: both settle and leave at once
    (event,) = [e for e in result.events if isinstance(e, HistoryLeft)]
    assert event.intervals == 2
    records = {k: decode_value(v) for k, v in event.records}
    iv0 = records[L.key_interval(t0)]
    assert iv0[L.IV_SETTLED] and iv0[L.IV_M] == 50           # ΣE 100, ΣI 50 in interval 0
    assert records[L.key_entry(t0, keys[0].public)][L.IE_MINTED] == 90      # 10 % levy
    assert records[L.key_entry(t0, keys[2].public)][L.IE_ALLOCATED] == 50
    assert interval_keys(chain.kv) == []
    assert chain.kv.get(b"open/") is None and list(chain.kv.iter_prefix(L.OPEN)) == []
    assert chain.state_hash() == chain.full_hash()
    # The archive holds what the state no longer does: the queries read it back as before.
    archive = MemoryKV(dict(event.records))
    rows = get_household_intervals(archive, keys[0].public, t0, t0 + 1800)
    assert [(r["start"] - t0, r["export_wh"], r["minted_wh"]) for r in rows] == [(0, 100, 90), (1800, 100, 90)]


def test_open_interval_is_never_removed_whatever_its_age():
    chain, keys, t0 = producing_chain()
    # The block time may pass the window before settlement has run: settlement comes
    # first in the block, so an interval is always settled before it may leave.
    chain.block(at=t0 + 1800 + 299)                  # interval 0 not yet settled (grace)
    assert L.key_interval(t0) in dict(chain.kv.iter_prefix(L.INTERVAL))
    assert history_events(chain) == []


def test_replays_agree_block_by_block():
    first, _, t0 = producing_chain()
    second, _, _ = producing_chain()
    for at in (t0 + 2100, t0 + 5400, t0 + 9000, t0 + 90_000):
        assert first.block(at=at).state_hash == second.block(at=at).state_hash


@pytest.mark.parametrize("value", [0, -1, "1h"])
def test_invalid_retention_is_refused(value):
    with pytest.raises(GenesisError, match="history_retention_s"):
        make_genesis(2, {"history_retention_s": value})
