"""An auditor appointed by a passed proposal, live (docs/privacy.md "Auditors").

One validator (a real ``node run`` process) of a commune that seals payloads. The
households propose and vote an auditor in with the CLI (``gov propose-auditors``, ``gov
vote``); ``gov auditors`` lists it and says a rotation is due; the validator rotates the
commune data key with the CLI, sealing it to itself and the auditor; a household sends a
sealed transfer and pays a neighbour for a service co-signed on the neighbour's side
(``tx service --out`` then ``tx cosign``, sealed); the registrar's official curve goes
sealed to the commune key. Then ``node verify --key AUDITOR_KEY`` on the stopped
validator's home replays the whole chain opening every payload with the auditor's key,
and a household's key is refused in one line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

from node.home.homedir import KEY_FILE
from node.home.keyfile import load_key, save_key
from node.home.receivekeys import load_receive_keys
from node.store.snapshots import SNAPSHOTS_DIR, list_snapshots
from node.store.store import StoreError
from tests.integration.node.test_sealed_live import get_signed
from tests.support.nodes import CLI, REPO, STOP_S, run_cli
from tests.support.ports import free_port
from tests.support.wait import wait_for
from wire import Keypair

WAIT_S = 180.0
SNAPSHOT_EVERY = 4


def ok(*args: str) -> str:
    done = run_cli(*args)
    assert done.returncode == 0, f"{args[:2]}: {done.stderr}"
    return done.stdout.strip()


def test_auditor_appointed_by_a_proposal_verifies_the_sealing_chain(cluster_of, tmp_path):
    cluster = cluster_of(1, 3, genesis_args=("--seal-payloads",))
    cluster.node("validator-0", "--snapshot-interval", str(SNAPSHOT_EVERY), "--snapshot-keep", "1")
    [v0] = cluster.start(*cluster.validator_names)
    root = cluster.commune.root
    hh = [str(root / f"household-{i}" / KEY_FILE) for i in range(3)]
    auditor = Keypair(os.urandom(32))
    auditor_file = tmp_path / "auditor.json"
    save_key(auditor_file, auditor)

    proposal = ok("gov", "propose-auditors", "--add", auditor.public.hex(), "--window", "40", "--node", v0.url,
                  "--key", hh[0])
    for key in hh:
        ok("gov", "vote", "--proposal", proposal, "--choice", "yes", "--node", v0.url, "--key", key)

    def appointed():
        doc = json.loads(ok("gov", "auditors", "--node", v0.url, "--json"))
        return doc if doc["auditors"] else None
    doc = wait_for(appointed, WAIT_S, "the auditors proposal to pass", cluster.logs)
    assert [a["key"] for a in doc["auditors"]] == [auditor.public.hex()] and doc["rotation_due"] is True
    assert "rotation of the commune data key is due" in ok("gov", "auditors", "--node", v0.url)

    # docs/privacy.md "Receive keys": the auditor's node cannot run before the rotation,
    # so its operator publishes the receive key its copy is to be sealed to.
    said = ok("validator", "publish-receive-key", "--key", str(auditor_file), "--node", v0.url)
    assert "saved in" in said and "published" in said
    [receive] = load_receive_keys(tmp_path / "receive_keys")
    wait_for(lambda: ((v0.get_json("/commune")["sealing"] or {}).get("receive") or {}).get(
        auditor.public.hex(), {}).get("public") == receive.hex(), WAIT_S, "the auditor's receive key", cluster.logs)
    vkey = str(root / "validator-0" / KEY_FILE)
    rotation, signed = tmp_path / "rotation.json", tmp_path / "signed.json"
    built = run_cli("validator", "rotate-data-key", "--key", vkey, "--out", str(rotation), "--node", v0.url)
    assert built.returncode == 0 and "published no receive key" not in built.stderr, built.stderr
    ok("validator", "cosign-data-key", "--in", str(rotation), "--key", vkey, "--out", str(signed), "--node", v0.url)
    ok("validator", "submit-data-key", "--in", str(signed), "--node", v0.url)
    wait_for(lambda: (v0.get_json("/commune")["sealing"] or {}).get("epoch") == 1, WAIT_S, "the rotation",
             cluster.logs)
    sealing = v0.get_json("/commune")["sealing"]
    assert auditor.public.hex() in sealing["holders"] and sealing["rotation_due"] is False

    # Sealed payloads under the auditor's epoch: a transfer, a service co-signed remotely.
    giver, provider = load_key(hh[0]), load_key(hh[1])
    ok("tx", "transfer", "--to", provider.public.hex(), "--amount", "55", "--node", v0.url, "--key", hh[0])
    half = tmp_path / "service.hex"
    ok("tx", "service", "--provider", provider.public.hex(), "--minutes", "20", "--out", str(half),
       "--node", v0.url, "--key", hh[0])
    ok("tx", "cosign", "--tx", str(half), "--node", v0.url, "--key", hh[1])

    def provider_balances():
        return (get_signed(v0, provider, f"/accounts/{provider.public.hex()}") or {}).get("balances", {})
    wait_for(lambda: provider_balances().get("kwh") == 55 and provider_balances().get("hour") == 20, WAIT_S,
             "the sealed transfer and the co-signed service", cluster.logs)
    assert giver.public != provider.public

    # The auditor's own node joins by state sync from a snapshot taken after the rotation
    # (it holds no copy of the genesis epoch's key to open blocks before it, by itself).
    # What the join needs: the validator serves one (on disk, and the header after it
    # committed: statesync.respond_state), not only a height past one.
    rotated_at = v0.height()

    def served_after_rotation():
        height = v0.height()
        try:
            metas = list_snapshots(v0.home / SNAPSHOTS_DIR)
        except StoreError:      # one being pruned as it was read
            return None
        return [m.height for m in metas if rotated_at < m.height < height]
    wait_for(served_after_rotation, WAIT_S, "a snapshot after the rotation served", cluster.logs)
    box = join_auditor(cluster, v0, auditor_file, tmp_path)
    # node join moved the receive key into the auditor's home, where its node opened
    # its copy with it (and deletes it at a cut): none is left beside the key file.
    assert receive in load_receive_keys(tmp_path / "auditor-home" / "receive_keys")
    assert load_receive_keys(tmp_path / "receive_keys") == {}
    v0.stop()
    audited = run_cli("node", "verify", "--home", str(tmp_path / "auditor-home"), timeout=180)
    assert audited.returncode == 0 and "state-synced" in audited.stdout, audited.stderr + audited.stdout
    assert box == auditor.public.hex()

    home = str(root / "validator-0")
    verify = run_cli("node", "verify", "--home", home, "--key", str(tmp_path / "auditor-home" / KEY_FILE),
                     timeout=180)
    assert verify.returncode == 0 and verify.stdout.startswith("verified "), verify.stderr
    refused = run_cli("node", "verify", "--home", home, "--key", hh[2], timeout=180)
    last = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode != 0 and last.startswith("error: ") and "neither a validator's nor an auditor's" in last
    assert "Traceback" not in refused.stderr
    missing = run_cli("node", "verify", "--home", home, "--key", str(tmp_path / "nope.json"))
    assert missing.returncode != 0 and "key file not found" in missing.stderr and "Traceback" not in missing.stderr


def join_auditor(cluster, v0, key_file, tmp_path) -> str:
    """``node join --key AUDITOR_KEY --full``: a full node that opens the sealed payloads; run
    until it holds the validator's height, then stopped. Returns the key it runs with."""
    listen = json.loads((v0.home / "config.json").read_text())["listen"]
    peer = f"{listen}/p2p/{v0.status()['peer_id']}"
    home, http, log_path = tmp_path / "auditor-home", free_port(), tmp_path / "auditor.log"
    with open(log_path, "wb") as log:
        joined = subprocess.Popen([*CLI, "node", "join", "--genesis", str(cluster.commune.root / "genesis.json"),
                                   "--peer", peer, "--home", str(home), "--key", str(key_file), "--full",
                                   "--listen", f"/ip4/127.0.0.1/tcp/{free_port()}", "--http", f"127.0.0.1:{http}"],
                                  cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        node = cluster.node("auditor")
        node.home, node.http_port = home, http
        target = v0.height() + 2
        wait_for(lambda: node.height() >= target, WAIT_S, f"the auditor's node at height {target}",
                 lambda: log_path.read_text(errors="replace")[-3000:] + cluster.logs())
    finally:
        joined.send_signal(signal.SIGTERM)
        assert joined.wait(timeout=STOP_S) == 0
    return log_path.read_text(errors="replace").split("this node's key: ", 1)[1][:64]
