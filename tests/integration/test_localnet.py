"""`voisinage localnet up`: real processes on loopback, the JSON report and a clean Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import plyvel

from node.localnet.ports import find_listen_port_block

REPORT_KEYS = {"agree", "nodes", "blocks", "txs", "readings_committed", "settled_intervals",
               "commit_latency_s", "duration_s"}


def localnet(tmp_path, *extra: str) -> list[str]:
    http = find_listen_port_block(4)
    return [sys.executable, "-m", "node.cli", "localnet", "up", "--validators", "2", "--households", "1",
            "--home", str(tmp_path / "net"), "--http-base", str(http), *extra]


def test_duration_run_writes_a_report_of_agreeing_nodes(tmp_path):
    report = tmp_path / "r.json"
    done = subprocess.run(localnet(tmp_path, "--duration", "20", "--report", str(report), "--no-seal"),
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(report.read_text())
    assert REPORT_KEYS <= set(doc)
    assert doc["agree"] is True
    assert [n["name"] for n in doc["nodes"]] == ["validator-0", "validator-1", "household-0"]
    assert all(n["height"] >= 2 for n in doc["nodes"])
    assert doc["readings_committed"] > 0 and doc["blocks"] >= 2
    assert "Traceback" not in done.stderr


def test_sealed_localnet_runs_light_households_and_agrees(tmp_path):
    # docs/privacy.md "Sealed payloads": --seal makes a sealing genesis; the household node
    # runs --light (no block bodies), its meter seals its readings, and the agreement check
    # holds its state hash to the validators' next header.
    report = tmp_path / "r.json"
    done = subprocess.run(localnet(tmp_path, "--duration", "25", "--report", str(report)),   # seals by default
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "payloads sealed" in done.stdout
    doc = json.loads(report.read_text())
    assert doc["agree"] is True, doc["problems"]
    assert [n["light"] for n in doc["nodes"]] == [False, False, True]
    assert json.loads((tmp_path / "net" / "genesis.json").read_text())["sealing"] is not None
    assert doc["readings_committed"] > 0
    assert "Traceback" not in done.stderr


def test_ctrl_c_stops_every_node_cleanly(tmp_path):
    proc = subprocess.Popen(localnet(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("dashboard:") or not line:
                break
        assert any(line.startswith("dashboard:") for line in lines), "".join(lines)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "SIGINT: stopping every node" in out
    assert "Traceback" not in err
    # Every node process was stopped: their homes' LevelDB locks are free again.
    for name in ("validator-0", "validator-1", "household-0"):
        plyvel.DB(str(tmp_path / "net" / name / "db")).close()
