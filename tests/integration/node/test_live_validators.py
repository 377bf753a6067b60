"""Issue 16 item 5: a validator added by ValidatorSetChange signs from h+2 without a
restart of anyone, and stops once removed (DESIGN §4, §12). Real processes, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from node.home.homedir import KEY_FILE
from node.home.keyfile import load_key
from tests.support.nodes import CONVERGE_S, Cluster, NodeProc, run_cli
from tests.support.wait import wait_for
from tests.integration.node.test_converge import find_tx

WATCHED_HEIGHTS = 6


def change_via_cli(cluster: Cluster, tmp: Path, args: list[str], signers: list[str]) -> str:
    """propose-change, one cosign per signer, submit: the tx id."""
    tmp.mkdir(parents=True, exist_ok=True)
    url = cluster.nodes["validator-0"].url
    path = tmp / "change-0.json"
    done = run_cli("validator", "propose-change", "--node", url, *args, "--out", str(path))
    assert done.returncode == 0, done.stderr
    for i, name in enumerate(signers, 1):
        out = tmp / f"change-{i}.json"
        done = run_cli("validator", "cosign", "--in", str(path), "--key",
                       str(cluster.commune.home(name) / KEY_FILE), "--out", str(out))
        assert done.returncode == 0, done.stderr
        path = out
    done = run_cli("validator", "submit", "--in", str(path), "--node", url)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def wait_committed(cluster: Cluster, node: NodeProc, tx_id: str, start: int) -> int:
    return wait_for(lambda: find_tx(node, tx_id, start), CONVERGE_S, "the change committed", cluster.logs)


def signers_of_commit(node: NodeProc, height: int) -> set[str]:
    block = node.block(height)
    return {s["validator"] for s in block["commit"]["sigs"]} if block and block["commit"] else set()


def first_signed(node: NodeProc, key: str, start: int) -> int | None:
    return next((h for h in range(start, node.height() + 1) if key in signers_of_commit(node, h)), None)


def test_added_validator_signs_from_h_plus_2_and_stops_once_removed(cluster_of, tmp_path: Path) -> None:
    cluster = cluster_of(4, 1)
    cluster.start(*cluster.validator_names, "household-0")
    cluster.wait_height(2)
    house, v0 = cluster.nodes["household-0"], cluster.nodes["validator-0"]
    key = load_key(cluster.commune.home("household-0") / KEY_FILE).public.hex()
    status = house.status()
    assert status["validator"] is False
    listen = json.loads((cluster.commune.home("household-0") / "config.json").read_text())["listen"]
    # A running household keeps its random libp2p identity: its address names that peer id.
    addr = f"{listen}/p2p/{status['peer_id']}"

    start = v0.height()
    added_id = change_via_cli(cluster, tmp_path / "add", ["--add", key, "--add-addr", addr],
                              ["validator-0", "validator-1", "validator-2"])
    h_add = wait_committed(cluster, v0, added_id, start)
    first = wait_for(lambda: first_signed(v0, key, h_add), CONVERGE_S, "the new validator's precommit in a commit",
                     cluster.logs)
    print(f"added in block {h_add}; first precommit in the commit of height {first}")
    assert first >= h_add + 2
    assert not any(key in signers_of_commit(v0, h) for h in range(1, h_add + 2))
    assert house.status()["validator"] is True
    assert (cluster.commune.home("household-0") / "sign_state.bin").exists()

    start = v0.height()
    removed_id = change_via_cli(cluster, tmp_path / "remove", ["--remove", key],
                                ["validator-0", "validator-1", "validator-2", "validator-3"])
    h_remove = wait_committed(cluster, v0, removed_id, start)
    cluster.wait_height(h_remove + 2 + WATCHED_HEIGHTS)
    last = max(h for h in range(h_add, h_remove + 2 + WATCHED_HEIGHTS) if key in signers_of_commit(v0, h))
    print(f"removed in block {h_remove}; last precommit in the commit of height {last}")
    assert last < h_remove + 2
    assert house.status()["validator"] is False
    cluster.assert_agree()
