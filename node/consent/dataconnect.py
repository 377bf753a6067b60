"""The Enedis Data Connect JSON shape, written by the household's node and read back by
the registrar's reconcile command (node/commands/official.py), so both agree.

A document is ``{"usage_point": [{"meter_reading": {...}}]}``; a meter reading has
``usage_point_id`` (the 14-digit PRM), ``start`` and ``end`` (local French dates, end
excluded), ``reading_type`` and ``interval_reading[{rank, value}]``: rank 1 is the
first step after local midnight of ``start``. Load curves are the mean power in W of
each half hour (W = 2 × Wh), as Data Connect's; daily readings are Wh per local day.
Unlike Data Connect, production curves are served too, and a half hour or day the
node has no settled interval for is left out (Data Connect also omits missing points).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from node.clock import compute_local_day_start

HALF_S = 1800
DAY_S = 86400
DATE_FORMAT = "%Y-%m-%d"
PRM = re.compile(r"\d{14}")
# reading_type.flow_direction (a field of ours, as Data Connect has one URL per direction).
FLOW_CONS, FLOW_PROD = "CONS", "PROD"
DIRECTIONS = {FLOW_CONS: "import", FLOW_PROD: "export", "Consommation": "import", "Production": "export"}
MAX_LOAD_CURVE_DAYS = 7         # Data Connect: a load curve covers at most 7 days per call
MAX_DAILY_DAYS = 365


@dataclass(frozen=True)
class Measure:
    """One Data Connect resource: its scope, the direction it reads and how it aggregates."""

    scope: str
    path: str
    direction: str          # "import" or "export": the interval field read (import_wh / export_wh)
    step: str               # "half_hour", "day_sum" or "day_max"
    max_days: int


MEASURES = (
    Measure("consumption_load_curve", "/metering_data_clc/v5/consumption_load_curve", "import", "half_hour",
            MAX_LOAD_CURVE_DAYS),
    Measure("production_load_curve", "/metering_data_plc/v5/production_load_curve", "export", "half_hour",
            MAX_LOAD_CURVE_DAYS),
    Measure("daily_consumption", "/metering_data_dc/v5/daily_consumption", "import", "day_sum", MAX_DAILY_DAYS),
    Measure("max_power", "/metering_data_dcmp/v5/daily_consumption_max_power", "import", "day_max",
            MAX_DAILY_DAYS),
)
SCOPES = tuple(m.scope for m in MEASURES)


class PeriodError(ValueError):
    """A start/end pair Data Connect would refuse; the message says why."""


def parse_date(text: str, what: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, DATE_FORMAT).date()
    except ValueError:
        raise PeriodError(f"{what} must be a date YYYY-MM-DD, not {text!r}") from None


def compute_period(start: dt.date, end: dt.date, max_days: int) -> tuple[int, int]:
    """Unix times of the local midnights that start ``start`` and ``end`` (end excluded)."""
    if end <= start:
        raise PeriodError(f"end {end.isoformat()} must be after start {start.isoformat()}")
    if (end - start).days > max_days:
        raise PeriodError(f"at most {max_days} days per request: {start.isoformat()} to {end.isoformat()} "
                          f"is {(end - start).days}")
    return compute_local_day_start(start), compute_local_day_start(end)


def compute_load_curve_w(wh_by_start: Mapping[int, int], first: int, end: int) -> list[dict[str, Any]]:
    """interval_reading of a load curve: each half hour's mean power in W, by rank."""
    return [{"rank": (t - first) // HALF_S + 1, "value": str(wh * 2)}
            for t, wh in sorted(wh_by_start.items()) if first <= t < end]


def compute_daily(wh_by_start: Mapping[int, int], start: dt.date, end: dt.date,
                  combine: str) -> list[dict[str, Any]]:
    """interval_reading per local day: the day's Wh (``day_sum``) or its highest half-hour
    mean power in W (``day_max``); a day without any settled half hour is left out."""
    out = []
    for rank in range(1, (end - start).days + 1):
        day = start + dt.timedelta(days=rank - 1)
        lo, hi = compute_local_day_start(day), compute_local_day_start(day + dt.timedelta(days=1))
        values = [wh for t, wh in wh_by_start.items() if lo <= t < hi]
        if values:
            value = sum(values) if combine == "day_sum" else max(values) * 2
            out.append({"rank": rank, "value": str(value), "date": day.isoformat()})
    return out


def get_reading_type(measure: Measure) -> dict[str, Any]:
    flow = FLOW_CONS if measure.direction == "import" else FLOW_PROD
    if measure.step == "half_hour":
        return {"unit": "W", "measurement_kind": "power", "aggregate": "average", "interval_length": str(HALF_S),
                "flow_direction": flow}
    if measure.step == "day_sum":
        return {"unit": "Wh", "measurement_kind": "energy", "aggregate": "sum", "measuring_period": "P1D",
                "flow_direction": flow}
    return {"unit": "W", "measurement_kind": "power", "aggregate": "maximum", "measuring_period": "P1D",
            "interval_length": str(HALF_S), "flow_direction": flow}


def render_meter_reading(measure: Measure, prm: str, start: dt.date, end: dt.date,
                         wh_by_start: Mapping[int, int]) -> dict[str, Any]:
    """The Data Connect document of ``measure`` for one usage point, from the Wh of each
    settled half hour (keyed by its start, unix s)."""
    first, last = compute_period(start, end, measure.max_days)
    if measure.step == "half_hour":
        readings = compute_load_curve_w(wh_by_start, first, last)
    else:
        readings = compute_daily(wh_by_start, start, end, measure.step)
    return {"usage_point": [{"meter_reading": {
        "usage_point_id": prm, "start": start.isoformat(), "end": end.isoformat(), "quality": "BRUT",
        "reading_type": get_reading_type(measure), "interval_reading": readings}}]}
