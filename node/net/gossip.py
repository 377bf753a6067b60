"""Gossipsub as py-libp2p 0.8.1 provides it, made safe for us (DEPENDENCIES.md, DESIGN §7).

- Library defaults that silently drop messages or stall are fixed in libp2p_fixes.py, once.
- ``VerdictPubsub`` gives the boolean topic validator a third answer, IGNORE.
- Peer scoring is configured so that it acts: REJECTs push a peer below the
  publish threshold, and the network then bans it (network.py).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable

from google.protobuf.message import DecodeError as ProtobufDecodeError

from libp2p.abc import IHost
from libp2p.exceptions import ValidationError
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.score import ScoreParams, TopicScoreParams


from node.net.libp2p_fixes import MAX_RPC_BYTES
from node.net.topics import compute_message_id
from node.net.verdict import Outcome, Verdict

log = logging.getLogger(__name__)

HEARTBEAT_S = 1                       # DEPENDENCIES.md pitfall 3: default is 120 s
DEGREE, DEGREE_LOW, DEGREE_HIGH = 6, 4, 12

# Peer scoring (gossipsub v1.1 P2, P4, P5). py-libp2p's P4 is linear in the number of
# invalid messages, decayed each heartbeat.
INVALID_WEIGHT = 10.0                 # one REJECT costs 10 points
INVALID_DECAY = 0.97                  # per 1 s heartbeat: half-life about 23 s
FIRST_DELIVERY_WEIGHT = 0.05          # at most +10: good history cannot hide a flood
FIRST_DELIVERY_CAP = 200.0
GOSSIP_THRESHOLD = -20.0              # below: no IHAVE/IWANT with the peer
PUBLISH_THRESHOLD = -40.0             # below: its messages are dropped unvalidated
GRAYLIST_THRESHOLD = -60.0            # below: py-libp2p refuses its GRAFTs, prunes it
# py-libp2p adds 10 behaviour points for each GRAFT that comes within 10 s of our PRUNE,
# per topic: an honest peer whose mesh churned (a restart) may re-graft three topics
# twice, 60 points. Up to 40 points cost nothing; an equivocation (100) still bans
# (docs/performance.md, "Peer scoring").
BEHAVIOUR_THRESHOLD = 40.0
# Once under the publish threshold a peer's messages are no longer judged, so its
# score stops falling and would never reach the graylist: we ban it right there.
BAN_THRESHOLD = PUBLISH_THRESHOLD


def make_score_params() -> ScoreParams:
    """Thresholds that act (the library's are -inf): 5 REJECTs in quick succession
    put a peer without credit under the publish threshold (and so banned), while an
    honest peer's rare REJECT decays away."""
    return ScoreParams(
        p2_first_message_deliveries=TopicScoreParams(
            weight=FIRST_DELIVERY_WEIGHT, cap=FIRST_DELIVERY_CAP, decay=0.99),
        p4_invalid_messages=TopicScoreParams(weight=INVALID_WEIGHT, cap=1000.0, decay=INVALID_DECAY),
        p5_behavior_penalty_weight=1.0,
        p5_behavior_penalty_decay=0.99,
        p5_behavior_penalty_threshold=BEHAVIOUR_THRESHOLD,
        publish_threshold=PUBLISH_THRESHOLD,
        gossip_threshold=GOSSIP_THRESHOLD,
        graylist_threshold=GRAYLIST_THRESHOLD,
        accept_px_threshold=math.inf,  # we do no peer exchange
    )


class PriorityGossipSub(GossipSub):
    """GossipSub with two policies for a network where a few core peers (the
    validators) do the work that cannot wait.

    - Priority: messages on ``urgent_topics`` (consensus) go out ahead of the rest.
      py-libp2p keeps one outbound queue per peer, with a priority lane that it uses
      only for control RPCs; a proposal published behind queued tx batches waited for
      them.
    - Direct delivery: our own messages on ``urgent_topics`` and ``direct_topics``
      (txs) go to every connected core peer subscribed to the topic, as well as to the
      mesh or fanout: gossipsub v1.1's flood publishing (go-libp2p's default, missing
      in py-libp2p), limited to the peers consensus waits for. A core peer that
      receives a message on a ``direct_topics`` topic from its author, when the author
      is not a core peer, then does not relay it to the other core peers: the author
      sent it to each one it is connected to. (Any other relay still forwards it to
      them: a household may reach the validators only through another node.) In the
      bench, 12 of the 16 transmissions of a household's tx batch were validators
      relaying it to each other, and each validator received every batch four times.
    """

    def __init__(self, urgent_topics: frozenset[str] = frozenset(), direct_topics: frozenset[str] = frozenset(),
                 core_peers: frozenset[ID] = frozenset(), **kwargs) -> None:
        super().__init__(**kwargs)
        self.urgent_topics, self.core_peers = urgent_topics, core_peers
        self.flood_topics = urgent_topics | direct_topics
        self.direct_topics = direct_topics

    def send_rpc(self, peer_id: ID, rpc: rpc_pb2.RPC, priority: bool = False) -> None:
        if not priority and self.urgent_topics:
            priority = any(t in self.urgent_topics for m in rpc.publish for t in m.topicIDs)
        super().send_rpc(peer_id, rpc, priority)

    def _get_peers_to_send(self, topic_ids, msg_forwarder: ID, origin: ID, msg_id: bytes | None = None):
        topics = list(topic_ids)   # read twice: by the library's choice and by ours
        peers = set(super()._get_peers_to_send(topics, msg_forwarder, origin, msg_id))
        if self.pubsub is None or not self.core_peers:
            return peers
        if origin == self.pubsub.my_id:
            scorer = self.scorer
            for topic in topics:
                if topic in self.flood_topics:
                    peers.update(p for p in self.pubsub.peer_topics.get(topic, ()) if p in self.core_peers
                                 and (scorer is None or scorer.allow_publish(p, [topic])))
            peers.discard(msg_forwarder)
        elif (msg_forwarder == origin and origin not in self.core_peers and self.pubsub.my_id in self.core_peers
              and all(t in self.direct_topics for t in topics)):
            peers -= self.core_peers
        return peers


def get_low_score_reason(scorer, peer: ID, topics: list[str]) -> str:
    """What brought ``peer``'s score down, for the ban's log line and metric label:
    invalid messages (our REJECTs) or one of py-libp2p's behaviour penalties."""
    penalties = {
        "invalid_messages": sum(INVALID_WEIGHT * scorer.invalid_messages[peer][t] for t in topics),
        "equivocation": scorer.equivocation_penalties[peer],
        "graft_flood": scorer.graft_flood_penalties[peer],
        "iwant_spam": scorer.iwant_spam_penalties[peer],
        "ihave_spam": scorer.ihave_spam_penalties[peer],
        "behaviour": scorer.behavior_penalty[peer],
    }
    return max(penalties, key=lambda k: penalties[k])


def make_router(urgent_topics: frozenset[str] = frozenset(), direct_topics: frozenset[str] = frozenset(),
                core_peers: frozenset[ID] = frozenset()) -> GossipSub:
    """Gossipsub v1.1 with the settings of DEPENDENCIES.md, and the priority and
    direct-delivery policies of PriorityGossipSub.

    - spam protection off (pitfall 1: 10 msg/s per peer, dropped with a log line);
      validation and scoring do that job;
    - adaptive gossip off: in a small or young mesh its "health" is low and it then
      raises the heartbeat interval to 60 s, which stalls mesh repair;
    - eclipse protection off: every localnet peer shares 127.0.0.1.
    """
    return PriorityGossipSub(
        urgent_topics=urgent_topics,
        direct_topics=direct_topics,
        core_peers=core_peers,
        protocols=[PROTOCOL_ID_V11, PROTOCOL_ID],
        degree=DEGREE,
        degree_low=DEGREE_LOW,
        degree_high=DEGREE_HIGH,
        heartbeat_interval=HEARTBEAT_S,
        score_params=make_score_params(),
        spam_protection_enabled=False,
        adaptive_gossip_enabled=False,
        eclipse_protection_enabled=False,
    )


def gossip_message_id(msg: rpc_pb2.Message) -> bytes:
    return compute_message_id(msg.data)


Judge = Callable[[ID, rpc_pb2.Message], Awaitable[Verdict]]


class _Ignored(Exception):
    """Raised through Pubsub.push_msg to stop it before scoring and forwarding."""


class VerdictPubsub(Pubsub):
    """Pubsub whose validation answers ACCEPT, REJECT or IGNORE.

    In Pubsub.push_msg a ``ValidationError`` from ``validate_msg`` counts an invalid
    message against the forwarder (P4) and drops it; success marks it seen, credits
    the forwarder, delivers and forwards it. IGNORE must do neither, so it escapes
    push_msg as ``_Ignored`` before any of that, and is not marked seen either: an
    IGNORE says "not now" (a nonce or height ahead of ours, a full mempool, busy),
    and the same bytes sent again later must be judged again. Seen ids live in a
    last-seen cache whose 120 s expiry every copy renews, so a household gossiping
    its pending tx again every 30 s, or a validator its vote every few seconds,
    would otherwise be dropped unjudged for as long as it kept trying. Duplicates
    of what was accepted never reach the judge: the message id is content-addressed
    and push_msg drops seen ids first.
    """

    def __init__(self, host: IHost, router: GossipSub, judge: Judge) -> None:
        super().__init__(host, router, msg_id_constructor=gossip_message_id,
                         max_inbound_rpc_size=MAX_RPC_BYTES)
        # py-libp2p starts seqnos at int(time.time()) and adds one per publish: a node
        # publishing more than once a second reuses its old seqnos after a restart, and
        # gossipsub's equivocation check (same from+seqno, other data) then scores it
        # -100 and every peer bans it. Nanoseconds, as go-libp2p does, never repeat.
        self.counter = time.time_ns()
        self._judge = judge

    async def validate_msg(self, msg_forwarder: ID, msg: rpc_pb2.Message) -> None:
        if msg_forwarder == self.my_id:
            return  # our own publish: the node made it
        verdict = await self._judge(msg_forwarder, msg)
        if verdict.outcome is Outcome.REJECT:
            raise ValidationError(verdict.reason)
        if verdict.outcome is Outcome.IGNORE:
            raise _Ignored(verdict.reason)

    def forget_seen(self, data: bytes) -> None:
        """Drop ``data``'s id from our seen cache, so that publishing the same bytes again
        reaches the network: Pubsub.publish silently drops a message it has seen, so
        without this a consensus re-broadcast (the engine's retry of lost messages)
        never left the node. Peers that already have it drop the copy as a duplicate."""
        cache = self.seen_messages
        with cache.lock:
            cache.cache.pop(compute_message_id(data), None)

    async def push_msg(self, msg_forwarder: ID, msg: rpc_pb2.Message) -> None:
        try:
            await super().push_msg(msg_forwarder, msg)
        except _Ignored:
            return

    async def stream_handler(self, stream) -> None:
        """py-libp2p 0.8.1 handles stream and framing errors (an oversize length
        prefix included) but lets protobuf's DecodeError (an RPC that does not parse)
        escape, and that takes the whole host down: one peer's bad bytes must only
        cost that peer its stream."""
        try:
            await super().stream_handler(stream)
        except ProtobufDecodeError as exc:
            peer_id = stream.muxed_conn.peer_id
            log.warning("peer %s sent a pubsub RPC that does not parse (%s): stream closed", peer_id, exc)
            await stream.reset()
            self._handle_dead_peer(peer_id)

    async def _teardown_if_connected(self, peer_id: ID) -> None:
        """Run by ``add_to_blacklist`` (our bans). py-libp2p 0.8.1 resets the peer's
        stream and then deletes the peer, but the reset ends the peer's reader, whose
        ``_handle_dead_peer`` may delete it first: the KeyError then stops the whole
        Pubsub service and the node with it ("Nursery is closed to new arrivals" for
        the next RPC). Seen when a validator banned the e2e hostile peer."""
        stream = self.peers.get(peer_id)
        if stream is not None:
            try:
                await stream.reset()
            except Exception:  # the stream is being dropped anyway, whatever its state
                log.debug("resetting the stream of banned peer %s failed", peer_id)
            self.peers.pop(peer_id, None)
        self._forget_all_subscriptions(peer_id)
