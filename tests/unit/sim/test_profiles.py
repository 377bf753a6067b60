"""node/sim/profiles.py: believable, deterministic household days."""

from __future__ import annotations

import datetime as dt

import pytest

from node.clock import compute_local_day_start, compute_paris_offset_s
from node.sim.profiles import (
    AVIGNON, HouseholdProfile, MeterSim, Weather, build_profiles, compute_clear_sky_ghi,
    compute_commune_mix, compute_cos_zenith, compute_h0_dynamisation, household_profile,
)

JUNE_21 = compute_local_day_start(dt.date(2026, 6, 21))
DEC_21 = compute_local_day_start(dt.date(2026, 12, 21))


def _hour(start: int, hour: float) -> float:
    return start + hour * 3600


def test_paris_offsets_follow_eu_summer_time():
    assert compute_paris_offset_s(_hour(JUNE_21, 12)) == 7200
    assert compute_paris_offset_s(_hour(DEC_21, 12)) == 3600
    # 2026-03-29 01:00 UTC: clocks go from 02:00 to 03:00.
    switch = int(dt.datetime(2026, 3, 29, 1, tzinfo=dt.timezone.utc).timestamp())
    assert compute_paris_offset_s(switch - 1) == 3600 and compute_paris_offset_s(switch) == 7200
    assert JUNE_21 == int(dt.datetime(2026, 6, 20, 22, tzinfo=dt.timezone.utc).timestamp())


def test_clear_sky_peaks_near_the_pvlib_figure_at_the_summer_solstice():
    peak = max(compute_clear_sky_ghi(compute_cos_zenith(JUNE_21 + m * 60, *AVIGNON)) for m in range(1440))
    assert 900 < peak < 1000   # pvlib Ineichen near Avignon: 940 W/m² (DEPENDENCIES.md)
    winter = max(compute_clear_sky_ghi(compute_cos_zenith(DEC_21 + m * 60, *AVIGNON)) for m in range(1440))
    assert 350 < winter < 550
    assert compute_clear_sky_ghi(compute_cos_zenith(_hour(JUNE_21, 2), *AVIGNON)) == 0.0


def test_h0_dynamisation_is_higher_in_winter():
    assert compute_h0_dynamisation(15) > 1.1 > 1.0 > compute_h0_dynamisation(180) > 0.7


def test_profiles_are_deterministic_from_their_seed():
    a = HouseholdProfile(7, 6000, 4000, Weather(3))
    b = HouseholdProfile(7, 6000, 4000, Weather(3))
    c = HouseholdProfile(8, 6000, 4000, Weather(3))
    times = [_hour(JUNE_21, h / 4) for h in range(96)]
    assert [a.power_w(t) for t in times] == [b.power_w(t) for t in times]
    assert [a.load_w(t) for t in times] != [c.load_w(t) for t in times]


def test_pv_is_zero_at_night_and_capped_by_peak_power():
    home = HouseholdProfile(1, 9000, 3000, Weather(0))
    assert home.pv_w(_hour(JUNE_21, 1)) == 0.0
    assert all(home.pv_w(_hour(JUNE_21, m / 60)) <= 9000 for m in range(0, 1440, 5))
    assert max(home.pv_w(_hour(JUNE_21, m / 60)) for m in range(0, 1440, 5)) > 3000


def _mean_load(homes: list[HouseholdProfile], start: int, hour: float, days: int = 14) -> float:
    return sum(h.load_w(_hour(start + d * 86400, hour)) for h in homes for d in range(days)) / (len(homes) * days)


def test_loads_have_morning_and_evening_peaks_over_a_night_trough():
    homes = [HouseholdProfile(s, 0, 4000, Weather(0)) for s in range(20)]
    start = compute_local_day_start(dt.date(2026, 1, 12))
    night, morning, afternoon, evening = (_mean_load(homes, start, h) for h in (3.5, 7.5, 16.0, 19.5))
    assert morning > 1.5 * night and evening > 2.0 * night and evening > afternoon


