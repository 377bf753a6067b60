"""REJECT penalises and bans a flooding peer; IGNORE and duplicates penalise nobody (DESIGN §7)."""

from __future__ import annotations

import pytest
import trio

from node.net import ACCEPT, TopicKind, TxBatch, ignore, open_network, reject
from node.net.gossip import (
    BAN_THRESHOLD, GOSSIP_THRESHOLD, GRAYLIST_THRESHOLD, INVALID_WEIGHT, PUBLISH_THRESHOLD,
)
from node.net.verdict import Outcome, compute_batch_verdict
from tests.support.wait import wait_until
from wire.limits import MAX_GOSSIP_BYTES

from .conftest import CHAIN_ID, LOOPBACK, Recorder, handlers_for

pytestmark = pytest.mark.integration


def judge_txs(data: bytes):
    """B's tx rules for these tests: b"bad..." has a bad signature, b"old..." is stale."""
    if data.startswith(b"bad"):
        return reject("bad_signature")
    if data.startswith(b"old"):
        return ignore("stale_nonce")
    return ACCEPT


def batch(*txs: bytes) -> bytes:
    return TxBatch(txs=txs).encode()


async def meshed(x, y, kind=TopicKind.TX) -> None:
    topic = x.topic(kind)
    await x.pubsub.wait_for_mesh(y.host.get_id(), topic, timeout=10)
    await y.pubsub.wait_for_mesh(x.host.get_id(), topic, timeout=10)


def score_of(net, peer_net) -> float:
    return net.router.scorer.score(peer_net.host.get_id(), sorted(net.topic(k) for k in TopicKind))


async def test_invalid_flood_is_rejected_penalised_and_banned(home):
    seen_b, seen_c = Recorder(judge_txs), Recorder()
    async with open_network(home("b"), CHAIN_ID, LOOPBACK, [], handlers_for(seen_b)) as b:
        async with open_network(home("rogue"), CHAIN_ID, LOOPBACK, b.listen_addrs(), {}) as rogue, \
                open_network(home("c"), CHAIN_ID, LOOPBACK, b.listen_addrs(), handlers_for(seen_c)) as c:
            await meshed(rogue, b)
            await meshed(c, b)
            for i in range(40):                 # malformed batches, then forged txs
                data = b"\xc1garbage %d" % i if i % 2 else batch(b"bad tx %d" % i)
                await rogue.publish_raw(TopicKind.TX, data)
                await trio.sleep(0.01)
            await wait_until(lambda: rogue.peer_id in b.banned_peers(), what="rogue banned by b")
            await wait_until(lambda: rogue.peer_id not in b.peers(), what="rogue disconnected")
            rejected = b.rejected_total()
            assert rejected.get("malformed", 0) >= 2 and rejected.get("bad_signature", 0) >= 2
            # Once graylisted, its messages were dropped before validation.
            assert sum(rejected.values()) < 40
            assert seen_c.seen == []             # nothing invalid was forwarded
            assert c.peer_id in b.peers() and c.peer_id not in b.banned_peers()
            # A banned peer that dials again is dropped again.
            await rogue.host.connect(b.host.get_peerstore().peer_info(b.host.get_id()))
            await wait_until(lambda: rogue.peer_id not in b.peers(), what="redial dropped")


async def test_ignored_and_duplicate_messages_do_not_penalise(home):
    seen_b, seen_c = Recorder(judge_txs), Recorder()
    async with open_network(home("b"), CHAIN_ID, LOOPBACK, [], handlers_for(seen_b)) as b:
        async with open_network(home("a"), CHAIN_ID, LOOPBACK, b.listen_addrs(), {}) as a, \
                open_network(home("a2"), CHAIN_ID, LOOPBACK, b.listen_addrs(), {}) as a2, \
                open_network(home("c"), CHAIN_ID, LOOPBACK, b.listen_addrs(), handlers_for(seen_c)) as c:
            for x in (a, a2, c):
                await meshed(x, b)
            for i in range(60):                 # stale txs: IGNORE, far more than a REJECT ban needs
                await a.publish_raw(TopicKind.TX, batch(b"old tx %d" % i))
                await trio.sleep(0.005)
            same = batch(b"fresh tx")
            await a.publish_raw(TopicKind.TX, same)
            await a2.publish_raw(TopicKind.TX, same)   # same bytes from another publisher
            await a.publish_raw(TopicKind.TX, same)
            await wait_until(lambda: seen_c.datas() == [b"fresh tx"], what="fresh tx at c")
            await wait_until(lambda: b.ignored_total().get("stale_nonce") == 60, what="60 ignores")
            await trio.sleep(1.5)                # let the score watcher run
            assert [d for d in seen_b.datas() if d == b"fresh tx"] == [b"fresh tx"]   # judged once
            assert b.rejected_total() == {}
            assert b.banned_peers() == []
            assert {a.peer_id, a2.peer_id, c.peer_id} <= set(b.peers())
            assert score_of(b, a) >= 0 and score_of(b, a2) >= 0
            assert seen_c.datas() == [b"fresh tx"]     # ignored messages were not forwarded


