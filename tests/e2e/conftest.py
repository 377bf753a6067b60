"""e2e suite: real node processes, signals, and (as root) network namespaces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

ROOT_REASON = ("needs root: network namespaces, veths and a bridge (run as root, e.g. in CI); "
               "the loopback scenarios in test_runs.py cover kill/pause/restart without root")


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: fault injection on real node processes (minutes)")


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason=ROOT_REASON)


def run_e2e(manifest: Path, tmp_path: Path, timeout: float = 900) -> tuple[subprocess.CompletedProcess, dict]:
    """``voisinage e2e run MANIFEST`` exactly as a developer runs it, in ``tmp_path``
    (``net/`` its work dir): the finished process and its JSON report."""
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "node.cli", "e2e", "run", str(manifest), "--report", str(report),
                           "--workdir", str(tmp_path / "net")], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    assert report.exists(), done.stderr[-2000:]
    return done, json.loads(report.read_text())
