"""Simulated households for the localnet: PV production, load shapes, cumulative meters.

Choice: light closed-form models in pure Python, no pandas/numpy.
pvlib + demandlib cost about 400 MB here and need pandas<3 (../shared/DEPENDENCIES.md);
a localnet only needs believable days, deterministic from a seed, for a few dozen
households. The formulas, and where they come from:

- Sun position: Spencer (1971), "Fourier series representation of the position of the
  sun", Search 2(5): declination and equation of time from the day angle; zenith from
  the hour angle (Duffie & Beckman, "Solar Engineering of Thermal Processes", §1.6).
- Clear-sky irradiance: Haurwitz (1945), "Insolation in relation to cloud type",
  J. Meteorology 3: GHI = 1098 cos z exp(-0.057 / cos z) W/m². Near Avignon on 21 June it
  peaks near 970 W/m², close to pvlib's Ineichen (940 W/m², DEPENDENCIES.md).
- Clouds: a clear-sky index per quarter hour, an AR(1) process around a daily mean drawn
  with a seasonal base (sunnier summers). One ``Weather`` is shared by the whole commune:
  a cloud shades every roof of a village at once.
- PV: P = peak_w × PR × GHI / 1000 with performance ratio PR = 0.85 (a horizontal-
  equivalent yield, no transposition), so P ≤ 0.88 × peak_w: under DESIGN §4's kWc cap.
- Load: a shape of our own, a sum of Gaussians at the morning, noon and evening peaks of
  the BDEW H0 standard load profile (VDEW, Meier et al. 1999, "Repräsentative VDEW-
  Lastprofile"), with a later, flatter morning at weekends; scaled by the H0 dynamisation
  polynomial F(d) = -3.92e-10 d⁴ + 3.2e-7 d³ - 7.02e-5 d² + 2.1e-3 d + 1.24 (same
  source), and normalised so that a year sums to ``annual_kwh``. Each household's seed
  shifts its peaks (±45 min) and scales them; multiplicative AR(1) noise per quarter hour.
- Net metering per instant: export = max(0, pv - load), import = max(0, load - pv).
- Local time is French legal time: CET, CEST from the last Sunday of March to the last
  Sunday of October at 01:00 UTC (EU Directive 2000/84/EC).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from functools import lru_cache

from node.clock import compute_paris_offset_s
from tokens.genesis import Genesis
from tokens.sky import Sky

DAY_S = 86400
GRID_S = 900                        # noise and clouds: one value per quarter hour
GRID_POINTS = DAY_S // GRID_S + 1   # both ends of the day, to interpolate the last quarter
PERFORMANCE_RATIO = 0.85
AVIGNON = (43.95, 4.81)             # latitude, longitude (degrees, east positive)


def _rng(*parts: int) -> random.Random:
    """A generator seeded by integers only (stable across runs: no string hashing)."""
    seed = 0
    for part in parts:
        seed = (seed * 1_000_003 + part) % (1 << 61)
    return random.Random(seed)


def compute_ar1(rng: random.Random, n: int, phi: float, sigma: float) -> list[float]:
    """n steps of x_i = phi·x_(i-1) + sigma·ε, started from the stationary law."""
    x = rng.gauss(0.0, sigma / math.sqrt(1.0 - phi * phi))
    out = []
    for _ in range(n):
        out.append(x)
        x = phi * x + rng.gauss(0.0, sigma)
    return out


def _interpolate(grid: list[float], second_of_day: float) -> float:
    pos = second_of_day / GRID_S
    i = min(int(pos), GRID_POINTS - 2)
    frac = pos - i
    return grid[i] * (1.0 - frac) + grid[i + 1] * frac


# --- sun and clouds ---------------------------------------------------------------------

def compute_cos_zenith(t: float, lat: float, lon: float) -> float:
    """Cosine of the solar zenith angle at unix time t (Spencer 1971; Duffie & Beckman §1.6)."""
    utc = dt.datetime.fromtimestamp(t, dt.timezone.utc)
    gamma = 2.0 * math.pi * (utc.timetuple().tm_yday - 1) / 365.0
    decl = (0.006918 - 0.399912 * math.cos(gamma) + 0.070257 * math.sin(gamma)
            - 0.006758 * math.cos(2 * gamma) + 0.000907 * math.sin(2 * gamma)
            - 0.002697 * math.cos(3 * gamma) + 0.00148 * math.sin(3 * gamma))
    eot_min = 229.18 * (0.000075 + 0.001868 * math.cos(gamma) - 0.032077 * math.sin(gamma)
                        - 0.014615 * math.cos(2 * gamma) - 0.040849 * math.sin(2 * gamma))
    minutes = (t % DAY_S) / 60.0
    solar_min = minutes + 4.0 * lon + eot_min
    hour_angle = math.radians(solar_min / 4.0 - 180.0)
    phi = math.radians(lat)
    return math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(hour_angle)


def compute_clear_sky_ghi(cos_zenith: float) -> float:
    """Haurwitz (1945) clear-sky global horizontal irradiance, W/m²; 0 at night."""
    if cos_zenith <= 0.0:
        return 0.0
    return 1098.0 * cos_zenith * math.exp(-0.057 / cos_zenith)


@dataclass(frozen=True)
class Weather:
    """The commune's sky: a clear-sky index per quarter hour, deterministic from ``seed``."""

    seed: int = 0
    lat: float = AVIGNON[0]
    lon: float = AVIGNON[1]
    # The genesis clear-sky table (tokens/sky.py): production never exceeds it, so the
    # simulated meters are never refused as above_clear_sky.
    sky: Sky | None = None

    @classmethod
    def for_genesis(cls, seed: int, genesis: Genesis) -> Weather:
        """The commune's sky: at the genesis location, under its clear-sky table."""
        if genesis.sky is None:
            return cls(seed)
        return cls(seed, genesis.sky.lat, genesis.sky.lon, genesis.sky)

    def clear_sky_index(self, t: float) -> float:
        day = math.floor(t / DAY_S)
        return _interpolate(_cloud_grid(self.seed, day), t - day * DAY_S)

    def ghi(self, t: float) -> float:
        return compute_clear_sky_ghi(compute_cos_zenith(t, self.lat, self.lon)) * self.clear_sky_index(t)


