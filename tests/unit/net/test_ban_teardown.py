"""A ban (``Pubsub.add_to_blacklist``) tears the peer down; the stream reset ends the
peer's reader, which may drop the peer first. py-libp2p 0.8.1 then raised KeyError
and stopped the whole Pubsub service: VerdictPubsub's teardown must not."""

from __future__ import annotations

import pytest
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.pubsub.pubsub import Pubsub

from node.net import gossip, libp2p_fixes
from node.net.verdict import ACCEPT


class StreamDroppedOnReset:
    """A peer's stream whose reset makes its reader drop the peer, as py-libp2p's
    ``_handle_dead_peer`` does when the reader task ends."""

    def __init__(self, pubsub: Pubsub, peer_id) -> None:
        self.pubsub, self.peer_id, self.resets = pubsub, peer_id, 0

    async def reset(self) -> None:
        self.resets += 1
        await trio.lowlevel.checkpoint()
        del self.pubsub.peers[self.peer_id]


async def judge(forwarder, msg):
    return ACCEPT


def make_pubsub():
    libp2p_fixes.apply_library_fixes()
    host = new_host(key_pair=create_new_key_pair())
    pubsub = gossip.VerdictPubsub(host, gossip.make_router(), judge)
    peer_id = new_host(key_pair=create_new_key_pair()).get_id()
    stream = StreamDroppedOnReset(pubsub, peer_id)
    pubsub.peers[peer_id] = stream
    return pubsub, peer_id, stream


async def test_teardown_of_a_peer_its_reader_already_dropped_does_not_raise():
    pubsub, peer_id, stream = make_pubsub()
    await pubsub._teardown_if_connected(peer_id)
    assert stream.resets == 1
    assert peer_id not in pubsub.peers


async def test_the_library_teardown_raised_there():
    """The race is real: the library's own teardown fails in the same situation."""
    pubsub, peer_id, _ = make_pubsub()
    with pytest.raises(KeyError):
        await Pubsub._teardown_if_connected(pubsub, peer_id)
