"""A deregistered household's private data erased, live (docs/privacy.md "Erasure").

One validator (a real ``node run`` process) of a commune that seals payloads, with
``erasure_after_s`` at its floor (two 60 s intervals). A household receives a sealed
transfer, the registrar deregisters it with the CLI, and a block made because the
erasure is due (nothing else is) erases it: its account is gone, the public ``erased/``
record holds its key's hash. The erasure makes a cut of the commune data key due, and
the validator's node makes it by itself (docs/privacy.md "The cut is forced"): no
operator command; the cut commits, ``GET /status`` no longer says a cut is due, and the
node logs that it deleted the older epoch. The cut went to the
fresh receive key the node published by itself (epoch 0 went to the genesis one), and
the node deleted the genesis one's file (docs/privacy.md "Receive keys"). ``node verify``
on the stopped validator's home refuses, in one line, to replay across the cut.
"""

from __future__ import annotations

import hashlib

from node.home.homedir import KEY_FILE
from node.home.keyfile import load_key
from node.home.receivekeys import get_receive_dir, load_receive_keys
from tests.support.nodes import run_cli
from tests.support.wait import wait_for
from tests.integration.node.test_sealed_live import get_signed
from tokens import layout as L
from tokens.kv import decode_value

INTERVAL_S = 60
ERASE_AFTER_S = 2 * INTERVAL_S
WAIT_S = 240.0


def test_deregistered_household_is_erased_cut_and_verify_refuses_the_replay(cluster_of):
    cluster = cluster_of(1, 2, genesis_args=("--seal-payloads",), settlement_interval_s=INTERVAL_S,
                         settlement_grace_s=5, erasure_after_s=ERASE_AFTER_S)
    [v0] = cluster.start(*cluster.validator_names)
    root = cluster.commune.root
    vpub = load_key(root / "validator-0" / KEY_FILE).public.hex()
    receive_dir = get_receive_dir(root / "validator-0")
    [genesis_receive] = load_receive_keys(receive_dir)
    # Epoch 0 went to the genesis receive key: the node publishes a fresh one by itself.
    fresh = wait_for(lambda: ((v0.get_json("/commune")["sealing"] or {}).get("receive") or {}).get(vpub, {})
                     .get("used", 0) is None and v0.get_json("/commune")["sealing"]["receive"][vpub]["public"],
                     WAIT_S, "the validator's fresh receive key", cluster.logs)
    assert bytes.fromhex(fresh) in load_receive_keys(receive_dir) and bytes.fromhex(fresh) != genesis_receive
    kept = run_cli("validator", "publish-receive-key", "--key", str(root / "validator-0" / KEY_FILE),
                   "--node", v0.url)
    assert kept.returncode == 0 and "nothing to do" in kept.stdout, kept.stderr
    leaver = load_key(root / "household-1" / KEY_FILE)
    registrar = root / "registrar" / KEY_FILE

    sent = run_cli("tx", "transfer", "--to", leaver.public.hex(), "--amount", "77", "--node", v0.url,
                   "--key", str(root / "household-0" / KEY_FILE))
    assert sent.returncode == 0, sent.stderr

    def leaver_kwh():
        return (get_signed(v0, leaver, f"/accounts/{leaver.public.hex()}") or {}).get("balances", {}).get("kwh")
    wait_for(lambda: leaver_kwh() == 77, WAIT_S, "the sealed transfer to commit", cluster.logs)

    gone = run_cli("registrar", "deregister", "--household-pub", leaver.public.hex(), "--memo", "départ",
                   "--node", v0.url, "--key", str(registrar))
    assert gone.returncode == 0, gone.stderr
    erased_key = L.key_erased(hashlib.sha256(leaver.public).digest()).hex()

    def erased():
        doc = v0.get_json(f"/proofs/{erased_key}")
        return None if not doc or doc.get("value") is None else decode_value(bytes.fromhex(doc["value"]))
    record = wait_for(erased, WAIT_S, "the erasure block", cluster.logs)
    assert isinstance(record, list) and record[0] > 0
    # The account went to the treasury: a signed read finds no account of the key.
    assert leaver_kwh() in (None, 0)
    # The key cannot be registered again: the registrar's CLI says so in one line.
    again = run_cli("registrar", "register", "--household-pub", leaver.public.hex(), "--meter", "021400000098",
                    "--prm", "30000000000098", "--label", "Retour", "--kva", "6", "--node", v0.url,
                    "--key", str(registrar))
    assert again.returncode != 0 and "key_erased" in again.stderr and "Traceback" not in again.stderr

    # docs/privacy.md "The cut is forced": the erasure made the next rotation a cut, and
    # the validator's node makes it, with no command (a lone validator is its quorum).
    wait_for(lambda: ((v0.get_json("/commune")["sealing"] or {}).get("cut") or {}).get("epoch") == 1, WAIT_S,
             "the cut the node makes by itself", cluster.logs)
    assert v0.get_json("/commune")["sealing"]["cut_due"] is False
    assert v0.get_json("/status")["cut"] == {"cut_due": False, "cut_pending_s": None, "cut_overdue": False}
    log = wait_for(lambda: "cut the commune data key at epoch 1" in v0.log_path.read_text(errors="replace")
                   and v0.log_path.read_text(errors="replace"), WAIT_S, "the node's log of the cut", cluster.logs)
    assert "the validators co-signed the cut of the commune data key at epoch 1" in log
    assert "deleted the secrets of epochs [0]" in log
    # The cut's copy went to the fresh receive key; the genesis one's file is deleted.
    assert "deleted 1 receive key file(s)" in log and genesis_receive.hex() in log
    left = load_receive_keys(receive_dir)
    assert bytes.fromhex(fresh) in left and genesis_receive not in left

    v0.stop()
    verify = run_cli("node", "verify", "--home", str(root / "validator-0"), timeout=120)
    last = verify.stderr.strip().splitlines()[-1]
    assert verify.returncode != 0 and last.startswith("error: ") and "was cut at height" in last, verify.stderr
    assert "Traceback" not in verify.stderr