@lru_cache(maxsize=512)
def _cloud_grid(seed: int, day: int) -> list[float]:
    rng = _rng(seed, 1, day)
    doy = dt.datetime.fromtimestamp(day * DAY_S, dt.timezone.utc).timetuple().tm_yday
    base = 0.72 + 0.12 * math.cos(2.0 * math.pi * (doy - 172) / 365.0)
    mean = min(1.0, max(0.12, base + rng.gauss(0.0, 0.18)))
    sigma = 0.04 + 0.3 * mean * (1.0 - mean)   # overcast-broken days vary most
    noise = compute_ar1(rng, GRID_POINTS, 0.85, sigma)
    return [min(1.05, max(0.05, mean + x)) for x in noise]


# --- load ---------------------------------------------------------------------------------

def compute_h0_dynamisation(day_of_year: int) -> float:
    """BDEW/VDEW H0 dynamisation factor (Meier et al. 1999): winter above 1, summer below."""
    d = float(day_of_year)
    return -3.92e-10 * d**4 + 3.2e-7 * d**3 - 7.02e-5 * d**2 + 2.1e-3 * d + 1.24


MEAN_DYNAMISATION = sum(compute_h0_dynamisation(d) for d in range(1, 366)) / 365.0

# (centre hour, width h, weight) of each peak, for workdays and weekends (H0-like shape).
WORKDAY_PEAKS = ((7.3, 0.9, 0.9), (12.6, 1.2, 0.8), (15.5, 2.5, 0.25), (19.6, 1.6, 1.6), (22.2, 0.9, 0.35))
WEEKEND_PEAKS = ((9.0, 1.4, 0.8), (12.8, 1.3, 1.0), (15.5, 2.5, 0.35), (19.8, 1.7, 1.4), (22.5, 1.0, 0.35))
BASE_LOAD = 0.38


