"""One clear-sky table for the ledger and the simulators (issue 18): ``genesis new``
writes it, ``meter simulate --genesis`` and the localnet's meters stay under it."""

from __future__ import annotations

import datetime as dt
import json

from node.cli import main
from node.commands.meter import compute_hourly_totals
from node.home.homedir import load_genesis_file
from node.home.sky import compute_sky
from node.sim.profiles import MeterSim, Weather, household_profile
from tokens.sky import DAY_S


def test_genesis_new_writes_the_sky_of_its_insee_code(tmp_path, capsys):
    assert main(["genesis", "new", "--name", "Avignon", "--insee", "84007", "--validators", "1",
                 "--out", str(tmp_path / "net")]) == 0
    genesis = load_genesis_file(tmp_path / "net" / "genesis.json")
    assert (genesis.sky.lat, genesis.sky.lon, genesis.sky.elevation_m) == (43.9493, 4.8055, 23)
    june, december = genesis.sky.get_day_wh(5), genesis.sky.get_day_wh(11)
    # A clear June day gives more than a clear December day; nights are 0.
    assert june > december > 0 and genesis.sky.wh_per_kwc[5][0] == 0 == genesis.sky.wh_per_kwc[11][47]
    assert "Wh per kWc on a clear June day" in capsys.readouterr().out


def test_genesis_new_with_an_unknown_insee_needs_a_location(tmp_path, capsys):
    assert main(["genesis", "new", "--name", "X", "--insee", "99999", "--validators", "1",
                 "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--lat and --lon" in err and err.count("\n") == 1
    assert not (tmp_path / "a").exists()
    assert main(["genesis", "new", "--name", "X", "--insee", "99999", "--validators", "1", "--lat", "48.1",
                 "--lon", "-1.7", "--elevation", "40", "--out", str(tmp_path / "b")]) == 0
    sky = load_genesis_file(tmp_path / "b" / "genesis.json").sky
    assert (sky.lat, sky.lon, sky.elevation_m) == (48.1, -1.7, 40)


def test_simulated_meter_never_exceeds_the_table():
    """A 9 kWc roof on a clear-ish June day, read every minute: every export delta fits
    the bare table (no margin), so the ledger's cap never refuses a simulated meter."""
    sky = compute_sky(43.9493, 4.8055, 23)
    weather = Weather(3, sky.lat, sky.lon, sky)
    start = int(dt.datetime(2026, 6, 21, tzinfo=dt.timezone.utc).timestamp())
    sim = MeterSim(household_profile(7, 9000, 9, annual_kwh=2500, weather=weather), start_t=start)
    last, exported, bound = sim.index_at(start), 0, 0
    for t in range(start + 60, start + DAY_S + 1, 60):
        now = sim.index_at(t)
        delta = now[1] - last[1]
        assert delta <= sky.compute_export_cap_wh(9000, 10_000, t - 60, t), t
        exported, bound, last = exported + delta, bound + sky.compute_export_cap_wh(9000, 10_000, t - 60, t), now
    assert 0 < exported < bound


def test_meter_simulate_uses_the_genesis_table(tmp_path, capsys):
    assert main(["genesis", "new", "--name", "Avignon", "--insee", "84007", "--validators", "1",
                 "--out", str(tmp_path / "net")]) == 0
    genesis = load_genesis_file(tmp_path / "net" / "genesis.json")
    doc = compute_hourly_totals(10, dt.date(2026, 6, 21), 0, genesis)
    assert all(h["export_wh"] <= h["clear_sky_cap_wh"] for h in doc["hours"])
    assert sum(h["clear_sky_cap_wh"] for h in doc["hours"][:4]) == 0      # 00:00-04:00 local
    capsys.readouterr()
    assert main(["meter", "simulate", "--households", "10", "--day", "2026-06-21", "--json",
                 "--genesis", str(tmp_path / "net" / "genesis.json")]) == 0
    assert json.loads(capsys.readouterr().out)["hours"] == doc["hours"]
    assert main(["meter", "simulate", "--day", "2026-06-21", "--genesis", str(tmp_path / "nope.json")]) == 1
    assert "genesis not found" in capsys.readouterr().err
