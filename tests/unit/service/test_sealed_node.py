"""A validator's node on a chain that seals payloads (docs/privacy.md "Sealed payloads"):
gossip verdicts on seals, its keyring after a rotation, and the refusal of a node that
holds no commune key. A real Node over a real LevelDB store; blocks are committed
through its ledger app (tests/unit/service/test_pending_txs.py ``commit_block``)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from node.home.homedir import KEY_FILE, create_network, load_home, load_household_spec
from node.home.keyfile import load_key
from node.net import Outcome
from node.service.node import Node
from node.service.runner import check_households_sealed, open_store
from node.service.sealing import NoCommuneKey
from node.store.store import DB_DIR
from tests.unit.service.rotations import make_rotation
from tests.unit.service.test_pending_txs import commit_block
from tests.support.nodes import run_cli
from tokens import layout as L
from tokens.genesis import parse_genesis
from tokens.queries import get_sealing
from tokens.sealing import Keyring, build_sealed, build_set_data_key
from tokens.txs import MeterReading, decode_tx
from wire import sign_message
from wire.seal import seal_link


@pytest.fixture
def commune(tmp_path: Path) -> Path:
    root = tmp_path / "commune"
    create_network(root, name="Testville", insee="12345", validators=1, households=1, base_port=40000,
                   genesis_time=int(time.time()) - 600, seal_payloads=True)
    return root


def household(node: Node, commune: Path):
    key = load_key(commune / "household-0" / KEY_FILE)
    return key, load_household_spec(node.genesis, commune / "household-0").meter


def sealed_reading(node: Node, commune: Path, seq: int) -> bytes:
    key, meter = household(node, commune)
    inner = MeterReading(signer=key.public, meter=meter, seq=seq, t=int(time.time()) - 5, import_wh=1000,
                         export_wh=0, sig=bytes(64))
    return build_sealed(inner, key, node.chain_id, 0, os.urandom(24)).encode()


def publish_data_key(node: Node, commune: Path) -> None:
    key, _ = household(node, commune)
    sealing = get_sealing(node.store.state)
    tx = build_set_data_key(key, node.chain_id, 1, sealing["epoch"], bytes.fromhex(sealing["public"]), os.urandom(32))
    commit_block(node, commune, [tx.encode()])


def test_seal_failures_are_rejects_and_state_waits_are_ignores(node, commune):
    key, meter = household(node, commune)
    clear = sign_message(MeterReading(signer=key.public, meter=meter, seq=1, t=1, import_wh=0, export_wh=0,
                                      sig=bytes(64)), node.chain_id, key).encode()
    assert node.on_tx("peer", clear).outcome is Outcome.REJECT
    # No data key in the state yet: a state-dependent refusal, nobody is penalised.
    verdict = node.on_tx("peer", sealed_reading(node, commune, 1))
    assert (verdict.outcome, verdict.reason) == (Outcome.IGNORE, "no_data_key")
    publish_data_key(node, commune)
    good = sealed_reading(node, commune, 2)
    assert node.on_tx("peer", good).outcome is Outcome.ACCEPT
    env = node.mempool.entries()[-1].tx
    broken = sign_message(dataclasses.replace(env, nonce=3, box=env.box[:-1] + bytes([env.box[-1] ^ 1])),
                          node.chain_id, key).encode()
    verdict = node.on_tx("peer", broken)
    assert (verdict.outcome, verdict.reason) == (Outcome.REJECT, "seal_does_not_open")
    mismatch = sign_message(dataclasses.replace(env, nonce=4, mac=bytes(32)), node.chain_id, key).encode()
    verdict = node.on_tx("peer", mismatch)
    assert (verdict.outcome, verdict.reason) == (Outcome.REJECT, "payload_hash_mismatch")
    commit_block(node, commune, [good])
    assert node.store.state.get(L.key_household(key.public)) is not None


def test_keyring_follows_a_rotation_and_old_payloads_stay_readable(node, commune):
    publish_data_key(node, commune)
    commit_block(node, commune, [sealed_reading(node, commune, 2)])
    vkey = node.key
    old = node.keys.secrets[0]
    new = os.urandom(32)
    tx = make_rotation(node.store.state, node.chain_id, [vkey], 1, new, seal_link(new, old, os.urandom(24)))
    assert decode_tx(tx).receive != (None,)       # sealed to the home's receive key
    commit_block(node, commune, [tx])
    assert node.keys.secrets == {0: old, 1: new}
    assert get_sealing(node.store.state)["epoch"] == 1
    # The state root of every entry, salted, is the stored one; node verify replays it all.
    assert node.store.verify_state_hash(node.keys) == node.store.state_hash()


def test_a_node_without_a_copy_of_the_commune_key_is_refused(commune):
    home = load_home(commune / "household-0")
    # Its genesis households open only with the commune key: refused before any state.
    with pytest.raises(NoCommuneKey, match="seals household payloads.*epoch 0"):
        open_store(home)
    # A node whose state it holds (a copy of a validator's) is refused at start too.
    validator = load_home(commune / "validator-0")
    open_store(validator).close()
    shutil.rmtree(home.path / DB_DIR)
    shutil.copytree(commune / "validator-0" / DB_DIR, home.path / DB_DIR)
    store = open_store(home)
    try:
        with pytest.raises(NoCommuneKey, match="seals household payloads"):
            Node(home, store)
    finally:
        store.close()


def test_node_verify_opens_the_keys_of_a_validators_home_only(commune):
    from node.service.verify import VerifyError, read_verify_keyring

    home = load_home(commune / "validator-0")
    store = open_store(home)
    try:
        keys = read_verify_keyring(home, store)
        assert list(keys.secrets) == [0]
        with pytest.raises(VerifyError, match="holds no commune data key"):
            read_verify_keyring(load_home(commune / "household-0"), store)
    finally:
        store.close()


def test_a_block_this_node_cannot_open_stops_it_in_one_line(node, commune):
    publish_data_key(node, commune)
    node.app.keys = Keyring()        # as a validator removed before a rotation: no key of the epoch
    with pytest.raises(NoCommuneKey, match="can no longer apply"):
        commit_block(node, commune, [sealed_reading(node, commune, 2)])


def test_a_genesis_that_seals_payloads_but_lists_a_household_in_clear_is_refused_at_start(commune):
    # docs/privacy.md "Genesis households": written by hand, such a genesis would put a
    # household's meter, PRM and label in every node's copy of genesis.json.
    path = commune / "validator-0" / "genesis.json"
    doc = json.loads(path.read_text())
    spec = load_household_spec(load_home(commune / "validator-0").genesis, commune / "household-0")
    doc["households"][0] = {"key": doc["households"][0]["key"], "meter": spec.meter, "prm": spec.prm,
                            "label": "Maison Dupont", "kva": 6}
    path.write_text(json.dumps(doc))
    done = run_cli("node", "run", "--home", str(commune / "validator-0"), "--http", "127.0.0.1:0")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "lists 1 household(s) in clear (households[0] first)" in done.stderr
    assert "Traceback" not in done.stderr
    doc["dev"] = True                       # a development genesis may
    check_households_sealed(parse_genesis(json.dumps(doc).encode()))
