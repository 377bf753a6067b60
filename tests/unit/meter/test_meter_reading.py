"""node/meter/reading.py: frame-to-reading mapping and capture summaries (DESIGN §10)."""

from __future__ import annotations

import re

import pytest

from node.meter.reading import Reading, compute_reading, parse_capture
from node.meter.tic import TicParser
from tests.unit.meter.meter_helpers import (
    CAPTURES, historic_base_frame, load_capture, make_frame, make_group, split_frames,
)


def _frame(data: bytes):
    frames = TicParser().feed(data)
    assert len(frames) == 1
    return frames[0]


def _standard(*extra: bytes, east: str = "000012345") -> bytes:
    return make_frame(make_group("ADSC", "021412345678", True), make_group("EAST", east, True), *extra)


def test_historic_base_capture_reading():
    summary = parse_capture(load_capture("historic_base_1frame.bin"))
    assert summary.readings == (Reading("012345678910", 123456789, 0, 2390, None),)


def test_historic_bbr_capture_sums_the_six_tempo_indexes():
    data = load_capture("historic_bbr_10frames.bin")
    summary = parse_capture(data)
    assert len(summary.readings) == 10
    for raw, reading in zip(split_frames(data), summary.readings, strict=True):
        values = re.findall(rb"\nBBRH(?:C|P)J[BWR] (\d{9}) ", raw)
        assert len(values) == 6 and reading.import_wh == sum(int(v) for v in values)
        assert reading.power_va == int(re.search(rb"\nPAPP (\d{5}) ", raw).group(1))
        assert reading.export_wh == 0 and reading.time is None and reading.meter == "031428571428"
    imports = [r.import_wh for r in summary.readings]
    assert imports == sorted(imports) and imports[-1] - imports[0] == 19   # BBRHCJB rising


def test_standard_capture_reading_uses_east_sinsts_and_date():
    summary = parse_capture(load_capture("standard_base_1frame.bin"))
    assert summary.readings == (Reading("012345678910", 3519702, 0, 263, "2024-02-10T12:13:55+01:00"),)


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_summary_json_has_the_issue_6_shape(name):
    doc = parse_capture(load_capture(name)).as_json()
    assert set(doc) == {"mode", "frames", "readings", "errors"}
    assert doc["errors"] == {"checksum": 0, "partial_frames": 0, "interrupted_frames": 0}
    assert doc["mode"] == name.split("_")[0]
    for reading in doc["readings"]:
        assert set(reading) == {"meter", "import_wh", "export_wh", "power_va", "time"}


def test_all_errors_adds_every_counter():
    errors = parse_capture(load_capture("historic_base_1frame.bin")).as_json(all_errors=True)["errors"]
    assert {"checksum", "partial_frames", "interrupted_frames", "malformed_groups", "garbage_bytes"} <= set(errors)


def test_standard_export_is_eait_for_producers():
    frame = _frame(_standard(make_group("EAIT", "000004321", True), make_group("SINSTS", "00042", True)))
    assert compute_reading(frame) == Reading("021412345678", 12345, 4321, 42, None)


def test_summer_date_has_a_plus_two_offset():
    frame = _frame(_standard(make_group("DATE", "", True, date="E260621143000")))
    assert compute_reading(frame).time == "2026-06-21T14:30:00+02:00"


@pytest.mark.parametrize("stamp", ["X260621143000", "E261321143000", "E2606211430", "E26062114300A"])
def test_invalid_date_gives_no_time_but_a_reading(stamp):
    frame = _frame(_standard(make_group("DATE", "", True, date=stamp)))
    reading = compute_reading(frame)
    assert reading is not None and reading.time is None


@pytest.mark.parametrize("option, groups, expected", [
    ("HC..", [("HCHC", "000001000"), ("HCHP", "000002000")], 3000),
    ("EJP.", [("EJPHN", "000000500"), ("EJPHPM", "000000070")], 570),
    ("BASE", [("BASE", "000000042")], 42),
])
def test_historic_tariff_options(option, groups, expected):
    frame = _frame(make_frame(make_group("ADCO", "031428571428"), make_group("OPTARIF", option),
                              *(make_group(label, value) for label, value in groups)))
    assert compute_reading(frame).import_wh == expected


def test_historic_without_optarif_uses_a_complete_family():
    frame = _frame(make_frame(make_group("ADCO", "031428571428"), make_group("HCHC", "000000010"),
                              make_group("HCHP", "000000020")))
    assert compute_reading(frame).import_wh == 30


def test_invalid_energy_group_checksum_gives_no_reading():
    data = make_frame(make_group("ADCO", "031428571428"), make_group("OPTARIF", "BASE"),
                      make_group("BASE", "000001000", bad_checksum=True), make_group("PAPP", "00500"))
    assert compute_reading(_frame(data)) is None
    summary = parse_capture(data)
    assert summary.frames == 1 and summary.readings == () and summary.stats.checksum == 1


def test_invalid_power_group_checksum_keeps_the_reading_without_power():
    data = make_frame(make_group("ADCO", "031428571428"), make_group("OPTARIF", "BASE"),
                      make_group("BASE", "000001000"), make_group("PAPP", "00500", bad_checksum=True))
    assert compute_reading(_frame(data)) == Reading("031428571428", 1000, 0, None, None)


@pytest.mark.parametrize("data", [
    pytest.param(make_frame(make_group("ADCO", "031428571428"), make_group("OPTARIF", "HC.."),
                            make_group("HCHC", "000000010")), id="incomplete tariff family"),
    # A dropped tariff index gives no reading, though HCHC or BASE alone could make one.
    pytest.param(make_frame(make_group("ADCO", "031428571428"), make_group("HCHC", "000000010"),
                            make_group("HCHP", "000000020", bad_checksum=True), make_group("BASE", "000000099")),
                 id="tariff index checksum"),
    pytest.param(_standard(make_group("EAIT", "000004321", True, bad_checksum=True)), id="EAIT checksum"),
    pytest.param(historic_base_frame(meter="12345"), id="short meter id"),
    pytest.param(historic_base_frame(meter="03142857142X"), id="meter id not digits"),
    pytest.param(historic_base_frame(meter="0314285714281"), id="long meter id"),
    pytest.param(make_frame(make_group("ADCO", "031428571428"), make_group("BASE", "00000-100")),
                 id="index value not digits"),
    pytest.param(make_frame(make_group("OPTARIF", "BASE"), make_group("BASE", "000000042")), id="no meter id"),
])
def test_invalid_frame_gives_no_reading(data):
    assert compute_reading(_frame(data)) is None


def test_capture_mode_is_the_majority_mode():
    historic = load_capture("historic_bbr_10frames.bin")
    standard = load_capture("standard_base_1frame.bin")
    assert parse_capture(standard + historic).mode.value == "historic"
    assert parse_capture(standard + split_frames(historic)[0]).mode.value == "standard"   # tie: first
    assert parse_capture(b"").as_json()["mode"] is None
