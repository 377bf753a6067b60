"""A commune that seals household payloads, live (docs/privacy.md "Sealed payloads").

Two validators (real ``node run`` processes, libp2p on loopback) of a genesis made with
``genesis new --seal-payloads``. A household's meter agent (``voisinage meter tic``,
a real process reading a TIC capture as it grows) posts sealed readings to a
validator, publishing its data key first; another household sends a sealed transfer
with ``voisinage tx transfer``. The readings settle; every block carries only
envelopes; a household reads its own sealed tx back with its key file; a household's
node started without ``--light`` runs light by itself and publishes its data key.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import subprocess
import threading
import time
from pathlib import Path

from node.consent.signed import NONCE_BYTES, sign_target
from consensus.block import Block
from node.home.homedir import HOUSEHOLD_FILE, KEY_FILE
from node.home.keyfile import load_key, new_keypair
from node.store import Store
from tests.support.nodes import CLI, HTTP, REPO, run_cli
from tests.support.ports import free_port
from tests.support.wait import wait_for
from tests.unit.meter.meter_helpers import historic_base_frame
from tokens.sealing import build_commune_sealed, open_own_sealed
from tokens.txs import RegisterHousehold, Sealed, decode_tx
from wire import MAX_BLOCK_BYTES, decode, sign_message

INTERVAL_S = 60
SETTLE_S = 240.0


def feed_frames(path: Path, meter: str, stop: threading.Event) -> None:
    """The meter: a historic frame every second, its BASE index 2 Wh higher each time
    (under the 6 kVA cap)."""
    base = 5_000
    while not stop.is_set():
        with path.open("ab") as f:
            f.write(historic_base_frame(meter, base))
        base += 2
        stop.wait(1.0)


def get_signed(node, key, path: str):
    """A household reads its own data by its signature (docs/privacy.md "Signed requests")."""
    headers = sign_target(key, "GET", path, int(time.time()), secrets.token_bytes(NONCE_BYTES))
    response = HTTP.get(node.url + path, headers=headers)
    return response.json() if response.status_code == 200 else None


def sealed_from_json(doc: dict) -> Sealed:
    return Sealed(signer=bytes.fromhex(doc["signer"]), nonce=doc["nonce"], epoch=doc["epoch"],
                  mac=bytes.fromhex(doc["mac"]), box=bytes.fromhex(doc["box"]), sig=bytes.fromhex(doc["sig"]))


def test_sealed_readings_settle_and_blocks_carry_only_envelopes(cluster_of, tmp_path):
    cluster = cluster_of(2, 3, genesis_args=("--seal-payloads",), settlement_interval_s=INTERVAL_S,
                         settlement_grace_s=5)
    v0, v1 = cluster.start(*cluster.validator_names)
    root = cluster.commune.root
    genesis = cluster.commune.genesis
    assert set(genesis["sealing"]["sealed"]) == {v["key"] for v in genesis["validators"]}
    assert v0.get_json("/commune")["sealing"]["public"] == genesis["sealing"]["public"]

    # A household's node holds no commune key: on a sealing genesis it runs light by itself
    # (no --light), follows the validators' headers and publishes its own data key.
    light = cluster.node("household-2", "--peer", v0.status()["listen_addrs"][0]).start()
    assert light.wait_ready()["light"] is True
    wait_for(lambda: "published this household's data key of epoch 0" in light.log_path.read_text(), SETTLE_S,
             "household-2's light node to publish its data key", cluster.logs)

    consumer = load_key(root / "household-1" / KEY_FILE)
    giver = load_key(root / "household-0" / KEY_FILE)
    # genesis.json names no household's meter, PRM or label: each home holds its own record.
    records = [json.loads((root / f"household-{i}" / HOUSEHOLD_FILE).read_text()) for i in range(2)]
    genesis_text = (root / "genesis.json").read_text()
    for record in records:
        assert record["key"] in genesis_text
        for field in ("meter", "prm", "label"):
            assert record[field] not in genesis_text, f"the genesis names a household's {field}"
    meter = next(r["meter"] for r in records if r["key"] == consumer.public.hex())
    capture, stop = tmp_path / "tic.bin", threading.Event()
    capture.write_bytes(b"")
    feeder = threading.Thread(target=feed_frames, args=(capture, meter, stop), daemon=True)
    feeder.start()
    agent = subprocess.Popen([*CLI, "meter", "tic", "--file", str(capture), "--node", v0.url,
                              "--key", str(root / "household-1" / KEY_FILE), "--every", "2",
                              "--max-submissions", "4"],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = agent.communicate(timeout=SETTLE_S)
    finally:
        stop.set()
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert agent.returncode == 0, out
    assert "published this household's data key of epoch 0" in out

    # A sealed transfer by the CLI, through the other validator.
    sent = run_cli("tx", "transfer", "--to", consumer.public.hex(), "--amount", "321", "--node", v1.url,
                   "--key", str(root / "household-0" / KEY_FILE))
    assert sent.returncode == 0, sent.stderr
    transfer_id = sent.stdout.strip()

    def settled_import() -> int:
        doc = get_signed(v1, consumer, f"/households/{consumer.public.hex()}/intervals?from=0")
        return sum(i.get("import_wh", 0) for i in (doc or {}).get("intervals", []) if i.get("settled"))
    wait_for(lambda: settled_import() > 0, SETTLE_S, "the sealed readings' interval to settle", cluster.logs)
    wait_for(lambda: (get_signed(v0, consumer, f"/accounts/{consumer.public.hex()}") or {}).get("balances", {})
             .get("kwh") == 321, SETTLE_S, "the sealed transfer to commit", cluster.logs)

    # The registrar registers a newcomer with the CLI: sealed to the commune key.
    newcomer = new_keypair()
    registrar = root / "registrar" / KEY_FILE
    personal = ("021477770001", "30000077770001", "Famille Nouvelle")
    done = run_cli("registrar", "register", "--household-pub", newcomer.public.hex(), "--meter", personal[0],
                   "--prm", personal[1], "--label", personal[2], "--kva", "6", "--node", v0.url, "--key", str(registrar))
    assert done.returncode == 0, done.stderr
    wait_for(lambda: (v1.get_json(f"/accounts/{newcomer.public.hex()}") or {}).get("household") is not None,
             SETTLE_S, "the sealed registration to commit", cluster.logs)
    # The same registration in clear is refused with its reason; so is a seal that does not open.
    chain_id = bytes.fromhex(v0.status()["chain_id"])
    clear = sign_message(RegisterHousehold(signer=load_key(registrar).public, nonce=time.time_ns() // 1_000_000,
                                           key=new_keypair().public, meter="021477770002", prm="30000077770002",
                                           label="x", kva=6, peak_w=0, sig=bytes(64)), chain_id, load_key(registrar))
    resp = HTTP.post(f"{v0.url}/tx", content=clear.encode(), headers={"content-type": "application/msgpack"})
    assert resp.status_code == 400 and "must_seal" in resp.text, resp.text
    public = bytes.fromhex(genesis["sealing"]["public"])
    broken = build_commune_sealed(clear, load_key(registrar), chain_id, 0, public, secrets.token_bytes(32))
    broken = sign_message(dataclasses.replace(broken, box=broken.box[:-1] + bytes([broken.box[-1] ^ 1])), chain_id,
                          load_key(registrar))
    resp = HTTP.post(f"{v0.url}/tx", content=broken.encode(), headers={"content-type": "application/msgpack"})
    assert resp.status_code == 400 and "seal_does_not_open" in resp.text, resp.text

    def data_keys_committed() -> int:
        return sum(tx["type"] == "tx/set-data-key" for h in range(1, v0.height() + 1)
                   for tx in (v0.block(h) or {}).get("txs", []))
    # One per household: the agent's, the transfer's and household-2's own node's.
    wait_for(lambda: data_keys_committed() == 3, SETTLE_S, "three data keys to commit", cluster.logs)
    height = cluster.assert_agree([v0, v1])     # the light node holds no block bodies
    types, envelopes = [], []
    for h in range(1, height + 1):
        block = v0.block(h)
        text = str(block)
        assert meter not in text, f"the meter serial is in clear in block {h}"
        for tx in block["txs"]:
            types.append(tx["type"])
            if tx["type"] == "tx/sealed":
                envelopes.append(tx)
    assert "tx/reading" not in types and "tx/transfer" not in types and "tx/register" not in types
    assert "tx/commune-sealed" in types
    assert types.count("tx/set-data-key") == 3 and len(envelopes) >= 5
    # The household reads its own sealed transfer back with its key file alone (the block
    # as it sees it: its own txs whole, by its signature).
    [mine] = [tx for h in range(1, height + 1) for tx in get_signed(v0, giver, f"/blocks/{h}")["txs"]
              if tx["id"] == transfer_id]
    inner = open_own_sealed(giver.seed, sealed_from_json(mine))
    assert (inner.amount, inner.to) == (321, consumer.public)

    # A signed envelope whose seal does not open is refused with its reason.
    env = sealed_from_json(mine)
    bad = sign_message(dataclasses.replace(env, nonce=env.nonce + 1, box=env.box[:-1] + bytes([env.box[-1] ^ 1])),
                       bytes.fromhex(v0.status()["chain_id"]), giver)
    resp = HTTP.post(f"{v0.url}/tx", content=bad.encode(), headers={"content-type": "application/msgpack"})
    assert resp.status_code == 400 and "seal_does_not_open" in resp.text

    # A passive reader of every block (as gossip and block sync carry them), decoded in
    # full: no household's meter, PRM or label, the genesis ones nor the newcomer's.
    secrets_in_clear = [r[f] for r in records for f in ("meter", "prm", "label")] + list(personal)
    cluster.shutdown()
    with Store.open_home(v1.home, chain_id=chain_id) as store:
        blocks = list(store.iter_blocks())
    assert len(blocks) >= height
    for stored in blocks:
        block = decode(stored.block, Block, MAX_BLOCK_BYTES)
        decoded = [repr(block.header)] + [repr(decode_tx(tx)) for tx in block.txs]
        for secret in secrets_in_clear:
            assert secret.encode() not in stored.block, f"{secret!r} in clear in block {stored.height}"
            assert not any(secret in text for text in decoded), f"{secret!r} in block {stored.height}, decoded"
