"""What a light household node and a passive gossip listener receive, decoded in full
(docs/privacy.md "Household nodes", issue 20 "Show").

A real validator and household-0's full node run as processes; household-0's meter
reports cumulative indexes no other number on the chain comes near (987 654 321 Wh
imported and up). In this process, over real libp2p on loopback:

- household-1's node in light mode (the production ``LightNode``, ``LightClient`` and
  ``open_light_network``), every gossip message and every answer it gets recorded;
- a passive listener: a bare libp2p peer subscribed to every topic, every message
  recorded.

Everything recorded is unpacked recursively (every bytes field that is msgpack is
unpacked too) and must hold none of household-0's reading values, and no entry of
household-0's state (its address in no state key).

The listener's part runs on a commune that seals payloads (``genesis new
--seal-payloads``, docs/privacy.md "Sealed payloads"), household nodes light: gossip and
proposals carry envelopes whose signer, nonce and size are in clear, and nothing else.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import msgpack
import pytest
import trio

from node.home.homedir import load_home
from node.net import TopicKind, ignore, open_network
from node.net.identity import genesis_peer_addrs
from node.net.network import NetSettings
from node.service.lightnode import LightNode, open_light_network, open_light_store
from tests.support.livenet import LiveNet
from tests.support.wait import wait_until
from node.meter.sealing import ChainSealing, parse_commune_sealing, seal_tx
from tokens.layout import key_household_data_key as household_data_key
from tokens.txs import MeterReading
from wire import sign_message

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IMPORT0, EXPORT0 = 987_654_321, 123_456_789
STEP_I, STEP_E = 37, 53         # Wh per 60 chain seconds: under household-0's caps
READINGS = 60


def unpack_all(value: Any, out: list) -> None:
    """Every int and bytes in ``value``, unpacking each bytes that is msgpack, recursively."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        out.append(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            unpack_all(item, out)
    elif isinstance(value, dict):
        for key, item in value.items():
            unpack_all(key, out)
            unpack_all(item, out)
    elif isinstance(value, bytes):
        out.append(value)
        try:
            inner = msgpack.unpackb(value, raw=True, strict_map_key=False)
        except Exception:   # not msgpack: an opaque field (hash, key, signature, proof)
            return
        if inner != value:
            unpack_all(inner, out)


def is_state_key(data: bytes) -> bool:
    """A state key (``family/`` ...): an envelope's signer in clear is not one."""
    return re.match(rb"[a-z]+/", data) is not None


def leaks(messages: list[bytes], secrets: set[int], address: bytes) -> list[str]:
    found = []
    for data in messages:
        atoms: list = []
        unpack_all(data, atoms)
        hits = {a for a in atoms if isinstance(a, int) and a in secrets}
        named = [a for a in atoms if isinstance(a, bytes) and len(a) > 32 and address in a and is_state_key(a)]
        if hits or named:
            found.append(f"{len(data)}-byte message: reading values {sorted(hits)[:3]}, "
                         f"{len(named)} fields naming household-0")
    return found