@dataclass(frozen=True)
class _Shape:
    base: float
    peaks: tuple[tuple[float, float, float], ...]

    def at(self, hour: float) -> float:
        total = self.base
        for centre, width, weight in self.peaks:
            for wrap in (-24.0, 0.0, 24.0):      # the evening peak spills past midnight
                total += weight * math.exp(-0.5 * ((hour - centre - wrap) / width) ** 2)
        return total

    def mean(self) -> float:
        return sum(self.at(i / 12.0) for i in range(24 * 12)) / (24 * 12)


def _personal_shape(rng: random.Random, peaks: tuple[tuple[float, float, float], ...], base: float) -> _Shape:
    moved = tuple((c + rng.uniform(-0.75, 0.75), w * rng.uniform(0.85, 1.2), a * rng.uniform(0.7, 1.3))
                  for c, w, a in peaks)
    return _Shape(base * rng.uniform(0.7, 1.3), moved)


# --- households ------------------------------------------------------------------------------

class HouseholdProfile:
    """One household's instantaneous production and consumption, in W, at any unix time."""

    NOISE_PHI, NOISE_SIGMA = 0.7, 0.25

    def __init__(self, seed: int, peak_w: int, annual_kwh: float, weather: Weather | None = None,
                 max_import_w: float | None = None) -> None:
        if peak_w < 0 or annual_kwh <= 0:
            raise ValueError("peak_w must be >= 0 and annual_kwh > 0")
        self.seed, self.peak_w, self.annual_kwh = seed, peak_w, annual_kwh
        self.weather = weather if weather is not None else Weather()
        self.max_import_w = max_import_w
        rng = _rng(seed, 2)
        self.workday = _personal_shape(rng, WORKDAY_PEAKS, BASE_LOAD)
        self.weekend = _personal_shape(rng, WEEKEND_PEAKS, BASE_LOAD)
        mean_shape = (5 * self.workday.mean() + 2 * self.weekend.mean()) / 7
        self._scale_w = annual_kwh * 1000.0 / (365.0 * 24.0) / mean_shape / MEAN_DYNAMISATION

    def pv_w(self, t: float) -> float:
        pv = self.peak_w * PERFORMANCE_RATIO * self.weather.ghi(t) / 1000.0
        sky = self.weather.sky
        return pv if sky is None else min(pv, sky.compute_power_cap_w(self.peak_w, t))

    def load_w(self, t: float) -> float:
        local = t + compute_paris_offset_s(t)
        day = math.floor(local / DAY_S)
        when = dt.datetime.fromtimestamp(day * DAY_S, dt.timezone.utc)
        shape = self.weekend if when.weekday() >= 5 else self.workday
        hour = (local - day * DAY_S) / 3600.0
        noise = _interpolate(_load_noise(self.seed, day, self.NOISE_PHI, self.NOISE_SIGMA), local - day * DAY_S)
        dyn = compute_h0_dynamisation(when.timetuple().tm_yday)
        return self._scale_w * dyn * shape.at(hour) * noise

    def power_w(self, t: float) -> tuple[float, float]:
        """(import_w, export_w): net metering at one instant."""
        net = self.load_w(t) - self.pv_w(t)
        import_w, export_w = max(0.0, net), max(0.0, -net)
        if self.max_import_w is not None:
            import_w = min(import_w, self.max_import_w)   # the breaker trips above kVA
        return import_w, export_w


@lru_cache(maxsize=4096)
def _load_noise(seed: int, day: int, phi: float, sigma: float) -> list[float]:
    # Log-normal with mean 1: exp(x - var/2), var the stationary variance of x.
    var = sigma * sigma / (1.0 - phi * phi)
    return [math.exp(x - var / 2.0) for x in compute_ar1(_rng(seed, 3, day), GRID_POINTS, phi, sigma)]


