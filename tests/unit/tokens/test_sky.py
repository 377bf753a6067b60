"""The clear-sky cap on exports (issue 18, docs/reconciliation.md "Sky cap")."""

from __future__ import annotations

import pytest

from tests.unit.tokens.commune import GENESIS_TIME, Chain, expect_invalid, make_genesis
from tokens import get_household
from tokens.genesis import GenesisError
from tokens.sky import DAY_S, SLOT_S, SLOTS, parse_sky

DAY_WH = 400     # Wh per kWc per half hour, 07:00-17:00 UTC; 0 otherwise
NOON = GENESIS_TIME + 12 * 3600


def sky_doc(day_wh: int = DAY_WH) -> dict:
    row = [day_wh if 14 <= slot < 34 else 0 for slot in range(SLOTS)]
    return {"lat": 43.95, "lon": 4.81, "elevation_m": 23, "model": "test", "wh_per_kwc": [row] * 12}


def sky_chain(params: dict | None = None, sky: dict | None = None):
    genesis, keys = make_genesis(4, params, sky=sky_doc() if sky is None else sky)
    return Chain(genesis), keys


def baseline_at(chain: Chain, keys, at: int) -> int:
    """Every household's first reading (1000 Wh each way) at ``at``; returns ``at``."""
    chain.block([chain.reading(keys[i], i, 1, at, 1000, 1000) for i in range(4)], at=at + 1)
    return at


def test_night_export_is_refused():
    chain, keys = sky_chain()
    t = baseline_at(chain, keys, GENESIS_TIME + 3600)        # 01:00 UTC
    expect_invalid(chain, chain.reading(keys[0], 0, 2, t + 600, 1000, 1001), "above_clear_sky", dt_s=600)
    # Import at night is untouched, and so is a reading that exports nothing.
    chain.block([chain.reading(keys[0], 0, 2, t + 600, 1200, 1000)], at=t + 601)
    assert get_household(chain.kv, keys[0].public)["last_reading"]["import_wh"] == 1200


def test_day_export_up_to_the_cap_with_margin():
    chain, keys = sky_chain()
    t = baseline_at(chain, keys, NOON)
    # 6 kWc × 400 Wh × 360/1800 × 1.2 = 576 Wh; the peak cap alone would allow 600.
    expect_invalid(chain, chain.reading(keys[0], 0, 2, t + 360, 1000, 1577), "above_clear_sky", dt_s=361)
    chain.block([chain.reading(keys[0], 0, 2, t + 360, 1000, 1576)], at=t + 361)
    assert get_household(chain.kv, keys[0].public)["last_reading"]["export_wh"] == 1576


def test_margin_is_a_parameter():
    chain, keys = sky_chain({"clear_sky_margin_bp": 10_000})
    t = baseline_at(chain, keys, NOON)
    expect_invalid(chain, chain.reading(keys[0], 0, 2, t + 360, 1000, 1481), "above_clear_sky", dt_s=361)
    chain.block([chain.reading(keys[0], 0, 2, t + 360, 1000, 1480)], at=t + 361)


def test_reading_across_sunset_counts_only_the_daylight():
    chain, keys = sky_chain()
    # 16:50 to 17:20 UTC: 600 s of 400 Wh/kWc slot, then night. 6 × 400 × 600/1800 × 1.2 = 960.
    t = baseline_at(chain, keys, GENESIS_TIME + 16 * 3600 + 50 * 60)
    expect_invalid(chain, chain.reading(keys[0], 0, 2, t + 1800, 1000, 1961), "above_clear_sky", dt_s=1801)
    chain.block([chain.reading(keys[0], 0, 2, t + 1800, 1000, 1960)], at=t + 1801)


def test_genesis_without_sky_keeps_only_the_peak_cap():
    genesis, keys = make_genesis(4)
    chain = Chain(genesis)
    t = baseline_at(chain, keys, GENESIS_TIME + 3600)
    chain.block([chain.reading(keys[0], 0, 2, t + 360, 1000, 1600)], at=t + 361)
    assert genesis.sky is None


def test_cap_over_whole_days_equals_the_sum_of_its_half_hours():
    sky = parse_sky(sky_doc())
    t0 = GENESIS_TIME + 7 * 3600 + 17
    t1 = t0 + 3 * DAY_S + 5000
    by_slot = 0
    t = t0
    while t < t1:
        end = min(t - t % SLOT_S + SLOT_S, t1)
        by_slot += sky.compute_cap_units(t, end)
        t = end
    assert sky.compute_cap_units(t0, t1) == by_slot == 3 * 20 * DAY_WH * SLOT_S + sky.compute_cap_units(t0, t0 + 5000)


@pytest.mark.parametrize("change, message", [
    ({"wh_per_kwc": [[0] * SLOTS] * 11}, "12 rows"),
    ({"wh_per_kwc": [[0] * SLOTS] * 11 + [[-1] + [0] * (SLOTS - 1)]}, "wh_per_kwc[11][0]"),
    ({"wh_per_kwc": [[0] * SLOTS] * 11 + [[0.5] + [0] * (SLOTS - 1)]}, "wh_per_kwc[11][0]"),
    ({"lat": 91}, "sky.lat"),
    ({"elevation_m": "high"}, "sky.elevation_m"),
], ids=["eleven_months", "negative", "float", "lat", "elevation"])
def test_bad_sky_is_refused_at_genesis(change, message):
    with pytest.raises(GenesisError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make_genesis(4, sky={**sky_doc(), **change})


@pytest.mark.parametrize("margin", [9_999, 100_001, "1.2"])
def test_bad_margin_is_refused(margin):
    with pytest.raises(GenesisError, match="clear_sky_margin_bp"):
        make_genesis(4, {"clear_sky_margin_bp": margin})


def test_month_by_integer_arithmetic_matches_the_calendar():
    import datetime as dt

    from tokens.sky import get_month
    for t in list(range(0, 4_200_000_000, 86_400 * 7 + 3_607)) + [951_782_400, 951_868_799, 4_107_542_399]:
        assert get_month(t) == dt.datetime.fromtimestamp(t, dt.timezone.utc).month - 1, t
