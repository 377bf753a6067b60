"""`voisinage node join`: a new box joins a running commune from its genesis file and one peer,
with no genesis regeneration, syncs every block and follows the chain (DESIGN §7, §12)."""

from __future__ import annotations

import json
import signal
import subprocess

from tests.support.nodes import CLI, REPO, STOP_S
from tests.support.ports import free_port
from tests.support.wait import wait_for


def test_a_household_box_joins_a_running_commune_and_follows_its_chain(cluster_of, tmp_path) -> None:
    cluster = cluster_of(1)
    [validator] = cluster.start("validator-0")
    cluster.wait_height(3)
    listen = json.loads((validator.home / "config.json").read_text())["listen"]
    peer = f"{listen}/p2p/{validator.status()['peer_id']}"
    key = tmp_path / "household.json"
    made = subprocess.run([*CLI, "keys", "new", "--out", str(key)], cwd=REPO, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    box, http = tmp_path / "box", free_port()
    with open(tmp_path / "join.log", "wb") as log:
        joined = subprocess.Popen([*CLI, "node", "join", "--genesis", str(cluster.commune.root / "genesis.json"),
                                   "--peer", peer, "--home", str(box), "--key", str(key),
                                   "--listen", f"/ip4/127.0.0.1/tcp/{free_port()}", "--http", f"127.0.0.1:{http}"],
                                  cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        target = validator.height() + 2
        box_node = cluster.node("box")
        box_node.home, box_node.http_port = box, http
        wait_for(lambda: box_node.height() >= target, 60, f"the joined box at height {target}",
                 lambda: (tmp_path / "join.log").read_text(errors="replace")[-2000:] + cluster.logs())
        status = box_node.status()
        assert status["chain_id"] == validator.status()["chain_id"]
        assert (box / "genesis.json").read_bytes() == (cluster.commune.root / "genesis.json").read_bytes()
        cluster.assert_agree([validator, box_node], upto=target)
        assert "this node's key: " + json.loads(key.read_text())["public"] in (tmp_path / "join.log").read_text()
    finally:
        joined.send_signal(signal.SIGTERM)
        assert joined.wait(timeout=STOP_S) == 0


def test_invalid_join_with_another_communes_home_is_one_line_and_starts_nothing(cluster_of, tmp_path) -> None:
    first, other = cluster_of(1), cluster_of(1)
    done = subprocess.run([*CLI, "node", "join", "--genesis", str(other.commune.root / "genesis.json"),
                           "--peer", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
                           "--home", str(first.commune.home("validator-0"))],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and "another commune's chain" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
