"""Batched tx gossip relayed A -> B -> C over real libp2p on loopback (DESIGN §7)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from node.net import LocalProtocolError, TopicKind, TxBatch, TxBatcher, open_network
from node.net.batcher import CUE_MIN_AGE_S, IDLE_S, QUICK_DELAY_S
from tests.support.wait import wait_until
from wire import decode

from .conftest import CHAIN_ID, LOOPBACK, Recorder, handlers_for

pytestmark = pytest.mark.integration


def fake_tx(i: int, size: int = 180) -> bytes:
    return i.to_bytes(4, "big") + b"\x07" * (size - 4)


async def test_batched_txs_reach_c_through_b_without_loss(home):
    seen = {name: Recorder() for name in "abc"}
    async with open_network(home("b"), CHAIN_ID, LOOPBACK, [], handlers_for(seen["b"])) as b:
        async with open_network(home("a"), CHAIN_ID, LOOPBACK, b.listen_addrs(), handlers_for(seen["a"])) as a, \
                open_network(home("c"), CHAIN_ID, LOOPBACK, b.listen_addrs(), handlers_for(seen["c"])) as c:
            topic = a.topic(TopicKind.TX)
            await wait_until(lambda: len(b.peers()) == 2, what="b connected to a and c")
            await a.pubsub.wait_for_mesh(b.host.get_id(), topic, timeout=10)
            await c.pubsub.wait_for_mesh(b.host.get_id(), topic, timeout=10)
            assert a.peer_id not in c.peers()   # C hears A only through B
            sent = [fake_tx(i) for i in range(3000)]
            for i, tx in enumerate(sent):      # paced: 100 txs every 20 ms
                await a.publish(TopicKind.TX, tx)
                if i % 100 == 99:
                    await trio.sleep(0.02)
            await wait_until(lambda: len(seen["c"].seen) >= len(sent), what="all txs at c")
            assert sorted(seen["c"].datas()) == sent
            assert sorted(seen["b"].datas()) == sent
            assert {peer for peer, _ in seen["c"].seen} == {b.peer_id}
            # Gossip paid per batch, not per tx.
            assert 1 <= a.batcher.batches_sent <= len(sent) // 50
            assert a.batcher.txs_sent == len(sent)
            assert seen["a"].seen == []        # our own publishes are not handed back


async def test_consensus_and_evidence_messages_are_gossiped_whole(home):
    seen_b, seen_c = Recorder(), Recorder()
    async with open_network(home("a"), CHAIN_ID, LOOPBACK, [], handlers_for(Recorder())) as a:
        async with open_network(home("b"), CHAIN_ID, LOOPBACK, a.listen_addrs(), handlers_for(seen_b)) as b, \
                open_network(home("c"), CHAIN_ID, LOOPBACK, b.listen_addrs(), handlers_for(seen_c)) as c:
            for kind in (TopicKind.CONSENSUS, TopicKind.EVIDENCE):
                await b.pubsub.wait_for_mesh(a.host.get_id(), a.topic(kind), timeout=10)
                await c.pubsub.wait_for_mesh(b.host.get_id(), a.topic(kind), timeout=10)
            await a.publish(TopicKind.CONSENSUS, b"vote-1")
            await a.publish(TopicKind.EVIDENCE, b"evidence-1")
            await wait_until(lambda: len(seen_c.seen) == 2, what="both messages at c")
            assert sorted(seen_c.datas()) == [b"evidence-1", b"vote-1"]


async def test_batcher_flushes_by_count_and_by_delay(autojump_clock):
    published: list[bytes] = []

    async def publish(data: bytes) -> None:
        published.append(data)

    batcher = TxBatcher(publish, max_txs=10, delay_s=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(batcher.run)
        for i in range(25):
            await batcher.add(fake_tx(i))
        assert len(published) == 2              # two full batches left at once
        await trio.sleep(0.1)                   # the last 5 leave after the delay
        assert len(published) == 3
        nursery.cancel_scope.cancel()
    batches = [decode(data, expect=TxBatch, limit=2**20).txs for data in published]
    assert [len(b) for b in batches] == [10, 10, 5]
    assert [tx for b in batches for tx in b] == [fake_tx(i) for i in range(25)]


@asynccontextmanager
async def running_timed_batcher(delay_s: float = 0.75) -> AsyncIterator[tuple[TxBatcher, list[float]]]:
    """A running TxBatcher, and the times at which it published each batch."""
    published: list[float] = []

    async def publish(data: bytes) -> None:
        published.append(trio.current_time())

    batcher = TxBatcher(publish, delay_s=delay_s)
    async with trio.open_nursery() as nursery:
        await nursery.start(batcher.run)
        yield batcher, published
        nursery.cancel_scope.cancel()


async def test_batcher_sends_at_once_after_an_idle_second_and_batches_under_load(autojump_clock):
    async with running_timed_batcher() as (batcher, published):
        start = trio.current_time()
        await batcher.add(fake_tx(0))                 # idle: leaves after QUICK_DELAY_S
        await trio.sleep(0.2)
        assert published == [pytest.approx(start + QUICK_DELAY_S)]
        await batcher.add(fake_tx(1))                 # 0.15 s after a batch: waits 0.75 s
        await trio.sleep(0.7)
        assert len(published) == 1
        await trio.sleep(0.1)
        assert published[1] == pytest.approx(start + 0.2 + 0.75)
        await trio.sleep(IDLE_S)                      # idle again: IDLE_S + 0.05 s since that batch
        await batcher.add(fake_tx(2))
        await trio.sleep(0.1)
        assert published[2] == pytest.approx(start + 1.0 + IDLE_S + QUICK_DELAY_S)


async def test_batcher_under_load_leaves_on_a_proposal_cue_once_old_enough(autojump_clock):
    async with running_timed_batcher() as (batcher, published):
        await batcher.add(fake_tx(0))                 # idle: leaves after QUICK_DELAY_S
        await trio.sleep(0.1)
        batcher.cue()                                 # a cue with nothing queued counts for nothing
        await trio.sleep(0.05)
        first = trio.current_time()
        await batcher.add(fake_tx(1))                 # under load: waits for a cue
        await trio.sleep(0.3)
        assert len(published) == 1
        batcher.cue()                                 # old enough: leaves at once
        await trio.sleep(0.01)
        assert published[1] == pytest.approx(first + 0.3)
        second = trio.current_time()
        await batcher.add(fake_tx(2))
        await trio.sleep(0.05)
        batcher.cue()                                 # too young: leaves at CUE_MIN_AGE_S
        await trio.sleep(0.5)
        assert published[2] == pytest.approx(second + CUE_MIN_AGE_S)
        third = trio.current_time()
        await batcher.add(fake_tx(3))                 # no cue: the delay still bounds the wait
        await trio.sleep(1)
        assert published[3] == pytest.approx(third + 0.75)


async def test_batcher_keeps_batches_under_its_byte_limit(autojump_clock):
    published: list[bytes] = []

    async def publish(data: bytes) -> None:
        published.append(data)

    batcher = TxBatcher(publish, max_bytes=64 * 1024)
    for i in range(200):
        await batcher.add(fake_tx(i, size=4096))
    await batcher.flush()
    assert all(len(data) <= 64 * 1024 for data in published)
    assert sum(len(decode(d, expect=TxBatch, limit=2**20).txs) for d in published) == 200


async def test_invalid_batcher_input_is_refused():
    async def publish(data: bytes) -> None:
        raise AssertionError("nothing should be published")

    batcher = TxBatcher(publish)
    with pytest.raises(LocalProtocolError):
        await batcher.add(b"")
    with pytest.raises(LocalProtocolError):
        await batcher.add(b"x" * 4097)
    with pytest.raises(ValueError):
        TxBatcher(publish, max_txs=0)
    assert len(batcher) == 0
