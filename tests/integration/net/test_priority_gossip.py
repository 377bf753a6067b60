"""PriorityGossipSub (node/net/gossip.py), as ``open_network`` wires it: consensus and
evidence are urgent topics, the tx topic is a direct topic, ``NetSettings.core_peers``
are the validators.

1. An RPC publishing on an urgent topic goes to the peer queue's priority lane.
2. Our own urgent and tx messages go to every connected core peer subscribed to the
   topic, even one outside our mesh or fanout.
3. A core peer does not relay to core peers a tx batch received straight from its
   non-core author; any other relay does (a household behind a relay).
4. A node re-opened with the same key in one process sends its own, current signed
   peer record (the caches of gossip.py are per host).

Real libp2p hosts on loopback. Spies that call the real method record what a router
queues and what a pubsub receives; nothing of the network is replaced.
"""

from __future__ import annotations

import hashlib

import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import PUBSUB_SIGNING_PREFIX

from node.net import TopicKind, TxBatch, gossip, libp2p_fixes, open_network
from node.net.identity import peer_id_of_key
from node.net.network import NetSettings, Network
from tests.support.wait import wait_until

from .conftest import CHAIN_ID, LOOPBACK, Recorder, handlers_for

pytestmark = pytest.mark.integration

MESH_TIMEOUT_S = 20.0
QUIET_S = 0.3     # let tasks the libp2p read loop spawned run after a barrier message


def seed_of(name: str) -> bytes:
    return hashlib.sha256(b"voisinage-test-priority-gossip/" + name.encode()).digest()


def peer_id_of_seed(seed: bytes) -> str:
    """The peer id a node opened with ``NetSettings(identity_seed=seed)`` will have."""
    return peer_id_of_key(create_new_key_pair(seed).public_key.to_bytes())


def tx_batch(author: bytes, i: int) -> bytes:
    return TxBatch(txs=(author + b"-tx-%d-a" % i, author + b"-tx-%d-b" % i)).encode()


def signed_message(net: Network, kind: TopicKind, data: bytes) -> rpc_pb2.Message:
    """A gossip message from ``net``, signed as ``Pubsub.publish`` signs it."""
    msg = rpc_pb2.Message(data=data, topicIDs=[net.topic(kind)], from_id=net.pubsub.my_id.to_bytes(),
                          seqno=net.pubsub._next_seqno())
    msg.key = net.host.get_public_key().serialize()
    msg.signature = net.pubsub.sign_key.sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
    return msg


class CopyLog:
    """Spy on a node's ``VerdictPubsub.push_msg``: every copy of a gossip message that
    reaches it, duplicates included, with the peer that forwarded it. Our own publishes
    pass through too, with our id as forwarder."""

    def __init__(self, net: Network) -> None:
        self.copies: list[tuple[str, str, bytes]] = []   # (forwarder, origin, data)
        self.processed: list[tuple[str, bytes]] = []     # (forwarder, data) once push_msg returned
        real = net.pubsub.push_msg

        async def push_msg(forwarder: ID, msg: rpc_pb2.Message) -> None:
            self.copies.append((forwarder.to_base58(), ID(msg.from_id).to_base58(), msg.data))
            await real(forwarder, msg)
            self.processed.append((forwarder.to_base58(), msg.data))

        net.pubsub.push_msg = push_msg

    def from_forwarder(self, forwarder: str) -> list[bytes]:
        return [data for fwd, _, data in self.copies if fwd == forwarder]


class SendLog:
    """Spy on a router's ``send_rpc``: the publish payloads queued for each peer."""

    def __init__(self, net: Network) -> None:
        self.sent: list[tuple[str, list[bytes]]] = []
        real = net.router.send_rpc

        def send_rpc(peer_id: ID, rpc: rpc_pb2.RPC, priority: bool = False) -> None:
            self.sent.append((peer_id.to_base58(), [m.data for m in rpc.publish]))
            real(peer_id, rpc, priority)

        net.router.send_rpc = send_rpc

    def peers_sent(self, data: bytes, since: int = 0) -> set[str]:
        return {peer for peer, datas in self.sent[since:] if data in datas}


def subscribed(net: Network, kind: TopicKind) -> set[str]:
    return {p.to_base58() for p in net.pubsub.peer_topics.get(net.topic(kind), ())}


async def until_ready(net: Network, peers: set[str], kinds: tuple[TopicKind, ...], what: str) -> None:
    """Until ``net`` knows that ``peers`` subscribe to ``kinds`` and can write to each.
    A peer's subscriptions can arrive before py-libp2p registers our stream to it; a
    message published in between is held and later sent twice (its pending queue,
    then a replay of recent messages), outside ``send_rpc``."""
    writable = lambda: peers <= {p.to_base58() for p in net.pubsub.peers}   # noqa: E731
    await wait_until(lambda: writable() and all(peers <= subscribed(net, k) for k in kinds),
                     timeout=MESH_TIMEOUT_S, what=what)


