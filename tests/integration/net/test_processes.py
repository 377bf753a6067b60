"""Three separate OS processes relay batched tx gossip A -> B -> C with no loss."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.nodes import REPO, terminate_all

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TX_COUNT = 2000


def start(role: str, home: Path, *args: str) -> subprocess.Popen:
    home.mkdir()
    return subprocess.Popen([sys.executable, "-m", "tests.integration.net.netproc", role, str(home), *args],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def read_json_line(proc: subprocess.Popen, timeout: float) -> dict:
    """The next JSON line of ``proc``; fail (not hang) if it does not come in time."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"no output from {proc.args[3]} within {timeout} s")
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"{proc.args[3]} exited with {proc.wait()} before answering")
    return json.loads(line)


def test_three_processes_relay_paced_batched_txs_without_loss(tmp_path):
    procs: list[subprocess.Popen] = []
    try:
        relay = start("relay", tmp_path / "b")
        procs.append(relay)
        relay_addr = read_json_line(relay, 30)["addr"]
        sink = start("sink", tmp_path / "c", "--peer", relay_addr, "--expect", str(TX_COUNT))
        procs.append(sink)
        read_json_line(sink, 30)
        source = start("source", tmp_path / "a", "--peer", relay_addr,
                       "--count", str(TX_COUNT), "--rate", "1000")
        procs.append(source)
        read_json_line(source, 30)
        sent = read_json_line(source, 60)
        received = read_json_line(sink, 60)
        assert sent["sent"] == TX_COUNT
        assert received == {"received": TX_COUNT}
        # Batched: each chunk of 50 txs leaves in one gossip message (or fewer).
        assert 1 <= sent["batches"] <= TX_COUNT // 50
    finally:
        terminate_all(procs, timeout=10)
