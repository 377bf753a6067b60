"""State sync on real node processes (docs/statesync.md): a validator run with a small
``--snapshot-interval`` takes snapshots; a household node started later on an empty home
installs the newest one over libp2p, checked against the header chain from genesis,
block-syncs from there and agrees with the validator; `node verify` then replays its
home from the snapshot."""

from __future__ import annotations

import re

from tests.support.nodes import run_cli
from tests.support.wait import wait_for


def test_late_joiner_state_syncs_from_a_validator_and_agrees(cluster_of) -> None:
    cluster = cluster_of(1, 1)
    validator = cluster.node("validator-0", "--snapshot-interval", "8")
    cluster.start("validator-0")
    snapshots = validator.home / "snapshots"
    wait_for(lambda: len(list(snapshots.glob("*/meta.bin"))) >= 2 and validator.height() >= 20, 180,
             "two complete snapshots on the validator", cluster.logs)
    late = cluster.node("household-0").start()
    late.wait_ready()
    log = late.log_path
    wait_for(lambda: "state installed at height" in log.read_text(), 60, "the late node's state sync", cluster.logs)
    base = int(re.search(r"state installed at height (\d+)", log.read_text()).group(1))
    assert base >= 16, log.read_text()
    top = cluster.wait_caught_up(late, [validator])
    common = cluster.assert_agree([validator, late], since=base + 1)
    assert common >= top > base
    # Nothing below the snapshot was replayed or stored.
    assert late.get("/blocks/1").status_code == 404
    assert late.get(f"/blocks/{base + 1}").status_code == 200
    assert late.stop() == 0
    done = run_cli("node", "verify", "--home", str(late.home))
    assert done.returncode == 0, done.stderr
    assert f"from the snapshot of height {base}" in done.stdout
