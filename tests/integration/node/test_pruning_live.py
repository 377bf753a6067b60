"""Pruning on real node processes (docs/state.md "Pruning"): a household node run with
``--pruning default`` and small windows answers 410 for a pruned proof and 404 for a
pruned block body, and a node that joins late, asking it for blocks from height 1, is
told "pruned" and syncs from another peer once one is there."""

from __future__ import annotations

from tests.support.wait import wait_for
from tokens.layout import META_HEIGHT


def test_pruned_household_refuses_old_proofs_and_a_late_joiner_syncs_elsewhere(cluster_of) -> None:
    cluster = cluster_of(1, 2)
    validator = cluster.node("validator-0")
    pruned = cluster.node("household-0", "--keep-states", "5", "--keep-blocks", "5")
    cluster.start("validator-0", "household-0")
    cluster.wait_height(32, [validator, pruned])
    # A public state entry: a household's own needs its signature (docs/privacy.md).
    key = META_HEIGHT.hex()
    gone = pruned.get(f"/proofs/{key}?height=1")
    assert gone.status_code == 410 and "pruned" in gone.json()["error"], gone.text
    assert pruned.get(f"/proofs/{key}").status_code == 200
    assert pruned.get("/blocks/1").status_code == 404
    assert validator.get("/blocks/1").status_code == 200
    # Only the pruned node is up: the late joiner is told "pruned" and stays at 0.
    addr = pruned.status()["listen_addrs"][0]
    validator.stop()
    late = cluster.node("household-1", "--peer", addr).start()
    late.wait_ready()
    wait_for(lambda: "pruned: blocks are kept here from height" in late.log_path.read_text(), 60,
             "the late node to be told the blocks are pruned", cluster.logs)
    assert late.height() == 0
    # With the validator back, it syncs from there and agrees.
    validator.start()
    validator.wait_ready()
    cluster.wait_height(pruned.height() + 2, [late])
    cluster.assert_agree([validator, late])