# ---- 1. priority lane ----

async def test_urgent_publishes_take_the_priority_lane_and_tx_batches_do_not(home):
    async with open_network(home("a"), CHAIN_ID, LOOPBACK, [], handlers_for(Recorder())) as a:
        async with open_network(home("b"), CHAIN_ID, LOOPBACK, a.listen_addrs(),
                                handlers_for(Recorder())) as b:
            b_id = b.host.get_id()
            for kind in TopicKind:
                await a.pubsub.wait_for_mesh(b_id, a.topic(kind), timeout=MESH_TIMEOUT_S)
            await until_ready(a, {b.peer_id}, tuple(TopicKind), "A ready to send to B")
            at_b = CopyLog(b)
            queue = a.pubsub.peer_queues[b_id]
            lanes: dict[bytes, list[bool]] = {}
            real_push = queue.push

            def push(rpc: rpc_pb2.RPC, priority: bool = False) -> bool:
                for m in rpc.publish:
                    lanes.setdefault(m.data, []).append(priority)
                return real_push(rpc, priority)

            queue.push = push
            vote, evidence, batch = b"vote-1", b"evidence-1", tx_batch(b"a", 0)
            # Through the real publish path: Pubsub.publish -> router.publish -> send_rpc.
            await a.publish(TopicKind.CONSENSUS, vote)
            await a.publish(TopicKind.EVIDENCE, evidence)
            await a.publish_raw(TopicKind.TX, batch)
            assert lanes == {vote: [True], evidence: [True], batch: [False]}

            # Hand-built RPCs, queued with no checkpoint in between, so the sending task
            # cannot have taken them yet: a consensus message queued after a tx batch goes
            # to the lane the queue serves first, an RPC mixing both is urgent, and a
            # caller's priority=True (what control RPCs use) is kept on a non-urgent RPC.
            def publish_rpc(*msgs: tuple[TopicKind, bytes]) -> rpc_pb2.RPC:
                return rpc_pb2.RPC(publish=[signed_message(a, kind, data) for kind, data in msgs])

            late_batch, mixed_batch, forced_batch = (tx_batch(b"a", i) for i in (1, 2, 3))
            a.router.send_rpc(b_id, publish_rpc((TopicKind.TX, late_batch)))
            a.router.send_rpc(b_id, publish_rpc((TopicKind.CONSENSUS, b"late-vote")))
            a.router.send_rpc(b_id, publish_rpc((TopicKind.TX, mixed_batch),
                                                (TopicKind.CONSENSUS, b"mixed-vote")))
            a.router.send_rpc(b_id, publish_rpc((TopicKind.TX, forced_batch)), priority=True)
            priority_lane = [[m.data for m in rpc.publish] for rpc in queue._queue._priority]
            normal_lane = [[m.data for m in rpc.publish] for rpc in queue._queue._non_priority]
            assert normal_lane[-1:] == [[late_batch]]
            assert priority_lane[-3:] == [[b"late-vote"], [mixed_batch, b"mixed-vote"], [forced_batch]]
            # They are ordinary messages: B receives and accepts all of them.
            everything = [vote, evidence, batch, late_batch, b"late-vote", mixed_batch, b"mixed-vote",
                          forced_batch]
            await wait_until(lambda: set(everything) <= {data for _, data in at_b.processed},
                             timeout=MESH_TIMEOUT_S, what="every message processed by B")
            assert b.rejected_total() == {} and b.ignored_total() == {}


# ---- 2. own messages straight to core peers ----

