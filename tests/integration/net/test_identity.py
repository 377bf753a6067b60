"""The libp2p identity in p2p.key, validator peer ids from genesis, reconnection (DESIGN §7)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from node.net import NetSetupError
from node.net import genesis_peer_addrs, load_or_create_identity, open_network, peer_id_of_key
from node.net.identity import P2P_KEY_FILE
from tests.support.ports import free_port
from tests.support.wait import wait_until
from wire import Keypair

from .conftest import CHAIN_ID, LOOPBACK

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class GenesisValidator:
    key: bytes
    addr: str


async def test_identity_persists_across_restarts(home):
    path = home("n")
    async with open_network(path, CHAIN_ID, LOOPBACK, [], {}) as first:
        first_id = first.peer_id
        assert all(a.endswith(f"/p2p/{first_id}") for a in first.listen_addrs())
    assert (os.stat(path / P2P_KEY_FILE).st_mode & 0o777) == 0o600
    async with open_network(path, CHAIN_ID, LOOPBACK, [], {}) as second:
        assert second.peer_id == first_id
    async with open_network(home("other"), CHAIN_ID, LOOPBACK, [], {}) as other:
        assert other.peer_id != first_id


async def test_validator_is_dialled_from_its_genesis_address_and_key(home):
    key = Keypair(bytes(range(32)))
    port = free_port()
    async with open_network(home("v"), CHAIN_ID, f"/ip4/127.0.0.1/tcp/{port}", [], {},
                            settings=_validator_settings(key)) as v:
        assert v.peer_id == peer_id_of_key(key.public)
        bootstrap = genesis_peer_addrs([GenesisValidator(key.public, f"/ip4/127.0.0.1/tcp/{port}")])
        assert bootstrap == [f"/ip4/127.0.0.1/tcp/{port}/p2p/{v.peer_id}"]
        async with open_network(home("h"), CHAIN_ID, LOOPBACK, bootstrap, {}) as h:
            await wait_until(lambda: v.peer_id in h.peers(), what="household connected to validator")


async def test_peer_is_redialled_after_it_restarts(home):
    port = free_port()
    listen = f"/ip4/127.0.0.1/tcp/{port}"
    async with open_network(home("b"), CHAIN_ID, listen, [], {}) as b:
        b_addrs = b.listen_addrs()
        b_id = b.peer_id
        async with open_network(home("a"), CHAIN_ID, LOOPBACK, b_addrs, {}) as a:
            await wait_until(lambda: b_id in a.peers(), what="first connection")
            await b.host.disconnect(a.host.get_id())
            await wait_until(lambda: b_id in a.peers(), what="reconnection after a drop")
    async with open_network(home("a"), CHAIN_ID, LOOPBACK, b_addrs, {}) as a:
        await wait_until(lambda: a.peer_manager.dial_failures >= 1, what="b is down")
        async with open_network(home("b"), CHAIN_ID, listen, [], {}) as b:
            await wait_until(lambda: b.peer_id in a.peers(), what="redial of restarted peer")


def test_invalid_corrupt_identity_is_one_clear_error(tmp_path):
    (tmp_path / P2P_KEY_FILE).write_bytes(b"not a key")
    with pytest.raises(NetSetupError, match="corrupt libp2p identity"):
        load_or_create_identity(tmp_path)


def test_invalid_identity_readable_by_others_is_refused(tmp_path):
    load_or_create_identity(tmp_path)
    os.chmod(tmp_path / P2P_KEY_FILE, 0o644)
    with pytest.raises(NetSetupError, match="chmod 600"):
        load_or_create_identity(tmp_path)


def test_invalid_identity_of_another_validator_is_refused(tmp_path):
    load_or_create_identity(tmp_path, Keypair(b"\x01" * 32).seed)
    assert load_or_create_identity(tmp_path, Keypair(b"\x01" * 32).seed) is not None
    with pytest.raises(NetSetupError, match="not this validator's key"):
        load_or_create_identity(tmp_path, Keypair(b"\x02" * 32).seed)


def test_invalid_missing_home_is_one_clear_error(tmp_path):
    with pytest.raises(NetSetupError, match="home directory not found"):
        load_or_create_identity(tmp_path / "nowhere")


@pytest.mark.parametrize("bad", ["garbage", "/ip4/999.1.1.1/tcp/1", "/ip4/127.0.0.1/tcp/1"])
async def test_invalid_peer_address_is_one_clear_error(home, bad):
    with pytest.raises(NetSetupError, match="bad peer address"):
        async with open_network(home("n"), CHAIN_ID, LOOPBACK, [bad], {}):
            raise AssertionError("must not start")


async def test_invalid_listen_address_or_port_in_use_is_one_clear_error(home):
    with pytest.raises(NetSetupError, match="bad listen address"):
        async with open_network(home("n"), CHAIN_ID, "/ip4/1.2.3/tcp/0", [], {}):
            raise AssertionError("must not start")
    async with open_network(home("a"), CHAIN_ID, LOOPBACK, [], {}) as a:
        taken = a.listen_addrs()[0].split("/p2p/")[0]
        with pytest.raises(NetSetupError, match="address in use"):
            async with open_network(home("b"), CHAIN_ID, taken, [], {}):
                raise AssertionError("must not start on a taken port")


def _validator_settings(key: Keypair):
    from node.net import NetSettings
    return NetSettings(identity_seed=key.seed)