class MeterSim:
    """A simulated Linky: cumulative import/export indexes (Wh) at any time from ``start_t``.

    Power is integrated with the midpoint rule over ``step_s`` steps; cumulative values are
    kept at each hour from ``start_t``, so a query costs at most one hour of steps.
    """

    def __init__(self, profile: HouseholdProfile, start_t: int, base_import_wh: int = 0,
                 base_export_wh: int = 0, step_s: int = 60) -> None:
        if step_s <= 0 or 3600 % step_s:
            raise ValueError("step_s must divide 3600")
        self.profile, self.start_t, self.step_s = profile, start_t, step_s
        self.base = (base_import_wh, base_export_wh)
        self._hours: list[tuple[float, float]] = [(0.0, 0.0)]   # Wh at start_t + k·3600

    def _integrate(self, t0: float, t1: float) -> tuple[float, float]:
        imp = exp = 0.0
        t = t0
        while t < t1:
            dt_s = min(self.step_s, t1 - t)
            i_w, e_w = self.profile.power_w(t + dt_s / 2.0)
            imp, exp, t = imp + i_w * dt_s / 3600.0, exp + e_w * dt_s / 3600.0, t + dt_s
        return imp, exp

    def index_at(self, t: float) -> tuple[int, int]:
        """(import_wh, export_wh) cumulative indexes at unix time t; never falling."""
        if t <= self.start_t:
            return self.base
        hour = int((t - self.start_t) // 3600)
        while len(self._hours) <= hour:
            k = len(self._hours) - 1
            t0 = self.start_t + k * 3600
            imp, exp = self._integrate(t0, t0 + 3600)
            self._hours.append((self._hours[k][0] + imp, self._hours[k][1] + exp))
        imp, exp = self._integrate(self.start_t + hour * 3600, t)
        return (self.base[0] + int(self._hours[hour][0] + imp), self.base[1] + int(self._hours[hour][1] + exp))


@dataclass(frozen=True)
class HouseholdSpec:
    seed: int
    peak_w: int          # installed PV, W (0: consumer only)
    annual_kwh: int
    kva: int             # subscribed power


def compute_commune_mix(n: int, seed: int = 0, producer_share: float = 0.3) -> list[HouseholdSpec]:
    """A commune of n households: ``producer_share`` of them with 3–9 kWc of PV."""
    rng = _rng(seed, 4)
    producers = set(rng.sample(range(n), round(n * producer_share))) if n else set()
    specs = []
    for i in range(n):
        peak_w = 500 * rng.randint(6, 18) if i in producers else 0
        annual_kwh = 100 * rng.randint(25, 65)
        kva = 6 if annual_kwh < 4000 and peak_w <= 6000 else 9
        specs.append(HouseholdSpec(seed=seed * 100_003 + i, peak_w=peak_w, annual_kwh=annual_kwh, kva=kva))
    return specs


def household_profile(seed: int, peak_w: int, kva: int, annual_kwh: int | None = None,
                      weather: Weather | None = None) -> HouseholdProfile:
    """The profile of one registered household (genesis gives peak_w and kVA).

    Without ``annual_kwh``, a consumption of 2 500–6 500 kWh a year is drawn from the seed.
    Households of one commune should share one ``weather`` (the default sky is Weather(0)).
    """
    if annual_kwh is None:
        annual_kwh = 100 * _rng(seed, 5).randint(25, 65)
    return HouseholdProfile(seed, peak_w, annual_kwh, weather, max_import_w=kva * 1000.0 if kva else None)


def build_profiles(specs: list[HouseholdSpec], weather: Weather) -> list[HouseholdProfile]:
    return [HouseholdProfile(s.seed, s.peak_w, s.annual_kwh, weather, max_import_w=s.kva * 1000.0)
            for s in specs]