async def test_own_urgent_and_tx_messages_reach_a_core_peer_outside_the_mesh(home, monkeypatch):
    """With gossip degree 0 nobody has a mesh or fanout peer, so a message leaves its
    publisher P only to the peers PriorityGossipSub adds. Lazy gossip (IHAVE) is off
    on P, so nothing reaches a peer later through IWANT either. C is a core peer, Y
    is not; both are connected to P and subscribed to every topic."""
    for name in ("DEGREE", "DEGREE_LOW", "DEGREE_HIGH"):
        monkeypatch.setattr(gossip, name, 0)
    seeds = {name: seed_of(name) for name in ("c", "p")}
    c_id, p_id = (peer_id_of_seed(seeds[n]) for n in ("c", "p"))
    async with open_network(home("c"), CHAIN_ID, LOOPBACK, [], handlers_for(Recorder()),
                            settings=NetSettings(identity_seed=seeds["c"], core_peers=frozenset({c_id}))) as c, \
            open_network(home("y"), CHAIN_ID, LOOPBACK, [], handlers_for(Recorder()),
                         # Y takes P for a core peer, so that Y's own message reaches P.
                         settings=NetSettings(core_peers=frozenset({c_id, p_id}))) as y:
        async with open_network(home("p"), CHAIN_ID, LOOPBACK, c.listen_addrs() + y.listen_addrs(),
                                handlers_for(Recorder()),
                                settings=NetSettings(identity_seed=seeds["p"], relay_txs=False,
                                                     core_peers=frozenset({c_id}))) as p:
            assert p.peer_id == p_id and c.peer_id == c_id
            p.router.mcache.window_size = 0         # no IHAVE from P
            at_c, at_p, sent = CopyLog(c), CopyLog(p), SendLog(p)
            await until_ready(p, {c_id, y.peer_id}, tuple(TopicKind), "P ready to send to C and Y")
            await until_ready(y, {p_id}, (TopicKind.CONSENSUS,), "Y ready to send to P")
            cs_topic, tx_topic = p.topic(TopicKind.CONSENSUS), p.topic(TopicKind.TX)
            assert p.router.mesh.get(cs_topic) == set()      # C is not in P's mesh ...
            assert tx_topic not in p.router.mesh             # ... P does not relay txs ...

            vote, evidence, batch = b"vote-from-p", b"evidence-from-p", tx_batch(b"p", 0)
            await p.publish(TopicKind.CONSENSUS, vote)
            await p.publish(TopicKind.EVIDENCE, evidence)
            await p.publish_raw(TopicKind.TX, batch)
            assert p.router.fanout.get(tx_topic, set()) == set()   # ... and has no fanout peer.
            # Every copy that left P was queued during these publishes: to C, not to Y.
            for data in (vote, evidence, batch):
                assert sent.peers_sent(data) == {c_id}
            await wait_until(lambda: {vote, evidence, batch} <= set(at_c.from_forwarder(p_id)),
                             timeout=MESH_TIMEOUT_S, what="P's messages at C, forwarded by P")

            # Only our own messages: Y's vote reaches P (Y thinks P is core), and P, with
            # no mesh, forwards it to nobody, C included.
            since = len(sent.sent)
            await y.publish(TopicKind.CONSENSUS, b"vote-from-y")
            await wait_until(lambda: (y.peer_id, b"vote-from-y") in at_p.processed, timeout=MESH_TIMEOUT_S,
                             what="Y's vote processed by P")
            assert sent.peers_sent(b"vote-from-y", since) == set()


# ---- 3. a household's tx batch is not relayed between validators ----

@pytest.mark.parametrize("a_knows_the_core", [True, False], ids=["policy", "control"])
async def test_a_household_tx_batch_is_not_relayed_between_validators(home, a_knows_the_core):
    """Validators A and B, meshed with each other on the tx topic; relay R, meshed with A
    only; household H (relay_txs=False: it publishes through its fanout) connected to A
    and B. Each of H's batches reaches B once, from H. In the control, A is not told
    that A and B are core peers, and A relays every batch to B as well: the topology
    alone does not keep those copies away."""
    # Other peer ids in each case, so that the cases share no state at all.
    seeds = {name: seed_of(f"{name}-{a_knows_the_core}") for name in ("a", "b")}
    core = frozenset(peer_id_of_seed(s) for s in seeds.values())
    a_settings = NetSettings(identity_seed=seeds["a"], core_peers=core if a_knows_the_core else frozenset())
    async with open_network(home("a"), CHAIN_ID, LOOPBACK, [], handlers_for(Recorder()), settings=a_settings) as a:
        async with open_network(home("b"), CHAIN_ID, LOOPBACK, a.listen_addrs(), handlers_for(Recorder()),
                                settings=NetSettings(identity_seed=seeds["b"], core_peers=core)) as b, \
                open_network(home("r"), CHAIN_ID, LOOPBACK, a.listen_addrs(), handlers_for(Recorder()),
                             settings=NetSettings(core_peers=core)) as r:
            async with open_network(home("h"), CHAIN_ID, LOOPBACK, a.listen_addrs() + b.listen_addrs(),
                                    handlers_for(Recorder()),
                                    settings=NetSettings(relay_txs=False, core_peers=core)) as h:
                assert {a.peer_id, b.peer_id} == core
                at_a, at_b, at_r, sent_by_a = CopyLog(a), CopyLog(b), CopyLog(r), SendLog(a)
                tx_topic = a.topic(TopicKind.TX)
                for x, y in ((a, b), (b, a), (a, r), (r, a)):
                    await x.pubsub.wait_for_mesh(y.host.get_id(), tx_topic, timeout=MESH_TIMEOUT_S)
                await until_ready(h, {a.peer_id, b.peer_id}, (TopicKind.TX,), "H ready to send to A and B")
                await until_ready(a, {b.peer_id, r.peer_id}, (TopicKind.TX,), "A ready to send to B and R")
                assert b.peer_id not in r.peers() and h.peer_id not in r.peers()

                batches = [tx_batch(b"h", i) for i in range(8)]
                for data in batches:
                    await h.publish_raw(TopicKind.TX, data)
                # A has judged and forwarded every batch (A's relays to B, if any, are queued) ...
                await wait_until(lambda: all((h.peer_id, d) in at_a.processed for d in batches),
                                 timeout=MESH_TIMEOUT_S, what="H's batches processed by A")
                # ... and relayed them to R, which is not a core peer.
                await wait_until(lambda: set(batches) <= set(at_r.from_forwarder(a.peer_id)),
                                 timeout=MESH_TIMEOUT_S, what="H's batches at R, relayed by A")
                # Barrier: A's own batch goes to B on the same lane, after any relay of H's.
                barrier = tx_batch(b"a-barrier", 0)
                await a.publish_raw(TopicKind.TX, barrier)
                await wait_until(lambda: barrier in at_b.from_forwarder(a.peer_id), timeout=MESH_TIMEOUT_S,
                                 what="A's barrier batch at B")
                await trio.sleep(QUIET_S)

                # A's router: each of H's batches forwarded to R, and to B only in the control.
                expected = {r.peer_id} if a_knows_the_core else {r.peer_id, b.peer_id}
                assert all(sent_by_a.peers_sent(d) == expected for d in batches)
                # What B received: each batch once from H, and from A only in the control.
                assert sorted(at_b.from_forwarder(h.peer_id)) == sorted(batches)
                relayed_by_a = sorted(d for d in at_b.from_forwarder(a.peer_id) if d != barrier)
                assert relayed_by_a == ([] if a_knows_the_core else sorted(batches))


