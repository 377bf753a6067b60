"""The Data Connect shape the household's node writes (node/consent/dataconnect.py),
read back by the registrar's reconcile parser (node/commands/official.py) to the same Wh."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from node.clock import compute_local_day_start
from node.commands.official import Curves, parse_data_connect
from node.consent.dataconnect import HALF_S, MEASURES, PeriodError, render_meter_reading

PRM = "12345678901234"
BY_SCOPE = {m.scope: m for m in MEASURES}


def half_hours(day: dt.date, days: int = 1) -> list[int]:
    first, end = compute_local_day_start(day), compute_local_day_start(day + dt.timedelta(days=days))
    return list(range(first, end, HALF_S))


def parse_back(doc: dict) -> Curves:
    curves = Curves({}, {})
    parse_data_connect(json.dumps(doc), curves, None, Path("node.json"))
    return curves


@pytest.mark.parametrize("day, count", [(dt.date(2026, 6, 21), 48), (dt.date(2026, 3, 29), 46),
                                        (dt.date(2026, 10, 25), 50)])
def test_load_curves_round_trip_through_the_reconcile_parser(day, count):
    starts = half_hours(day)
    assert len(starts) == count        # French legal time: the days the clocks change
    consumption = {t: 100 + i * 7 for i, t in enumerate(starts)}
    production = {t: (i * 13) % 400 for i, t in enumerate(starts)}
    end = day + dt.timedelta(days=1)
    cons = render_meter_reading(BY_SCOPE["consumption_load_curve"], PRM, day, end, consumption)
    prod = render_meter_reading(BY_SCOPE["production_load_curve"], PRM, day, end, production)
    reading = cons["usage_point"][0]["meter_reading"]
    assert reading["reading_type"]["unit"] == "W" and reading["interval_reading"][0] == {"rank": 1, "value": "200"}
    assert parse_back(cons).values == {(PRM, "import"): consumption}
    assert parse_back(prod).values == {(PRM, "export"): production}


def test_half_hours_outside_the_period_are_left_out_and_ranks_follow_local_midnight():
    day = dt.date(2026, 6, 21)
    starts = half_hours(day, 2)
    doc = render_meter_reading(BY_SCOPE["production_load_curve"], PRM, day + dt.timedelta(days=1),
                               day + dt.timedelta(days=2), {t: 50 for t in starts})
    readings = doc["usage_point"][0]["meter_reading"]["interval_reading"]
    assert [r["rank"] for r in readings] == list(range(1, 49)) and {r["value"] for r in readings} == {"100"}


def test_daily_consumption_and_max_power_per_local_day():
    day = dt.date(2026, 6, 21)
    starts = half_hours(day, 2)
    wh = {t: 10 for t in starts[:48]} | {starts[60]: 900}
    end = day + dt.timedelta(days=3)
    daily = render_meter_reading(BY_SCOPE["daily_consumption"], PRM, day, end, wh)["usage_point"][0]["meter_reading"]
    assert daily["interval_reading"] == [{"rank": 1, "value": "480", "date": "2026-06-21"},
                                         {"rank": 2, "value": "900", "date": "2026-06-22"}]
    peak = render_meter_reading(BY_SCOPE["max_power"], PRM, day, end, wh)["usage_point"][0]["meter_reading"]
    assert [r["value"] for r in peak["interval_reading"]] == ["20", "1800"]


@pytest.mark.parametrize("start, end, reason", [
    (dt.date(2026, 6, 21), dt.date(2026, 6, 21), "must be after"),
    (dt.date(2026, 6, 21), dt.date(2026, 6, 29), "at most 7 days"),
])
def test_invalid_period(start, end, reason):
    with pytest.raises(PeriodError, match=reason):
        render_meter_reading(BY_SCOPE["consumption_load_curve"], PRM, start, end, {})
