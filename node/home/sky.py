"""The clear-sky table written into genesis by ``voisinage genesis new`` (issue 18).

pvlib is used here, at genesis time only: the state transition (tokens/sky.py) reads the
integer table from genesis and never imports it. The table is an upper bound on what one
kWc can produce in each UTC half hour of each month:

- sky: pvlib's Ineichen-Perez clear-sky model (with its monthly Linke turbidity
  climatology) and pvlib's solar position (NREL SPA), every 5 minutes of a reference
  year (2025), at the commune's latitude, longitude and elevation;
- array: a plane that always faces the sun (two-axis tracking) receives DNI + DHI, more
  than any fixed roof; 1 kWc yields 1 kW at 1000 W/m², with no losses, so the bound holds
  for every orientation and every real array;
- per month and half hour, the largest mean power of any day of the month, in Wh per
  half hour, rounded up.

The margin (params.clear_sky_margin_bp, default 1.2) covers clearer-than-climatology days
and cloud-edge enhancement; it is applied by the rule, not baked into the table.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from node.home.errors import HomeError
from tokens.sky import MONTHS, SLOTS, Sky

REFERENCE_YEAR = 2025
STEP_MIN = 5
MODEL = "pvlib ineichen clear sky, 2-axis tracking DNI+DHI, 1 kWc = 1 kW at 1000 W/m2, 5-min steps, year 2025"


def load_communes() -> dict[str, dict]:
    """The shipped INSEE code → {name, lat, lon, elevation_m} table (node/home/communes.json)."""
    return json.loads(resources.files("node.home").joinpath("communes.json").read_text())


def resolve_location(insee: str, lat: float | None, lon: float | None,
                     elevation: int | None) -> tuple[float, float, int]:
    """The commune's location: explicit values override the shipped table's."""
    known = load_communes().get(insee)
    if known is None and (lat is None or lon is None):
        raise HomeError(f"INSEE code {insee} is not in the shipped table; give --lat and --lon (and --elevation)")
    lat = known["lat"] if lat is None else lat
    lon = known["lon"] if lon is None else lon
    if elevation is None:
        elevation = known["elevation_m"] if known is not None else 0
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and -500 <= elevation <= 9000):
        raise HomeError("--lat must be in [-90, 90], --lon in [-180, 180], --elevation in [-500, 9000] m")
    return round(lat, 4), round(lon, 4), int(elevation)


@functools.lru_cache(maxsize=8)
def compute_sky(lat: float, lon: float, elevation_m: int) -> Sky:
    """The clear-sky table for one location (a few seconds: pandas and pvlib load here)."""
    import pandas as pd
    import pvlib

    times = pd.date_range(f"{REFERENCE_YEAR}-01-01", f"{REFERENCE_YEAR + 1}-01-01", freq=f"{STEP_MIN}min",
                          tz="UTC", inclusive="left")
    location = pvlib.location.Location(lat, lon, tz="UTC", altitude=elevation_m)
    clear = location.get_clearsky(times, model="ineichen")
    power_w = (clear["dni"] + clear["dhi"]).clip(lower=0.0)          # W per kWc (1 kW at 1000 W/m²)
    frame = pd.DataFrame({"w": power_w.to_numpy(), "month": times.month - 1, "day": times.day,
                          "slot": (times.hour * 60 + times.minute) // 30})
    means = frame.groupby(["month", "day", "slot"])["w"].mean()       # W per half hour of each day
    best = means.groupby(level=["month", "slot"]).max()
    table = [[0] * SLOTS for _ in range(MONTHS)]
    for (month, slot), watts in best.items():
        wh = watts / 2.0
        table[month][slot] = int(-(-wh // 1)) if wh > 0.01 else 0
    return Sky(lat, lon, elevation_m, MODEL, tuple(tuple(row) for row in table))