def test_yearly_consumption_matches_annual_kwh():
    home = HouseholdProfile(11, 0, 4500, Weather(0))
    start = compute_local_day_start(dt.date(2026, 1, 1))
    total_kwh = sum(home.load_w(start + i * 1800) * 0.5 for i in range(365 * 48)) / 1000
    assert total_kwh == pytest.approx(4500, rel=0.05)


def test_net_metering_per_instant():
    home = HouseholdProfile(2, 6000, 3500, Weather(0))
    for hour in (3, 8, 13, 20):
        t = _hour(JUNE_21, hour)
        imp, exp = home.power_w(t)
        net = home.load_w(t) - home.pv_w(t)
        assert (imp, exp) == (max(0.0, net), max(0.0, -net)) and imp * exp == 0


def test_import_is_capped_by_subscribed_power():
    home = HouseholdProfile(2, 0, 60_000, Weather(0), max_import_w=3000)
    assert max(home.power_w(_hour(DEC_21, m / 60))[0] for m in range(0, 1440, 5)) == 3000


def test_meter_sim_indexes_rise_and_match_integration():
    home = HouseholdProfile(4, 6000, 4000, Weather(0))
    sim = MeterSim(home, JUNE_21, base_import_wh=1_000_000, base_export_wh=500)
    points = [JUNE_21 + k * 1234 for k in range(0, 71)]
    indexes = [sim.index_at(t) for t in points]
    assert indexes[0] == (1_000_000, 500)
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(indexes, indexes[1:]))
    fresh = MeterSim(home, JUNE_21, base_import_wh=1_000_000, base_export_wh=500)
    assert fresh.index_at(points[-1]) == indexes[-1]         # order of queries does not matter
    fine = sum(home.power_w(JUNE_21 + s + 5)[0] * 10 for s in range(0, 86400, 10)) / 3600
    day_import = sim.index_at(JUNE_21 + 86400)[0] - 1_000_000
    assert day_import == pytest.approx(fine, rel=0.02)


def test_invalid_profile_parameters():
    with pytest.raises(ValueError):
        HouseholdProfile(1, -1, 3000)
    with pytest.raises(ValueError):
        HouseholdProfile(1, 0, 0)
    with pytest.raises(ValueError):
        MeterSim(HouseholdProfile(1, 0, 3000), 0, step_s=7)


def test_commune_mix_has_thirty_percent_producers_of_three_to_nine_kwc():
    specs = compute_commune_mix(100, seed=5)
    producers = [s for s in specs if s.peak_w]
    assert len(producers) == 30
    assert all(3000 <= s.peak_w <= 9000 for s in producers)
    assert all(2500 <= s.annual_kwh <= 6500 and s.kva in (6, 9) for s in specs)
    assert compute_commune_mix(100, seed=5) == specs and compute_commune_mix(100, seed=6) != specs


def test_commune_has_a_midday_surplus_in_june_and_none_at_night():
    profiles = build_profiles(compute_commune_mix(10, seed=0), Weather(0))
    midday = [p.power_w(_hour(JUNE_21, 13.5)) for p in profiles]
    night = [p.power_w(_hour(JUNE_21, 2)) for p in profiles]
    assert sum(e for _, e in midday) > sum(i for i, _ in midday)
    assert sum(e for _, e in night) == 0 and sum(i for i, _ in night) > 0


def test_household_profile_for_a_registered_household():
    home = household_profile(3, peak_w=6000, kva=9)
    assert home is not None and home.max_import_w == 9000 and 2500 <= home.annual_kwh <= 6500
    assert household_profile(3, 6000, 9).annual_kwh == home.annual_kwh      # seeded
    assert household_profile(3, 0, 6, annual_kwh=3000).power_w(_hour(JUNE_21, 13))[1] == 0.0
