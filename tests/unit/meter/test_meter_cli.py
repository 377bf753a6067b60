"""node/commands/meter.py: ``voisinage meter parse | tic | simulate``."""

from __future__ import annotations

import json

import pytest

from node.cli import main
from node.home.keyfile import save_key
from tests.support.fake_node import NodeStub
from tests.unit.meter.meter_helpers import CAPTURES, TIC_DIR, load_capture
from wire import Keypair

EXPECTED_JSON = {
    "historic_base_1frame.bin": {
        "mode": "historic", "frames": 1,
        "readings": [{"meter": "012345678910", "import_wh": 123456789, "export_wh": 0, "power_va": 2390,
                      "time": None}],
        "errors": {"checksum": 0, "partial_frames": 0, "interrupted_frames": 0}},
    "standard_base_1frame.bin": {
        "mode": "standard", "frames": 1,
        "readings": [{"meter": "012345678910", "import_wh": 3519702, "export_wh": 0, "power_va": 263,
                      "time": "2024-02-10T12:13:55+01:00"}],
        "errors": {"checksum": 0, "partial_frames": 0, "interrupted_frames": 0}},
}


@pytest.mark.parametrize("name", sorted(EXPECTED_JSON))
def test_parse_json_output(name, capsys):
    assert main(["meter", "parse", str(TIC_DIR / name), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == EXPECTED_JSON[name]


def test_parse_json_of_the_ten_frame_capture(capsys):
    assert main(["meter", "parse", str(TIC_DIR / "historic_bbr_10frames.bin"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["frames"] == 10 and len(doc["readings"]) == 10
    assert [r["import_wh"] for r in doc["readings"]][::3] == [47371462, 47371468, 47371475, 47371481]


@pytest.mark.parametrize("name", CAPTURES)
def test_parse_table_output(name, capsys):
    assert main(["meter", "parse", str(TIC_DIR / name)]) == 0
    out = capsys.readouterr().out
    assert f"mode: {name.split('_')[0]}" in out and "checksum 0" in out and "import Wh" in out


def test_parse_counts_damage(tmp_path, capsys):
    damaged = bytearray(load_capture("historic_bbr_10frames.bin"))
    damaged[10] ^= 0x01      # a digit of the first frame's ADCO: breaks that group's checksum
    path = tmp_path / "damaged.bin"
    path.write_bytes(b"garbage" + bytes(damaged[:-40]) + b"\x04")
    assert main(["meter", "parse", str(path), "--json", "--all-errors"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["errors"]["checksum"] == 1 and doc["errors"]["interrupted_frames"] == 1
    assert doc["errors"]["garbage_bytes"] == len(b"garbage")
    assert doc["frames"] == 9 and len(doc["readings"]) == 8   # no reading from the damaged frame


def test_invalid_missing_capture_is_one_line_exit_1(tmp_path, capsys):
    assert main(["meter", "parse", str(tmp_path / "nope.bin")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: capture not found") and err.count("\n") == 1


def test_invalid_unreadable_capture_is_one_line_exit_1(tmp_path, capsys):
    assert main(["meter", "parse", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("error: cannot read")


def _key_file(tmp_path) -> str:
    path = tmp_path / "key.json"
    save_key(path, Keypair(b"\x05" * 32))
    return str(path)


@pytest.mark.parametrize("args, message", [
    (["--node", "http://x"], "exactly one of --device or --file"),
    (["--node", "http://x", "--file", "a", "--device", "b"], "exactly one of --device or --file"),
    (["--node", "ftp://x", "--file", "a"], "--node must be an http"),
    (["--node", "http://x", "--device", "/dev/null-nope", "--mode", "historic"], "cannot open /dev/null-nope"),
    (["--node", "http://x", "--device", "/dev/ttyX", "--mode", "fast"], "--mode must be"),
    (["--node", "http://x", "--file", "/nonexistent/tic.bin"], "cannot read /nonexistent/tic.bin"),
    (["--node", "http://x", "--file", "a", "--mode", "standard"], "--mode applies to --device only"),
])
def test_invalid_tic_options_are_one_line_errors(tmp_path, capsys, args, message):
    assert main(["meter", "tic", "--key", _key_file(tmp_path), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_invalid_tic_key_file(tmp_path, capsys):
    assert main(["meter", "tic", "--key", str(tmp_path / "none.json"), "--file", "x", "--node", "http://x"]) == 1
    assert "key file not found" in capsys.readouterr().err


def test_tic_from_file_submits_a_signed_reading(tmp_path, capsys):
    with NodeStub(bytes(32)) as node:
        code = main(["meter", "tic", "--file", str(TIC_DIR / "historic_bbr_10frames.bin"), "--node", node.url,
                     "--key", _key_file(tmp_path), "--every", "0.1", "--max-submissions", "1"])
    assert code == 0
    assert len(node.accepted) == 1 and node.accepted[0].import_wh == 47371481
    assert node.accepted[0].signer == Keypair(b"\x05" * 32).public
    assert "accepted seq" in capsys.readouterr().out


def test_simulate_json_day_for_ten_households(capsys):
    assert main(["meter", "simulate", "--households", "10", "--day", "2026-06-21", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["households"] == 10 and doc["producers"] == 3 and len(doc["hours"]) == 24
    assert doc["hours"][0]["start"] == "2026-06-21T00:00:00+02:00"
    assert sum(h["import_wh"] for h in doc["hours"]) == doc["total_import_wh"] > 0
    midday = doc["hours"][13]
    night = doc["hours"][3]
    assert midday["export_wh"] > midday["import_wh"] and night["export_wh"] == 0


def test_simulate_table_and_dst_day(capsys):
    assert main(["meter", "simulate", "--households", "3", "--day", "2026-03-29"]) == 0
    out = capsys.readouterr().out
    assert "hour (local)" in out and "total" in out
    assert main(["meter", "simulate", "--households", "2", "--day", "2026-03-29", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hours"]) == 23   # spring forward


def test_invalid_simulate_day(capsys):
    assert main(["meter", "simulate", "--day", "21/06/2026"]) == 1
    assert "--day must be YYYY-MM-DD" in capsys.readouterr().err