async def test_an_ignored_message_sent_again_later_is_judged_again_and_forwarded(home):
    """IGNORE means "not now": the same bytes gossiped again (a household's pending tx,
    a validator's re-broadcast vote) must reach the judge again, not be dropped as seen."""
    first = []

    def not_yet_then_fine(data: bytes):
        first.append(data)
        return ignore("nonce_ahead") if len(first) == 1 else ACCEPT

    seen_b, seen_c = Recorder(not_yet_then_fine), Recorder()
    async with open_network(home("b"), CHAIN_ID, LOOPBACK, [], handlers_for(seen_b)) as b:
        async with open_network(home("a"), CHAIN_ID, LOOPBACK, b.listen_addrs(), {}) as a, \
                open_network(home("c"), CHAIN_ID, LOOPBACK, b.listen_addrs(), handlers_for(seen_c)) as c:
            await meshed(a, b)
            await meshed(c, b)
            same = batch(b"pending tx")
            await a.publish_raw(TopicKind.TX, same)
            await wait_until(lambda: b.ignored_total().get("nonce_ahead") == 1, what="first copy ignored")
            await trio.sleep(0.5)
            assert seen_c.datas() == []                  # an ignored message is not forwarded
            await a.publish_raw(TopicKind.TX, same)      # the same bytes, again
            await wait_until(lambda: seen_c.datas() == [b"pending tx"], what="second copy forwarded to c")
            assert seen_b.datas() == [b"pending tx", b"pending tx"]
            await a.publish_raw(TopicKind.TX, same)      # accepted now: a third copy is a duplicate
            await trio.sleep(1.0)
            assert len(seen_b.datas()) == 2 and seen_c.datas() == [b"pending tx"]


async def test_invalid_oversize_message_is_rejected_before_decoding(home):
    seen_b = Recorder()
    async with open_network(home("b"), CHAIN_ID, LOOPBACK, [], handlers_for(seen_b)) as b:
        async with open_network(home("a"), CHAIN_ID, LOOPBACK, b.listen_addrs(), {}) as a:
            await meshed(a, b, TopicKind.CONSENSUS)
            # Our publish refuses it, so go under it, as a hostile peer would.
            await a.pubsub.publish(a.topic(TopicKind.CONSENSUS), b"\x00" * (MAX_GOSSIP_BYTES + 1))
            await wait_until(lambda: b.rejected_total().get("oversize") == 1, what="oversize reject")
            assert seen_b.seen == []
            assert score_of(b, a) < 0


async def test_invalid_message_on_unhandled_topic_is_ignored_not_forwarded(home):
    async with open_network(home("b"), CHAIN_ID, LOOPBACK, [], {TopicKind.TX: Recorder()}) as b:
        async with open_network(home("a"), CHAIN_ID, LOOPBACK, b.listen_addrs(), {}) as a:
            await meshed(a, b, TopicKind.EVIDENCE)
            await a.publish(TopicKind.EVIDENCE, b"unchecked")
            await wait_until(lambda: b.ignored_total().get("no_handler") == 1, what="ignored")
            assert b.rejected_total() == {}


def test_batch_verdict_rejects_if_any_tx_is_invalid():
    assert compute_batch_verdict([ACCEPT, reject("bad_signature"), ignore("stale")]).reason == "bad_signature"
    assert compute_batch_verdict([ignore("stale"), ACCEPT]) == ACCEPT
    assert compute_batch_verdict([ignore("stale"), ignore("dup")]).outcome is Outcome.IGNORE
    assert compute_batch_verdict([]).outcome is Outcome.REJECT


def test_thresholds_ban_after_a_handful_of_rejects():
    # The gate stops judging a peer under the publish threshold, so the ban must
    # trigger there, and after a handful of REJECTs, not hundreds.
    assert GRAYLIST_THRESHOLD < PUBLISH_THRESHOLD == BAN_THRESHOLD < GOSSIP_THRESHOLD < 0
    assert -BAN_THRESHOLD / INVALID_WEIGHT <= 5


