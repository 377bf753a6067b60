"""A household's light node after its household moved to a new key on a commune that
seals payloads (docs/privacy.md "Moving a household to a new key"): restarted on the
same home with the new key file, it follows the new key's entries, publishes the new
key's data key, proves its entries under the new salt and holds nothing of the former
key's; the validator opens its sealed txs under the new key. A real validator Node over
LevelDB commits the blocks; the light node follows it through the real responders."""

from __future__ import annotations

import dataclasses
import os
import time

import pytest

from node.e2e.checks import check_light_store
from node.home.homedir import KEY_FILE
from node.home.keyfile import save_key
from node.service.lightclient import get_former_keys
from tests.unit.service.test_light import FakeNet, follow, light
from tests.unit.service.test_light_sealing import commit_data_key, followed, pending_of, reading, step  # noqa: F401
from tests.unit.service.test_pending_txs import commit_block
from tests.unit.service.test_sealed_node import commune, household  # noqa: F401 (fixtures)
from tokens import layout as L
from tokens.kv import decode_value
from tokens.lightstate import ProvenEntries
from tokens.queries import get_household
from tokens.sealing import build_sealed, make_kv_salt_of
from tokens.txs import MeterReading, RotateKey, SetDataKey
from wire import Keypair, decode, sign_message
from wire.seal import derive_household_keys


def rotate_key(node, old: Keypair, new: Keypair) -> bytes:
    """The household's RotateKey to ``new`` (both keys sign), with its next nonce."""
    nonce = decode_value(node.store.state.get(L.key_account(old.public)))[L.A_NONCE] + 1
    tx = RotateKey(signer=old.public, nonce=nonce, new_key=new.public, new_sig=bytes(64), sig=bytes(64))
    return sign_message(sign_message(tx, node.chain_id, new, "new_sig"), node.chain_id, old).encode()


def held_of(store, addr: bytes) -> list[bytes]:
    """The state entries a light store holds that name ``addr`` in their key."""
    return [key for key, _ in store.state.iter_prefix(b"") if addr in key]


def test_light_node_restarted_with_the_new_key_follows_and_proves_it(node, commune, followed, caplog):  # noqa: F811
    light_node, client = followed
    commit_data_key(node, commune, light_node, client, 0)
    old, meter = household(node, commune)
    sealed = reading(node, commune, 1, 0)
    step(node, commune, client, [sealed])
    new = Keypair(os.urandom(32))
    step(node, commune, client, [rotate_key(node, old, new)])
    assert get_household(node.store.state, new.public)["meter"] == meter
    # Still on the old key file, the node reads the move from its proven key status and
    # says what to do, once; it bans nobody.
    step(node, commune, client)
    assert client.replaced_by == new.public
    assert client.net.banned == {}
    said = [r.getMessage() for r in caplog.records if "key was replaced by" in r.getMessage()]
    assert said == [f"this household's key was replaced by {new.public.hex()[:16]}… at height "
                    f"{node.store.height() - 3}: put the new key file in this node's home as key.json and start "
                    "the node again"]
    assert held_of(light_node.store, old.public)     # its rotated status, its data key
    light_node.store.close()

    # The household puts its new key file in the node's home and starts it again.
    save_key(commune / "household-0" / KEY_FILE, new, overwrite=True)
    light_node, client = light(commune, FakeNet(node), "household-0")
    try:
        assert get_former_keys(light_node.store, new.public) == {old.public}
        follow(client)
        assert client.net.banned == {}
        # The validators moved the household: the node finds its record under the new key,
        # proven, and holds nothing of the former key's any more.
        assert decode_value(light_node.store.state.get(L.key_household(new.public)))[L.HH_METER] == meter
        assert held_of(light_node.store, old.public) == []
        assert get_former_keys(light_node.store, new.public) == set()
        # It publishes the new key's data key; once in a block, its entries are salted
        # with the new key's salt, and its proofs still reach the root.
        [published] = pending_of(light_node, SetDataKey)
        assert published.tx.signer == new.public and published.tx.epoch == 0
        commit_data_key(node, commune, light_node, client, 0)
        commit_block(node, commune, [])
        follow(client)
        assert client.net.banned == {}
        assert light_node.store.state.get(L.key_account(new.public)) is not None
        # Its meter seals under the new key: the node takes it, the validator opens and applies it.
        inner = sign_message(MeterReading(signer=new.public, meter=meter, seq=2, t=int(time.time()) - 50,
                                          import_wh=1002, export_wh=0, sig=bytes(64)), node.chain_id, new)
        envelope = build_sealed(inner, new, node.chain_id, 0, os.urandom(24)).encode()
        light_node.submit_tx(envelope)
        step(node, commune, client, [envelope])
        assert get_household(node.store.state, new.public)["last_reading"]["seq"] == 2
        assert check_light_store("household-0", light_node.store, new.public, node.store).violations == []
    finally:
        light_node.store.close()


def with_salt(salt: bytes):
    """A server rewrite that replaces the salt of every answer by ``salt``."""
    def rewrite(raw: bytes) -> bytes:
        return dataclasses.replace(decode(raw, ProvenEntries, len(raw)), salt=salt).encode()
    return rewrite


@pytest.mark.parametrize("lie", [None, "wrong", "withheld"])
def test_before_its_data_key_the_restarted_node_proves_its_entries_with_the_salt_the_validator_gives(
        node, commune, followed, lie):  # noqa: F811
    # docs/privacy.md "Moving a household to a new key": until the new key's SetDataKey
    # commits, its entries take the former key's salt, which the node cannot derive from
    # the new key file; the validator's answer carries it, and only the true one proves.
    light_node, client = followed
    commit_data_key(node, commune, light_node, client, 0)
    old, meter = household(node, commune)
    new = Keypair(os.urandom(32))
    step(node, commune, client, [rotate_key(node, old, new)])
    light_node.store.close()
    inherited = derive_household_keys(old.seed, 0)[1]
    assert make_kv_salt_of(node.store.state, node.keys)(L.key_account(new.public)) == inherited

    save_key(commune / "household-0" / KEY_FILE, new, overwrite=True)
    tamper = {} if lie is None else {("validator", "entries"): with_salt(os.urandom(32) if lie == "wrong" else b"")}
    light_node, client = light(commune, FakeNet(node, tamper=tamper), "household-0")
    try:
        follow(client)
        if lie is not None:
            # A salt that is not the leaves' makes every proof of its entries miss the root.
            assert "does not reach the state root" in client.net.banned["validator"]
            assert light_node.store.state.get(L.key_household(new.public)) is None
            return
        assert client.net.banned == {}
        assert node.store.state.get(L.key_salt_link(new.public)) is not None     # its data key is not in yet
        assert decode_value(light_node.store.state.get(L.key_household(new.public)))[L.HH_METER] == meter
        assert light_node.store.state.get(L.key_account(new.public)) == node.store.state.get(L.key_account(new.public))
    finally:
        light_node.store.close()
