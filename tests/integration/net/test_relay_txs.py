"""``NetSettings.relay_txs``: a household node (relay_txs=False) does not subscribe to
the tx topic. Its own tx batches still reach the validators, through gossipsub's
fanout; nobody's tx batches reach its handler. Real libp2p hosts on loopback.
"""

from __future__ import annotations

import pytest
import trio

from node.net import TopicKind, open_network
from node.net.network import NetSettings
from tests.support.wait import wait_until

from .conftest import CHAIN_ID, LOOPBACK, Recorder

pytestmark = pytest.mark.integration

QUIET_S = 0.3     # let tasks the libp2p read loop spawned run after a barrier message


def recorders() -> dict[TopicKind, Recorder]:
    return {kind: Recorder() for kind in TopicKind}


def signed_like_tx(name: bytes, i: int) -> bytes:
    return name + b"-tx-%d-" % i + b"\x07" * 100


async def test_a_non_relaying_node_publishes_txs_but_receives_none(home):
    seen_relay, seen_house, seen_other = recorders(), recorders(), recorders()
    async with open_network(home("relay"), CHAIN_ID, LOOPBACK, [], seen_relay) as relay:
        tx_topic = relay.topic(TopicKind.TX)
        cs_topic = relay.topic(TopicKind.CONSENSUS)
        async with open_network(home("house"), CHAIN_ID, LOOPBACK, relay.listen_addrs(), seen_house,
                                settings=NetSettings(relay_txs=False)) as house, \
                open_network(home("other"), CHAIN_ID, LOOPBACK, relay.listen_addrs(), seen_other) as other:
            relay_id = relay.host.get_id()
            await wait_until(lambda: len(relay.peers()) == 2, what="relay connected to house and other")
            # The household learns that the relay takes txs (it can publish to it) ...
            await wait_until(lambda: relay_id in house.pubsub.peer_topics.get(tx_topic, set()),
                             what="house to see the relay's tx subscription")
            await house.pubsub.wait_for_mesh(relay_id, cs_topic, timeout=10)
            await other.pubsub.wait_for_mesh(relay_id, tx_topic, timeout=10)
            # ... and the relay learns that the household does not take them.
            await wait_until(lambda: house.host.get_id() in relay.pubsub.peer_topics.get(cs_topic, set()),
                             what="relay to see the house's consensus subscription")
            assert house.host.get_id() not in relay.pubsub.peer_topics.get(tx_topic, set())

            # House -> relay: a batch of the household's txs arrives, and each is judged.
            own = [signed_like_tx(b"house", i) for i in range(5)]
            for tx in own:
                await house.publish(TopicKind.TX, tx)
            await house.flush_txs()
            await wait_until(lambda: len(seen_relay[TopicKind.TX].seen) >= len(own), what="house txs at relay")
            assert seen_relay[TopicKind.TX].datas() == own
            assert {peer for peer, _ in seen_relay[TopicKind.TX].seen} == {house.peer_id}
            assert house.batcher.batches_sent >= 1 and house.batcher.txs_sent == len(own)

            # Relay -> everyone: a batch of the relay's txs reaches the relaying peer, not
            # the household. A consensus message published after it is the barrier: the
            # household gets that one over the same connection.
            theirs = [signed_like_tx(b"relay", i) for i in range(5)]
            for tx in theirs:
                await relay.publish(TopicKind.TX, tx)
            await relay.flush_txs()
            await relay.publish(TopicKind.CONSENSUS, b"barrier-vote")
            await wait_until(lambda: set(theirs) <= set(seen_other[TopicKind.TX].datas()),
                             what="relay txs at the other relaying peer")
            await wait_until(lambda: seen_house[TopicKind.CONSENSUS].datas() == [b"barrier-vote"],
                             what="the barrier at house")
            await trio.sleep(QUIET_S)
            assert seen_house[TopicKind.TX].seen == []
            assert house.counts.accepted == 1        # the barrier only
            assert house.ignored_total() == {} and house.rejected_total() == {}
