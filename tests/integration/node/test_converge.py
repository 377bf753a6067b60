"""4 validators and 2 households converge; a tx commits everywhere;
a household started late catches up by block sync (DESIGN §7)."""

from __future__ import annotations

from pathlib import Path

import httpx

from node.home.homedir import KEY_FILE, load_home
from node.home.keyfile import load_key
from tests.support.nodes import CONVERGE_S, Cluster, NodeProc
from tests.support.wait import wait_for
from tokens.txs import MeterReading
from wire import sign_message


def signed_reading(cluster: Cluster, household: str, seq: int, t: int) -> bytes:
    key = load_key(cluster.commune.home(household) / KEY_FILE)
    genesis = cluster.commune.genesis
    spec = next(h for h in genesis["households"] if h["key"] == key.public.hex())
    chain_id = load_chain_id(cluster.commune.home(household))
    tx = MeterReading(signer=key.public, meter=spec["meter"], seq=seq, t=t, import_wh=1000 + seq,
                      export_wh=0, sig=b"")
    return sign_message(tx, chain_id, key).encode()


def load_chain_id(home: Path) -> bytes:
    return load_home(home).genesis.chain_id


def find_tx(node: NodeProc, tx_id: str, start: int) -> int | None:
    """The height (from ``start`` on) of the block holding ``tx_id`` on ``node``, if any."""
    for h in range(start, node.height() + 1):
        block = node.block(h)
        if block and any(tx["id"] == tx_id for tx in block["txs"]):
            return h
    return None


def test_validators_and_households_converge_and_commit_a_posted_tx(cluster_of) -> None:
    cluster = cluster_of(4, 2)
    nodes = cluster.start(*cluster.validator_names, *cluster.household_names)
    cluster.wait_height(3)
    house = cluster.nodes["household-0"]
    status = house.status()
    t = status["time_ms"] // 1000
    response = httpx.post(f"{house.url}/tx", content=signed_reading(cluster, "household-0", 1, t), timeout=5)
    assert response.status_code == 202, response.text
    tx_id = response.json()["id"]
    found: dict[str, int] = {}

    def committed_everywhere() -> bool:
        for node in nodes:
            if node.name not in found:
                height = find_tx(node, tx_id, status["height"] + 1)
                if height is not None:
                    found[node.name] = height
        return len(found) == len(nodes)

    wait_for(committed_everywhere, CONVERGE_S, "the posted reading committed on every node", cluster.logs)
    heights = list(found.values())
    assert len(set(heights)) == 1, found
    top = max(heights) + 1
    cluster.wait_height(top)
    assert cluster.assert_agree(nodes, upto=top) == top
    for node in nodes:
        status = node.status()
        assert status["peers"] >= 4 and status["chain_id"] == load_chain_id(node.home).hex()
        assert any(a.endswith("/p2p/" + status["peer_id"]) for a in status["listen_addrs"])
    assert [n.status()["validator"] for n in nodes] == [True] * 4 + [False] * 2


def test_household_started_late_syncs_from_genesis(cluster_of) -> None:
    cluster = cluster_of(4, 1)
    validators = cluster.start(*cluster.validator_names)
    cluster.wait_height(6, validators)
    [late] = cluster.start("household-0")
    target = cluster.wait_caught_up(late, validators)
    log = late.log_path.read_text()
    assert "block sync" in log, late.tail()
    assert late.metric("voisinage_synced_blocks_total") >= target - 2
    top = cluster.assert_agree([*validators, late], upto=target)
    assert late.block(top)["header"]["state_hash"] == validators[0].block(top)["header"]["state_hash"]
    # Once synced it follows consensus: the same state hash at the same height.
    cluster.wait_height(target + 2, [late])
    h = late.height()
    wait_for(lambda: all(v.height() >= h for v in validators), CONVERGE_S, "validators", cluster.logs)
    assert {v.block(h)["id"] for v in validators} == {late.block(h)["id"]}