class Feeder:
    """Household-0's meter, posted to its node's HTTP API (sealed on a sealing chain)."""

    def __init__(self, net: LiveNet, sealing: ChainSealing | None = None) -> None:
        self.net, self.key, self.serial = net, net.key("household-0"), net.meter_serial("household-0")
        self.sent: set[int] = set()
        self.sealing = sealing

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            for seq in range(1, READINGS + 1):
                imp, exp = IMPORT0 + seq * STEP_I, EXPORT0 + seq * STEP_E
                self.sent |= {imp, exp}
                tx = MeterReading(signer=self.key.public, meter=self.serial, seq=seq,
                                  t=self.net.clock.now_ms() // 1000, import_wh=imp, export_wh=exp, sig=bytes(64))
                signed = sign_message(tx, self.net.genesis.chain_id, self.key)
                if self.sealing is not None:
                    signed = seal_tx(signed, self.key, self.net.genesis.chain_id, self.sealing)
                data = signed.encode()
                try:
                    await client.post(self.net.url("household-0") + "/tx", content=data)
                except httpx.HTTPError:
                    pass
                await trio.sleep(0.5)


class Recorder:
    """A network proxy for the light client: every answer it gets is kept."""

    def __init__(self, net) -> None:
        self.net, self.answers = net, []

    def __getattr__(self, name: str):
        return getattr(self.net, name)

    async def request_state(self, *args) -> bytes:
        data = await self.net.request_state(*args)
        self.answers.append(data)
        return data

    async def request_entries(self, peer: str, data: bytes) -> bytes:
        answer = await self.net.request_entries(peer, data)
        self.answers.append(answer)
        return answer


@pytest.fixture
def commune(tmp_path):
    net = LiveNet(tmp_path, feed=False)
    net.start_nodes("validator-0", "household-0")
    yield net
    net.stop()


async def test_light_household_node_receives_no_other_households_readings_or_entries(commune: LiveNet):
    net, feeder = commune, Feeder(commune)
    home = load_home(net.root / "household-1")
    node = LightNode(home, open_light_store(home))
    gossip: list[bytes] = []
    hear = node.on_heartbeat

    def on_heartbeat(peer: str, data: bytes):
        gossip.append(data)
        return hear(peer, data)
    node.on_heartbeat = on_heartbeat
    try:
        async with open_light_network(node, "/ip4/127.0.0.1/tcp/0", []) as lnet:
            recorder = node.client.net = Recorder(lnet)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(node.client.follow)
                await feeder.run()
                settled = await wait_until(lambda: (net.get_json("validator-0", "/status") or {}).get(
                    "settled_intervals", 0) >= 2 or None, what="two settled intervals", timeout=120, logs=net.logs, poll_s=1.0)
                assert settled
                top = net.height("validator-0")
                await wait_until(lambda: node.store.height() >= top - 1 or None, what="the light node to follow",
                                 timeout=60, logs=net.logs)
                nursery.cancel_scope.cancel()
            heard_elsewhere = lnet.ignored_total().get("no_handler", 0)
    finally:
        node.store.close()
    other = net.key("household-0").public
    assert gossip and recorder.answers, "the light node heard and asked nothing: the test saw nothing"
    assert heard_elsewhere == 0, "gossip on a topic the light node does not follow reached it"
    assert leaks(gossip + recorder.answers, feeder.sent, other) == []


@pytest.fixture
def sealed_commune(tmp_path):
    net = LiveNet(tmp_path, feed=False, seal=True)
    net.start_nodes("validator-0", "household-0")
    yield net
    net.stop()


def has_data_key(net: LiveNet, name: str) -> bool:
    """Whether the validator's state shows ``name``'s data key of epoch 0 (its node posts it)."""
    key = household_data_key(net.key(name).public, 0).hex()
    doc = net.get_json("validator-0", f"/proofs/{key}", signer=name)
    return bool(doc and doc.get("value"))


async def test_passive_gossip_listener_sees_no_households_readings(sealed_commune: LiveNet, tmp_path):
    net = sealed_commune
    sealing = parse_commune_sealing(net.get_json("validator-0", "/commune"))
    assert sealing is not None
    # Household-0's light node publishes its data key by itself once it sees its record.
    await wait_until(lambda: has_data_key(net, "household-0") or None, what="household-0's data key",
                     timeout=90, logs=net.logs, poll_s=1.0)
    feeder = Feeder(net, sealing)
    heard: list[bytes] = []

    def record(peer: str, data: bytes):
        heard.append(data)
        return ignore("listener")       # never forwarded: a listener only listens
    bootstrap = genesis_peer_addrs(net.genesis.validators)
    async with open_network(tmp_path / "listener", net.genesis.chain_id, "/ip4/127.0.0.1/tcp/0", bootstrap,
                            {kind: record for kind in TopicKind},
                            settings=NetSettings(ephemeral_identity=True)) as listener:
        await wait_until(lambda: listener.peers() or None, what="the listener to connect", timeout=30)
        await feeder.run()
        await trio.sleep(5)
    assert heard, "the listener heard nothing: the test saw nothing"
    assert leaks(heard, feeder.sent, net.key("household-0").public) == []
    # The readings did go through, sealed: the validator took and settled household-0's energy.
    await wait_until(lambda: (net.get_json("validator-0", f"/accounts/{net.address('household-0')}",
                                           signer="household-0") or {})
                     .get("household", {}).get("last_reading") or None, what="household-0's sealed readings",
                     timeout=60, logs=net.logs, poll_s=1.0)
