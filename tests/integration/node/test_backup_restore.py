"""``node backup`` of a running validator (its own snapshot over GET /backup), ``node restore``
into a fresh home, and ``node verify`` of the restored home agreeing with the original;
the restored validator refuses to sign without its double-sign record (real processes)."""

from __future__ import annotations

import json

from node.consent.store import open_consent_store
from node.service.signstate import SIGN_STATE_EXIT
from node.store import Store
from node.store.store import DB_DIR
from tests.support.nodes import run_cli


def test_backup_while_running_restores_a_home_that_verifies_and_agrees(cluster_of, tmp_path) -> None:
    cluster = cluster_of(1, 0)
    v0 = cluster.start("validator-0")[0]
    cluster.wait_height(2, [v0])
    backup = tmp_path / "v0.bak"
    done = run_cli("node", "backup", "--home", str(v0.home), "--out", str(backup), "--node", v0.url)
    assert done.returncode == 0 and "running node" in done.stdout, done.stderr
    backed_up = int(done.stdout.split(" at height ")[1].split(":")[0])
    # The node went on committing while and after the backup was taken.
    cluster.wait_height(backed_up + 2, [v0])
    assert v0.stop() == 0

    restored = tmp_path / "restored"
    done = run_cli("node", "restore", "--in", str(backup), "--home", str(restored))
    assert done.returncode == 0, done.stderr
    verified = run_cli("node", "verify", "--home", str(restored), "--json")
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["height"] == backed_up
    with Store.open(v0.home / DB_DIR, create=False) as original, \
            Store.open(restored / DB_DIR, create=False) as copy:
        assert original.height() > copy.height()
        assert copy.block_id(backed_up) == original.block_id(backed_up)
        assert copy.block(backed_up) == original.block(backed_up)

    # The restore never carries sign_state.bin: the validator refuses to start, one line.
    refused = run_cli("node", "run", "--home", str(restored))
    assert refused.returncode == SIGN_STATE_EXIT
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "sign_state.bin is missing" in lines[0] and "--reset-sign-state-at-height" in lines[0]

    # A second restore into the now non-empty home is refused unless forced; nothing changes.
    again = run_cli("node", "restore", "--in", str(backup), "--home", str(restored))
    assert again.returncode == 1 and "--force" in again.stderr


def test_a_households_consents_go_with_its_backup_running_or_stopped(cluster_of, tmp_path) -> None:
    cluster = cluster_of(1, 1)
    v0, hh = cluster.start("validator-0", "household-0")
    cluster.wait_height(2, [v0, hh])
    added = run_cli("consent", "client", "add", "--name", "Watt App", "--redirect-uri", "https://watt.example/cb",
                    "--key", str(hh.home / "key.json"), "--node", hh.url, "--json")
    assert added.returncode == 0, added.stderr
    client_id = json.loads(added.stdout)["client_id"]

    running = tmp_path / "running.bak"
    done = run_cli("node", "backup", "--home", str(hh.home), "--out", str(running), "--node", hh.url)
    assert done.returncode == 0 and "running node" in done.stdout, done.stderr
    assert " 0 consent entries" not in done.stdout and "consent entries" in done.stdout
    assert hh.stop() == 0
    stopped = tmp_path / "stopped.bak"
    done = run_cli("node", "backup", "--home", str(hh.home), "--out", str(stopped))
    assert done.returncode == 0 and "stopped node" in done.stdout, done.stderr

    for name, file in (("from-running", running), ("from-stopped", stopped)):
        restored = tmp_path / name
        done = run_cli("node", "restore", "--in", str(file), "--home", str(restored))
        assert done.returncode == 0, done.stderr
        with open_consent_store(restored) as consent:
            assert consent.get_client(client_id)["name"] == "Watt App"