async def test_a_household_behind_a_relay_reaches_the_validator(home):
    """Household H is connected only to relay R (not a validator), which is meshed with
    validator A. R got H's batch from its author, but R is not a core peer: it must
    still relay the batch to A, or H's txs would never reach a validator (found while
    writing these tests: the rule once applied at every node)."""
    seed = seed_of("relay-a")
    core = frozenset({peer_id_of_seed(seed)})
    async with open_network(home("a"), CHAIN_ID, LOOPBACK, [], handlers_for(Recorder()),
                            settings=NetSettings(identity_seed=seed, core_peers=core)) as a:
        async with open_network(home("r"), CHAIN_ID, LOOPBACK, a.listen_addrs(), handlers_for(Recorder()),
                                settings=NetSettings(core_peers=core)) as r:
            async with open_network(home("h"), CHAIN_ID, LOOPBACK, r.listen_addrs(), handlers_for(Recorder()),
                                    settings=NetSettings(relay_txs=False, core_peers=core)) as h:
                at_a, at_r = CopyLog(a), CopyLog(r)
                tx = a.topic(TopicKind.TX)
                await a.pubsub.wait_for_mesh(r.host.get_id(), tx, timeout=MESH_TIMEOUT_S)
                await r.pubsub.wait_for_mesh(a.host.get_id(), tx, timeout=MESH_TIMEOUT_S)
                await wait_until(lambda: r.peer_id in subscribed(h, TopicKind.TX), what="H sees R's tx subscription")
                batch = TxBatch(txs=(b"h-tx",)).encode()
                await h.publish_raw(TopicKind.TX, batch)
                await wait_until(lambda: (h.peer_id, batch) in at_r.processed, what="R processed H's batch")
                await wait_until(lambda: batch in at_a.from_forwarder(r.peer_id), what="H's batch at A, from R")


async def test_a_node_reopened_with_the_same_key_is_heard_by_a_new_peer(home, monkeypatch):
    """A re-opened in the same process with the same key: a new peer R that got A's
    newer signed record (identify) must not be sent the old one, which it refuses along
    with the whole RPC (A's subscriptions never arrive and R never meshes with A)."""
    refused = []
    real = libp2p_fixes._consume_signed_record

    def spy(msg, host, peer_id):
        ok = real(msg, host, peer_id)
        if not ok:
            refused.append(peer_id)
        return ok

    monkeypatch.setattr(libp2p_fixes, "_consume_signed_record", spy)
    seed = seed_of("reopened")
    for run in range(2):
        async with open_network(home(f"a{run}"), CHAIN_ID, LOOPBACK, [], handlers_for(Recorder()),
                                settings=NetSettings(identity_seed=seed)) as a:
            async with open_network(home(f"r{run}"), CHAIN_ID, LOOPBACK, a.listen_addrs(),
                                    handlers_for(Recorder())) as r:
                topic = a.topic(TopicKind.TX)
                await wait_until(lambda: a.host.get_id() in r.pubsub.peer_topics.get(topic, set()),
                                 timeout=MESH_TIMEOUT_S, what=f"open {run + 1}: R sees A's tx subscription")
                assert refused == []
