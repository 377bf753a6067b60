"""The late-join manifest's pieces: validators' snapshot interval, the join check, and
how a joined node's log tells state sync from a replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.e2e.manifest import ManifestError, load_manifest, parse_manifest
from node.e2e.membership import Membership
from node.e2e.runner import check_joins
from node.localnet.cluster import Cluster, NodeProc

REGISTER = "[[perturb]]\nat = 30\nop = 'register'\nduration = 0\n"


def parse(text: str):
    return parse_manifest(text.encode(), Path("m.toml"))


def test_the_shipped_late_join_manifest_joins_after_two_snapshots():
    m = load_manifest(Path(__file__).parents[2] / "e2e" / "manifests" / "late-join.toml")
    assert m.snapshot_interval == 40 and m.check.join_after_snapshots == 2
    assert [p.op for p in m.perturb] == ["register"]
    # A household's full node state-syncs: a clear commune (a sealing one's joins light).
    assert m.seal is False


def test_validators_run_with_the_manifest_snapshot_interval(tmp_path):
    node = NodeProc(0, "validator-0", tmp_path, "127.0.0.1:1")
    joined = NodeProc(1, "member-1", tmp_path, "127.0.0.1:2", args=("node", "join", "--home", str(tmp_path)))
    cluster = Cluster([node], None, None, ("--snapshot-interval", "40"))
    assert cluster.command(node)[-3:] == ["--no-state-sync", "--snapshot-interval", "40"]
    assert "--snapshot-interval" not in cluster.command(joined)


@pytest.mark.parametrize("text, words", [
    ("[check]\njoin_after_snapshots = 2\n" + REGISTER, "needs snapshot_interval"),
    ("snapshot_interval = 40\n[check]\njoin_after_snapshots = 2\n", "needs a register op"),
    ("snapshot_interval = -1\n", "outside"),
    ("snapshot_interval = 'often'\n", "expected int"),
    ("snapshot_interval = 40\n[check]\njoin_after_snapshots = 2\n" + REGISTER, "needs seal = false"),
])
def test_invalid_late_join_manifest_is_one_line(text, words):
    """A sealing commune (the default) runs a joining household light: no snapshot to check."""
    with pytest.raises(ManifestError) as err:
        parse(text)
    assert words in str(err.value) and "\n" not in str(err.value)


def reg(joined_from, error=None, op="register"):
    return {"op": op, "node": "member-1", "error": error, "joined_from": joined_from}


def test_check_joins_wants_state_sync_from_a_late_enough_snapshot():
    assert check_joins([reg(80), reg(None, op="rotate_household")], 40, 2) == []
    assert check_joins([reg(None)], 40, 2) == ["register member-1: its node replayed from genesis instead of "
                                                "state sync"]
    assert "before 2 snapshots" in check_joins([reg(40)], 40, 2)[0]
    assert check_joins([reg(None, error="E2EError: boom")], 40, 2) == []   # the error is reported already


def test_a_joined_nodes_log_tells_the_snapshot_height(tmp_path):
    node = NodeProc(5, "member-1", tmp_path, "127.0.0.1:1")
    (tmp_path / "node.log").write_bytes(b"12:00 INFO state sync from 12D3Koo: snapshot of height 120\n"
                                        b"12:01 INFO state installed at height 120, root 0badc0de: block sync\n")
    assert Membership.find_snapshot_installed(node) == 120
    (tmp_path / "node.log").write_bytes(b"12:00 INFO no peer serves a snapshot: block sync from genesis\n")
    assert Membership.find_snapshot_installed(node) is None
