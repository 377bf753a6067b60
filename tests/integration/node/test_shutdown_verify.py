"""SIGTERM shuts a node down cleanly and it restarts where it was;
``voisinage node verify`` replays a real run's home and catches tampering (DESIGN §8)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import plyvel
import pytest

from consensus.block import Block, Commit
from node.store import layout as L
from tests.support.nodes import Cluster, run_cli
from tests.support.wait import wait_for
from wire import MAX_BLOCK_BYTES, decode


def verify(home: Path) -> tuple[int, dict | str]:
    done = run_cli("node", "verify", "--home", str(home), "--json")
    assert "Traceback" not in done.stderr
    if done.returncode == 0:
        return 0, json.loads(done.stdout)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return done.returncode, lines[0]


@pytest.fixture
def stopped_network(cluster_of) -> Cluster:
    """4 validators and a household ran to height >= 4, then all got SIGTERM."""
    cluster = cluster_of(4, 1)
    nodes = cluster.start(*cluster.validator_names, "household-0")
    cluster.wait_height(4, nodes)
    for node in nodes:
        node.signal(15)
    codes = {node.name: node.wait() for node in nodes}
    assert codes == {node.name: 0 for node in nodes}, cluster.logs()
    return cluster


def test_sigterm_exits_cleanly_and_restarts_at_the_same_height_and_state_hash(stopped_network) -> None:
    cluster = stopped_network
    v0 = cluster.nodes["validator-0"]
    assert "received SIGTERM" in v0.log_path.read_text() and "store closed at height" in v0.log_path.read_text()
    code, report = verify(v0.home)     # opens the db: a stale LevelDB lock would fail here
    assert code == 0, report
    # Alone, one validator of four cannot commit: it must come back exactly where it stopped.
    v0.start()
    status = v0.wait_ready()
    assert (status["height"], status["state_hash"]) == (report["height"], report["state_hash"])
    # With the others back the chain goes on from there, on the same blocks.
    others = [cluster.nodes[n].start() for n in cluster.validator_names[1:]]
    cluster.wait_height(report["height"] + 2, [v0, *others])
    cluster.assert_agree([v0, *others])


def test_node_verify_replays_a_real_run_and_refuses_tampered_copies(stopped_network, tmp_path) -> None:
    cluster = stopped_network
    house = cluster.nodes["household-0"].home
    code, report = verify(house)
    assert code == 0, report
    height = report["height"]
    assert height >= 4 and report["blocks"] == height and report["sign_state"] is None
    code, v_report = verify(cluster.nodes["validator-1"].home)
    assert code == 0 and v_report["sign_state"] is not None
    # Each tampering of a copy is found and named by height.
    for name, tamper, expected in [
        ("state", tamper_state_entry, f"height {height}: state entry"),
        ("header", tamper_block_time, "height 2: stored block id"),
        ("commit", tamper_commit_sig, "height 3:"),
        ("hash", tamper_state_hash, f"height {height}: stored state hash"),
    ]:
        copy = tmp_path / f"tampered-{name}"
        shutil.copytree(house, copy)
        with plyvel.DB(str(copy / "db")) as db:
            tamper(db)
        code, line = verify(copy)
        assert code == 1 and line.startswith("error:") and expected in line, (name, line)


def tamper_state_entry(db: plyvel.DB) -> None:
    key, value = next(iter(db.iterator(prefix=L.STATE + b"acct/")))
    db.put(key, value + b"\x00")


def tamper_block_time(db: plyvel.DB) -> None:
    block = decode(db.get(L.key_block(2)), Block, MAX_BLOCK_BYTES)
    header = replace(block.header, time_ms=block.header.time_ms + 1)
    db.put(L.key_block(2), replace(block, header=header).encode())


def tamper_commit_sig(db: plyvel.DB) -> None:
    commit = decode(db.get(L.key_commit(3)), Commit, MAX_BLOCK_BYTES)
    bad = replace(commit.sigs[0], sig=bytes(64))
    db.put(L.key_commit(3), replace(commit, sigs=(bad, *commit.sigs[1:])).encode())


def tamper_state_hash(db: plyvel.DB) -> None:
    db.put(L.META_STATE_HASH, bytes(32))


def test_invalid_verify_of_a_home_without_a_chain(cluster_of) -> None:
    cluster = cluster_of(1)
    code, line = verify(cluster.commune.home("validator-0"))
    assert code == 1 and "holds no database yet" in line
    code, line = verify(cluster.commune.root / "nowhere")
    assert code == 1 and "home directory not found" in line


def test_node_verify_reports_a_running_nodes_lock(cluster_of) -> None:
    cluster = cluster_of(1)
    (node,) = cluster.start("validator-0")
    wait_for(lambda: node.height() >= 1, 60, "a first block", cluster.logs)
    code, line = verify(node.home)
    assert code == 1 and "is locked" in line