async def test_a_handler_that_raises_crashes_the_network_loudly(home):
    def broken(peer: str, data: bytes):
        raise RuntimeError("handler bug")

    with pytest.raises(BaseExceptionGroup) as caught:
        async with open_network(home("b"), CHAIN_ID, LOOPBACK, [], {TopicKind.CONSENSUS: broken}) as b:
            async with open_network(home("a"), CHAIN_ID, LOOPBACK, b.listen_addrs(), {}) as a:
                await meshed(a, b, TopicKind.CONSENSUS)
                await a.publish(TopicKind.CONSENSUS, b"x")
                with trio.fail_after(10):
                    await trio.sleep_forever()
    assert caught.value.subgroup(RuntimeError) is not None
    assert caught.value.subgroup(trio.TooSlowError) is None


async def test_invalid_batch_stops_at_its_first_bad_tx(home):
    seen_b = Recorder(judge_txs)
    async with open_network(home("b"), CHAIN_ID, LOOPBACK, [], handlers_for(seen_b)) as b:
        async with open_network(home("a"), CHAIN_ID, LOOPBACK, b.listen_addrs(), {}) as a:
            await meshed(a, b)
            await a.publish_raw(TopicKind.TX, batch(b"good 1", b"bad 2", b"good 3", b"bad 4"))
            await wait_until(lambda: b.rejected_total() == {"bad_signature": 1}, what="one reject")
            assert seen_b.datas() == [b"good 1", b"bad 2"]


async def test_a_batch_handler_judges_the_whole_batch_once_and_its_reject_penalises(home):
    calls: list[tuple[bytes, ...]] = []

    async def judge_batch(peer: str, txs) -> list:
        calls.append(tuple(txs))
        await trio.sleep(0)                  # a node awaits its worker threads here
        verdicts = []
        for data in txs:
            verdicts.append(judge_txs(data))
            if verdicts[-1].outcome is Outcome.REJECT:
                break
        return verdicts
    seen_b, seen_c = Recorder(judge_txs), Recorder()
    async with open_network(home("b"), CHAIN_ID, LOOPBACK, [], handlers_for(seen_b),
                            tx_batch_handler=judge_batch) as b:
        async with open_network(home("a"), CHAIN_ID, LOOPBACK, b.listen_addrs(), {}) as a, \
                open_network(home("c"), CHAIN_ID, LOOPBACK, b.listen_addrs(), handlers_for(seen_c)) as c:
            await meshed(a, b)
            await meshed(c, b)
            await a.publish_raw(TopicKind.TX, batch(b"good 1", b"old 2"))
            await wait_until(lambda: seen_c.datas() == [b"good 1", b"old 2"], what="accepted batch forwarded")
            await a.publish_raw(TopicKind.TX, batch(b"good 3", b"bad 4", b"good 5"))
            await wait_until(lambda: b.rejected_total() == {"bad_signature": 1}, what="one reject")
            assert calls == [(b"good 1", b"old 2"), (b"good 3", b"bad 4", b"good 5")]
            assert seen_b.datas() == []          # the per-tx handler is not called
            assert score_of(b, a) < 0
            assert seen_c.datas() == [b"good 1", b"old 2"]   # the rejected batch was not forwarded


@pytest.mark.parametrize("garbage", [
    b"\x05\xff\xff\xff\xff\xff",      # length 5, then not protobuf
    b"\x80\x80\x80\x01" + b"\x00" * 16,  # a length prefix of 2 MiB, over the RPC limit
])
async def test_invalid_pubsub_rpc_bytes_cost_the_peer_its_stream_not_the_node(home, garbage):
    """py-libp2p lets protobuf's DecodeError escape its pubsub stream handler; a peer
    writing an unparseable RPC once took the whole node down (seen in bench localnet)."""
    import multiaddr
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.peerinfo import info_from_p2p_addr

    from node.net import open_network

    recorder = Recorder()
    async with open_network(home("victim"), CHAIN_ID, LOOPBACK, [], handlers_for(recorder)) as victim:
        rogue = new_host(key_pair=create_new_key_pair())
        async with rogue.run(listen_addrs=[multiaddr.Multiaddr(LOOPBACK)]):
            info = info_from_p2p_addr(multiaddr.Multiaddr(victim.listen_addrs()[0]))
            await rogue.connect(info)
            stream = await rogue.new_stream(info.peer_id, ["/meshsub/1.1.0"])
            await stream.write(garbage)
            await trio.sleep(0.5)
        # Still serving: a second, honest peer connects and its gossip is judged.
        async with open_network(home("honest"), CHAIN_ID, LOOPBACK, victim.listen_addrs(),
                                handlers_for(Recorder())) as honest:
            await wait_until(lambda: honest.peer_id in victim.peers(), what="honest peer connected")
            topic = victim._topics[TopicKind.CONSENSUS]
            await honest.pubsub.wait_for_mesh(victim.host.get_id(), topic, timeout=15)
            await honest.publish(TopicKind.CONSENSUS, b"still alive")
            await wait_until(lambda: b"still alive" in recorder.datas(), what="gossip after the bad RPC")
