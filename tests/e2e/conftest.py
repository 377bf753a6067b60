"""e2e suite: real node processes, signals, and (as root) network namespaces."""

from __future__ import annotations

import os

import pytest

ROOT_REASON = ("needs root: network namespaces, veths and a bridge (run as root, e.g. in CI); "
               "the loopback scenarios in test_runs.py cover kill/pause/restart without root")


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: fault injection on real node processes (minutes)")


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason=ROOT_REASON)
