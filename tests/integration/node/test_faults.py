"""With 2 of 4 validators killed no block commits, and once they restart
blocks commit again; a rogue peer gossiping garbage and forgeries is rejected while the
network keeps committing (DESIGN §6 quorum, §7 gossip validation)."""

from __future__ import annotations

import json
import subprocess
import time

from tests.support.nodes import CLI, REPO

STALL_S = 6.0        # wall time over which a halted network must not commit


def test_two_of_four_validators_killed_halts_and_restart_resumes(cluster_of) -> None:
    cluster = cluster_of(4)
    nodes = cluster.start(*cluster.validator_names)
    cluster.wait_height(3, nodes)
    alive, dead = nodes[:2], nodes[2:]
    for node in dead:
        assert node.kill() == -9
    time.sleep(3.0)                      # a commit already decided may still land
    halted = {n.name: n.height() for n in alive}
    time.sleep(STALL_S)
    assert {n.name: n.height() for n in alive} == halted, "blocks committed without a quorum"
    # Algorithm 1 with 2 of 4: round 0 started, prevoted nil, then waits for a quorum.
    assert all(n.status()["step"] in ("propose", "prevote", "precommit") for n in alive)
    for node in dead:
        node.start()
    cluster.wait_height(max(halted.values()) + 3, nodes)
    cluster.assert_agree(nodes)


def test_rogue_peer_is_rejected_and_the_network_keeps_committing(cluster_of, tmp_path) -> None:
    cluster = cluster_of(4, 1)
    cluster.allow_bans = True
    nodes = cluster.start(*cluster.validator_names, "household-0")
    cluster.wait_height(2, nodes)
    target = nodes[0]
    peer = target.status()["listen_addrs"][0]
    rogue = subprocess.run(
        [sys_executable(), "-m", "tests.integration.node.rogue_peer", str(tmp_path / "rogue"),
         str(cluster.commune.root / "genesis.json"), peer, "8"],
        cwd=REPO, capture_output=True, text=True, timeout=180)
    assert rogue.returncode == 0, rogue.stderr[-2000:]
    report = json.loads(rogue.stdout.strip().splitlines()[-1])
    assert report["sent"] == 48
    metrics = target.get("/metrics").text
    assert target.metric("voisinage_gossip_rejected_total") > 0, metrics
    # Garbage, a forged signature and a forged vote were each rejected for what they are
    # (all in the first round, before the ban stopped the rest at the door).
    for reason in ("malformed", "bad_signature", "invalid_vote"):
        assert f'voisinage_gossip_rejected_total{{reason="{reason}"}}' in metrics, metrics
    rogue_id = report["peer_id"]
    assert [line for line in cluster.get_bans() if rogue_id in line], target.tail()
    assert all(rogue_id in line for line in cluster.get_bans()), cluster.get_bans()
    # The attack stayed at the door: nobody else judged a forgery, and nothing was relayed.
    assert all(n.metric("voisinage_gossip_rejected_total") == 0 for n in nodes[1:])
    after = max(n.height() for n in nodes)
    cluster.wait_height(after + 3, nodes)
    top = cluster.assert_agree(nodes)
    committed = {tx["id"] for h in range(1, top + 1) for tx in nodes[1].block(h)["txs"]}
    assert committed.isdisjoint(report["forged_tx_ids"])
    assert all(n.is_running() for n in nodes)


def sys_executable() -> str:
    return CLI[0]
