"""The clear-sky cap (issue 18, docs/reconciliation.md "Sky cap").

``voisinage genesis new`` computes, for the commune's location, the most one kWc of
panels can produce in each UTC half hour of each month under a clear sky, and writes it
into genesis as integers (Wh per kWc per half hour, 12 × 48). This module only reads
that table: the state transition stays pure and never imports pvlib.

An export delta over [t0, t1) is capped at ``kWc × Σ table × overlap / 1800 × margin``
(rounded up to the Wh, so that a meter's whole-Wh index never trips it by rounding);
at night the table is 0 and so is the cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SLOT_S = 1800
SLOTS = 86_400 // SLOT_S
MONTHS = 12
DAY_S = 86_400
# A half hour of 1 kWc can hold at most 1 kW × 0.5 h × 1.5 (well above any sky on Earth).
MAX_SLOT_WH = 750


class SkyError(ValueError):
    """A genesis ``sky`` section that is not a valid table."""


@dataclass(frozen=True)
class Sky:
    lat: float
    lon: float
    elevation_m: int
    model: str
    wh_per_kwc: tuple[tuple[int, ...], ...]   # [month 0..11][UTC half hour 0..47]

    def get_day_wh(self, month: int) -> int:
        return sum(self.wh_per_kwc[month])

    def compute_cap_units(self, t0: int, t1: int) -> int:
        """Σ table[month(t)][slot(t)] × seconds over [t0, t1): Wh·s per kWc per 1800 s."""
        total = 0
        t = t0
        while t < t1:
            month = get_month(t)
            if t % DAY_S == 0 and t + DAY_S <= t1:
                total += self.get_day_wh(month) * SLOT_S
                t += DAY_S
                continue
            slot_end = min(t - t % SLOT_S + SLOT_S, t1)
            total += self.wh_per_kwc[month][(t % DAY_S) // SLOT_S] * (slot_end - t)
            t = slot_end
        return total

    def compute_export_cap_wh(self, peak_w: int, margin_bp: int, t0: int, t1: int) -> int:
        """The most a ``peak_w`` array may export over [t0, t1), with the margin."""
        units = self.compute_cap_units(t0, t1) * peak_w * margin_bp
        return -(-units // (1000 * 10_000 * SLOT_S))

    def compute_power_cap_w(self, peak_w: int, t: float) -> float:
        """The table's mean power for ``peak_w`` in the half hour holding ``t`` (no margin):
        the simulators keep their production under it."""
        ti = int(t)
        return peak_w / 1000 * self.wh_per_kwc[get_month(ti)][(ti % DAY_S) // SLOT_S] * 3600 / SLOT_S

    def to_doc(self) -> dict[str, Any]:
        return {"lat": self.lat, "lon": self.lon, "elevation_m": self.elevation_m, "model": self.model,
                "wh_per_kwc": [list(row) for row in self.wh_per_kwc]}


def get_month(t: int) -> int:
    """0-based UTC month of unix time ``t`` (the proleptic Gregorian calendar, by integer
    arithmetic: H. Hinnant's ``civil_from_days``; tokens/ imports no clock module)."""
    z = t // DAY_S + 719_468
    doe = z - z // 146_097 * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    mp = (5 * (doe - (365 * yoe + yoe // 4 - yoe // 100)) + 2) // 153
    return mp + 2 if mp < 10 else mp - 10


def _number(value: Any, where: str, lo: float, hi: float) -> float:
    if type(value) not in (int, float) or not lo <= value <= hi:
        raise SkyError(f"{where}: expected a number from {lo} to {hi}")
    return value


def parse_sky(doc: Any) -> Sky:
    """Check a genesis ``sky`` section; raises ``SkyError`` with the reason."""
    if not isinstance(doc, dict):
        raise SkyError("sky: expected an object")
    table = doc.get("wh_per_kwc")
    if not (isinstance(table, list) and len(table) == MONTHS
            and all(isinstance(row, list) and len(row) == SLOTS for row in table)):
        raise SkyError(f"sky.wh_per_kwc: expected {MONTHS} rows of {SLOTS} integers")
    for m, row in enumerate(table):
        for s, value in enumerate(row):
            if type(value) is not int or not 0 <= value <= MAX_SLOT_WH:
                raise SkyError(f"sky.wh_per_kwc[{m}][{s}]: expected an integer from 0 to {MAX_SLOT_WH}")
    elevation = doc.get("elevation_m")
    if type(elevation) is not int or not -500 <= elevation <= 9000:
        raise SkyError("sky.elevation_m: expected whole metres from -500 to 9000")
    model = doc.get("model", "")
    if not isinstance(model, str) or len(model) > 200:
        raise SkyError("sky.model: text of at most 200 characters")
    return Sky(_number(doc.get("lat"), "sky.lat", -90, 90), _number(doc.get("lon"), "sky.lon", -180, 180),
               elevation, model, tuple(tuple(row) for row in table))
