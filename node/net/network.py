"""The Network service: one libp2p host, three gossip topics, sync and status (DESIGN §7).

Use::

    async with open_network(home, chain_id, "/ip4/0.0.0.0/tcp/26656", peers, handlers,
                            get_block=store_get, get_height=store_height) as net:
        await net.publish(TopicKind.TX, tx_bytes)          # batched
        pairs = await net.request_blocks(peer_id, 10, 256)

Handlers, one per topic kind, are sync or async callables ``(peer_id: str, data: bytes)
-> Verdict``. On the tx topic the handler is called once per tx of a batch, unless a
``tx_batch_handler`` ``(peer_id, txs) -> [Verdict]`` is given: it then judges the whole
batch, in order, up to its first REJECT (a node checks a batch's signatures on worker
threads, node/service/txcheck.py). A handler runs inside gossip validation: ACCEPT
means "valid and taken", and the message is then forwarded; REJECT penalises the
forwarder; IGNORE drops it quietly.
"""

from __future__ import annotations

import inspect
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost, ISubscriptionAPI
from libp2p.custom_types import TProtocol
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.tools.anyio_service import background_trio_service

from wire import DecodeError, decode
from wire.limits import MAX_GOSSIP_BYTES

from node.errors import find_only
from node.net import gossip, libp2p_fixes, statesync, sync
from node.net.batcher import DEFAULT_DELAY_S, TxBatcher
from node.net.errors import LocalProtocolError, NetError, NetSetupError, RemoteProtocolError
from node.net.identity import load_or_create_identity
from node.net.messages import (
    FORK_HASH_BYTES, MAX_STATE_REPLY_BYTES, GetState, LightRequest, StateReply, Status, SyncFailure, TxBatch,
)
from node.net.peers import PeerManager, PeerPolicy, parse_peer_addr
from node.net.topics import (
    TopicKind, compute_message_id, light_protocol, state_protocol, status_protocol, sync_protocol, topic_name,
)
from node.net.verdict import (
    MALFORMED, OVERSIZE, Outcome, Verdict, VerdictCounts, compute_batch_verdict, ignore, reject,
)

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], Verdict | Awaitable[Verdict]]
BatchHandler = Callable[[str, Sequence[bytes]], Awaitable[list[Verdict]]]
REJECTED_CACHE = 4096
# A consensus message published again (the engine's repair of lost messages) goes out
# at most this often: more would flood peers that already have it with duplicates.
REPUBLISH_S = 5.0
REPUBLISHED_CACHE = 4096
WATCH_INTERVAL_S = 1.0
STATUS_PEERS_PER_POLL = 3
CLOSE_DEADLINE_S = 5.0


@dataclass(frozen=True)
class NetSettings:
    # Preferred muxer; py-libp2p offers the other one too. mplex is faster in bench
    # localnet, but an mplex node crashed inside py-libp2p's pubsub under the e2e
    # hostile peer, so yamux is the default (docs/performance.md, "Constants and the
    # runs behind them").
    muxer: str = "YAMUX"
    batch_delay_s: float = DEFAULT_DELAY_S
    # Subscribe to the tx topic: receive, check and relay everybody's txs. Proposers
    # need them; a household node does not, and publishes its own batches through
    # gossipsub's fanout (to subscribed peers) instead. Every tx batch otherwise costs
    # every node a signature check per tx: on the bench's 2 cores, 8 household nodes
    # spent more CPU checking txs they never use than the 4 validators did.
    relay_txs: bool = True
    status_interval_s: float = 2.0
    identity_seed: bytes | None = None   # a validator's key seed: see identity.py
    # A throwaway identity, neither read from nor written to p2p.key: state sync's short
    # session before the node's own network. Under its real peer id, the session's
    # closed connections left the peers' gossipsub without that peer in its mesh when
    # the node came back at once: it then heard no block and no tx of its reached a
    # validator (measured: a household block-synced every 4 s and its readings were late).
    ephemeral_identity: bool = False
    # Peer ids (base58) of the validators: our own consensus messages and tx batches go
    # to each of them directly, not only to our gossip mesh, and a tx batch received
    # from its (non-validator) author is not relayed to them (gossip.PriorityGossipSub).
    core_peers: frozenset[str] = frozenset()
    # py-libp2p logs routine events (a peer restarting, a refused dial) as errors with
    # tracebacks on stderr; the node shows its own one-line messages instead. None
    # leaves the "libp2p" logger as the application configured it.
    libp2p_log_level: int | None = logging.CRITICAL
    peers: PeerPolicy = field(default_factory=PeerPolicy)
    # The topics heard besides the tx topic (which ``relay_txs`` says). A household node
    # in light mode hears heartbeats only: consensus messages carry whole blocks, and
    # it keeps nobody else's data (docs/privacy.md "Household nodes").
    subscribe: frozenset[TopicKind] = frozenset({TopicKind.CONSENSUS, TopicKind.EVIDENCE, TopicKind.HEARTBEAT})


def _no_block(height: int) -> tuple[bytes, bytes] | None:
    return None


def _zero_height() -> int:
    return 0


def _no_fork() -> tuple[bytes, int]:
    return bytes(FORK_HASH_BYTES), 0


def _any_fork(fork_hash: bytes, fork_next: int) -> None:
    return None


class Network:
    """Built by ``open_network``; see the module docstring for the API."""

    def __init__(self, host: IHost, chain_id: bytes, handlers: Mapping[TopicKind, Handler],
                 bootstrap: Sequence[str], get_block: sync.GetBlock, get_height: sync.GetHeight,
                 settings: NetSettings, serve_state: statesync.StateResponder | None = None,
                 get_fork: sync.GetFork = _no_fork, check_fork: sync.CheckFork = _any_fork,
                 serve_light: statesync.LightResponder | None = None,
                 tx_batch_handler: BatchHandler | None = None) -> None:
        self.host, self.chain_id, self.settings = host, chain_id, settings
        self._handlers = dict(handlers)
        self._tx_batch_handler = tx_batch_handler
        self._topics = {kind: topic_name(chain_id, kind) for kind in TopicKind}
        self._kind_of = {name: kind for kind, name in self._topics.items()}
        self._bootstrap = [parse_peer_addr(a) for a in bootstrap]
        self._get_height = get_height
        self._get_fork, self._check_fork = get_fork, check_fork
        self.refused: dict[str, str] = {}     # peer -> why its fork id was refused (the last time)
        self.router: GossipSub = gossip.make_router(
            urgent_topics=frozenset(self._topics[kind] for kind in (TopicKind.CONSENSUS, TopicKind.EVIDENCE)),
            direct_topics=frozenset({self._topics[TopicKind.TX]}),
            core_peers=frozenset(ID.from_base58(p) for p in settings.core_peers))
        self.pubsub = gossip.VerdictPubsub(host, self.router, self._judge)
        self.peer_manager = PeerManager(host, self.pubsub, settings.peers)
        self.counts = VerdictCounts()
        self._rejected: OrderedDict[bytes, Verdict] = OrderedDict()
        self._published: OrderedDict[bytes, float] = OrderedDict()
        self._heights: dict[str, int] = {}
        self.delivered = 0
        self.batcher = TxBatcher(self._publish_tx_batch, delay_s=settings.batch_delay_s)
        self._server = sync.SyncServer(get_block, self._own_status, self._on_peer_status)
        self._state_server = None if serve_state is None else statesync.StateSyncServer(serve_state)
        self._light_server = None if serve_light is None else statesync.StateSyncServer(serve_light, light=True)
        self._nursery: trio.Nursery | None = None
        # Validators added after start-up: peer id -> the cancel scope of their dialling.
        self._validator_dials: dict[ID, trio.CancelScope] = {}
        self._tx_drain: trio.CancelScope | None = None

    # ---- API for the node ----

    @property
    def peer_id(self) -> str:
        return self.host.get_id().to_base58()

    def listen_addrs(self) -> list[str]:
        """Full multiaddrs, each ending in /p2p/<our peer id>."""
        suffix = f"/p2p/{self.peer_id}"
        return [s if s.endswith(suffix) else s + suffix for s in map(str, self.host.get_addrs())]

    def peers(self) -> list[str]:
        """Ids of the peers we are connected to, sorted; ``len()`` is the peer count."""
        return sorted(p.to_base58() for p in self.host.get_connected_peers())

    def peer_heights(self) -> dict[str, int]:
        """Last known committed height of each connected peer (status protocol)."""
        connected = set(self.peers())
        return {p: h for p, h in sorted(self._heights.items()) if p in connected}

    def rejected_total(self) -> dict[str, int]:
        """REJECTs by reason: voisinage_gossip_rejected_total{reason}."""
        return dict(sorted(self.counts.rejected.items()))

    def ignored_total(self) -> dict[str, int]:
        return dict(sorted(self.counts.ignored.items()))

    def banned_peers(self) -> list[str]:
        return self.peer_manager.banned()

    def highest_peer(self) -> tuple[str, int] | None:
        """The connected peer with the highest known height, to sync from."""
        heights = self.peer_heights()
        if not heights:
            return None
        best = max(heights, key=lambda p: (heights[p], p))
        return best, heights[best]

    def topic(self, kind: TopicKind) -> str:
        return self._topics[kind]

    def stats(self) -> dict:
        """Counters for /status and /metrics."""
        return {
            "peer_id": self.peer_id, "peers": len(self.peers()), "banned": len(self.banned_peers()),
            "accepted": self.counts.accepted, "rejected": self.rejected_total(),
            "ignored": self.ignored_total(), "delivered": self.delivered,
            "tx_batches_sent": self.batcher.batches_sent, "txs_sent": self.batcher.txs_sent,
            "blocks_requests_served": self._server.served,
        }

    def ban_peer(self, peer_id: str, reason: str) -> None:
        """For the node: ban a peer caught misbehaving elsewhere (e.g. a bad sync answer)."""
        if self._nursery is None:
            raise LocalProtocolError("the network is not running")
        self.peer_manager.ban(sync.parse_peer_id(peer_id), reason, self._nursery)

    async def publish(self, kind: TopicKind, data: bytes) -> None:
        """Gossip ``data``. On the tx topic ``data`` is one signed tx, batched with others."""
        if kind is TopicKind.TX:
            await self.batcher.add(data)
        else:
            await self.publish_raw(kind, data)

    def set_validator_peers(self, addrs: Sequence[str]) -> None:
        """DESIGN §7 peers follow the validator set in state: ``addrs`` (full multiaddrs)
        become the core peers, and each one is dialled and kept connected without a
        restart; one no longer listed stops being dialled unless it is a bootstrap peer.
        An address that does not parse is skipped: the ledger stores add_addrs as text."""
        infos = {}
        for addr in addrs:
            try:
                info = parse_peer_addr(addr)
            except NetSetupError as exc:
                log.warning("validator address skipped: %s", exc)
                continue
            infos[info.peer_id] = info
        self.router.core_peers = frozenset(infos)
        for peer in [p for p in self._validator_dials if p not in infos]:
            self._validator_dials.pop(peer).cancel()
        known = {b.peer_id for b in self._bootstrap} | set(self._validator_dials) | {self.host.get_id()}
        for peer, info in infos.items():
            if peer not in known and self._nursery is not None:
                scope = self._validator_dials[peer] = trio.CancelScope()
                self._nursery.start_soon(self._keep_validator_connected, info, scope)

    async def _keep_validator_connected(self, info, scope: trio.CancelScope) -> None:
        with scope:
            await self.peer_manager.keep_connected(info)

    async def set_tx_relay(self, on: bool) -> None:
        """Subscribe to the tx topic (receive, check and relay everybody's txs) or leave it:
        a node that becomes a validator must receive the txs it will propose."""
        topic = self._topics[TopicKind.TX]
        if on == (self._tx_drain is not None) or self._nursery is None:
            return
        if on:
            sub = await self.pubsub.subscribe(topic)
            self._tx_drain = trio.CancelScope()
            self._nursery.start_soon(self._drain_within, sub, self._tx_drain)
        else:
            self._tx_drain.cancel()
            self._tx_drain = None
            await self.pubsub.unsubscribe(topic)

    async def _drain_within(self, sub: ISubscriptionAPI, scope: trio.CancelScope) -> None:
        with scope:
            await self._drain(sub)

    async def flush_txs(self) -> None:
        await self.batcher.flush()

    async def publish_raw(self, kind: TopicKind, data: bytes) -> None:
        """Gossip ``data`` as it is (on the tx topic, an encoded TxBatch)."""
        if type(data) is not bytes or not 0 < len(data) <= MAX_GOSSIP_BYTES:
            raise LocalProtocolError(f"a gossip message is 1..{MAX_GOSSIP_BYTES} bytes")
        if kind is TopicKind.TX:
            # A batch is new content, or on purpose the same txs again (a household
            # re-gossiping what waits for a block): pubsub must not drop it as seen.
            self.pubsub.forget_seen(data)
        elif not self._is_republish_due(data):
            return
        await self.pubsub.publish(self._topics[kind], data)

    def _is_republish_due(self, data: bytes) -> bool:
        """Pubsub silently drops a publish of bytes it has seen, so a consensus re-broadcast
        never left the node (and a halted network never resumed). Let one through, by
        forgetting the id, when the last copy went out REPUBLISH_S ago or more."""
        msg_id, now = compute_message_id(data), trio.current_time()
        last = self._published.get(msg_id)
        if last is not None and now - last < REPUBLISH_S:
            return False
        self._published[msg_id] = now
        self._published.move_to_end(msg_id)
        while len(self._published) > REPUBLISHED_CACHE:
            self._published.popitem(last=False)
        self.pubsub.forget_seen(data)
        return True

    async def request_blocks(self, peer_id: str, from_height: int, count: int) -> list[tuple[bytes, bytes]]:
        """Raw (block, commit) pairs from ``peer_id``; consensus/sync.py verifies them."""
        return await sync.request_blocks(self.host, sync_protocol(self.chain_id), peer_id,
                                         from_height, count)

    async def request_state(self, peer_id: str, kind: int, height: int = 0, index: int = 0) -> bytes:
        """A state-sync answer's bytes from ``peer_id`` (docs/statesync.md); the node checks them."""
        resp = await sync._exchange(self.host, peer_id, state_protocol(self.chain_id),
                                    GetState(kind=kind, height=height, index=index),
                                    (StateReply, SyncFailure), MAX_STATE_REPLY_BYTES + 64)
        return statesync.verify_state_reply(resp)

    async def request_entries(self, peer_id: str, data: bytes) -> bytes:
        """A household node's request (bytes of its own) to ``peer_id``, and the answer's
        bytes (docs/privacy.md "Household nodes"); the node checks them."""
        resp = await sync._exchange(self.host, peer_id, light_protocol(self.chain_id), LightRequest(data=data),
                                    (StateReply, SyncFailure), MAX_STATE_REPLY_BYTES + 64)
        return statesync.verify_state_reply(resp)

    async def request_status(self, peer_id: str) -> int:
        theirs = await sync.request_status(self.host, status_protocol(self.chain_id), peer_id, self._own_status())
        if not self._on_peer_status(peer_id, theirs):
            raise RemoteProtocolError(f"{peer_id} refused: {self.refused[peer_id]}")
        return theirs.height

    def _own_status(self) -> Status:
        fork_hash, fork_next = self._get_fork()
        return Status(height=self._get_height(), fork_hash=fork_hash, fork_next=fork_next)

    def _on_peer_status(self, peer: str, theirs: Status) -> bool:
        """Record a compatible peer's height; refuse an incompatible one (EIP-2124): its
        height is not used and it is disconnected. Returns whether it was compatible."""
        reason = self._check_fork(theirs.fork_hash, theirs.fork_next)
        if reason is None:
            self.refused.pop(peer, None)
            self._record_height(peer, theirs.height)
            return True
        if peer not in self.refused:
            log.warning("refusing peer %s: incompatible fork id: %s", peer, reason)
        self.refused[peer] = reason
        self._heights.pop(peer, None)
        if self._nursery is not None:
            self._nursery.start_soon(self._disconnect, peer)
        return False

    async def _disconnect(self, peer: str) -> None:
        try:
            await self.host.disconnect(sync.parse_peer_id(peer))
        except Exception as exc:  # py-libp2p raises many types for a connection already gone
            log.debug("disconnecting %s: %r", peer, exc)

    # ---- gossip validation ----

    async def _publish_tx_batch(self, data: bytes) -> None:
        await self.publish_raw(TopicKind.TX, data)

    async def _judge(self, forwarder: ID, msg: rpc_pb2.Message) -> Verdict:
        """Verdict for one gossip message, counted by reason. A message already
        rejected is rejected again without re-running the handlers."""
        msg_id = compute_message_id(msg.data)
        verdict = self._rejected.get(msg_id)
        if verdict is None:
            verdict = await self._compute_verdict(forwarder.to_base58(), msg)
            if verdict.outcome is Outcome.REJECT:
                self._remember_rejected(msg_id, verdict)
        self.counts.process_verdict(verdict)
        return verdict

    def _remember_rejected(self, msg_id: bytes, verdict: Verdict) -> None:
        self._rejected[msg_id] = verdict
        while len(self._rejected) > REJECTED_CACHE:
            self._rejected.popitem(last=False)

    async def _compute_verdict(self, peer: str, msg: rpc_pb2.Message) -> Verdict:
        # DESIGN §2/§7: a gossip message over 1 MiB is rejected before decoding.
        if len(msg.data) > MAX_GOSSIP_BYTES:
            return reject(OVERSIZE)
        if len(msg.topicIDs) != 1 or msg.topicIDs[0] not in self._kind_of:
            return reject("unknown_topic")
        kind = self._kind_of[msg.topicIDs[0]]
        handler = self._handlers.get(kind)
        if handler is None:
            return ignore("no_handler")   # never forward what nobody checked
        if kind is not TopicKind.TX:
            return await _call_handler(handler, peer, msg.data)
        try:
            batch = decode(msg.data, expect=TxBatch, limit=MAX_GOSSIP_BYTES)
        except DecodeError:
            return reject(MALFORMED)
        if self._tx_batch_handler is not None:
            return compute_batch_verdict(await self._tx_batch_handler(peer, batch.txs))
        verdicts: list[Verdict] = []
        for tx in batch.txs:
            verdicts.append(await _call_handler(handler, peer, tx))
            if verdicts[-1].outcome is Outcome.REJECT:
                break   # one bad tx condemns the batch: spend no more on a hostile one
        return compute_batch_verdict(verdicts)

    # ---- background work ----

    def _record_height(self, peer: str, height: int) -> None:
        self._heights[peer] = height

    async def _drain(self, sub: ISubscriptionAPI) -> None:
        """Our handlers already took each message during validation; the subscription
        must still be drained, or its channel fills (DEPENDENCIES.md pitfall 2)."""
        while True:
            await sub.get()
            self.delivered += 1

    async def _watch_scores(self) -> None:
        """Ban each peer whose score fell below the ban threshold (REJECTs); py-libp2p
        itself only stops listening to it, and forgets its score on disconnect."""
        topics = sorted(self._topics.values())
        scorer = self.router.scorer
        while True:
            for peer in list(self.pubsub.peers):
                worst = min([scorer.score(peer, topics)] + [scorer.topic_score(peer, t) for t in topics])
                if worst < gossip.BAN_THRESHOLD:
                    self.peer_manager.ban(peer, gossip.get_low_score_reason(scorer, peer, topics), self._nursery)
            self.peer_manager.process_expired_bans()
            await self.peer_manager.enforce_bans()
            await trio.sleep(WATCH_INTERVAL_S)

    async def _poll_heights(self) -> None:
        """Ask a few peers their height each interval, in turn: a status request opens a
        stream (yamux and multistream-select round trips), and asking every peer every
        2 s was a fifth of an idle validator's CPU. Peers never asked yet go first."""
        turn = 0
        while True:
            peers = self.peers()
            fresh = [p for p in peers if p not in self._heights]
            rotation = peers[turn % len(peers):] + peers[:turn % len(peers)] if peers else []
            chosen = list(dict.fromkeys(fresh + rotation))[:max(STATUS_PEERS_PER_POLL, len(fresh))]
            turn += STATUS_PEERS_PER_POLL
            async with trio.open_nursery() as nursery:
                for peer in chosen:
                    nursery.start_soon(self._poll_one, peer)
            await trio.sleep(self.settings.status_interval_s)

    async def _poll_one(self, peer: str) -> None:
        try:
            await self.request_status(peer)
        except NetError as exc:
            log.debug("status of %s: %s", peer, exc)

    def _set_stream_handlers(self) -> None:
        self.host.set_stream_handler(TProtocol(sync_protocol(self.chain_id)), self._serve_sync)
        self.host.set_stream_handler(TProtocol(status_protocol(self.chain_id)), self._serve_status)
        if self._state_server is not None:
            self.host.set_stream_handler(TProtocol(state_protocol(self.chain_id)), self._serve_state)
        if self._light_server is not None:
            self.host.set_stream_handler(TProtocol(light_protocol(self.chain_id)), self._serve_light)

    async def _serve_state(self, stream) -> None:
        if self.peer_manager.is_banned(stream.muxed_conn.peer_id):
            await stream.reset()
            return
        await self._state_server.handle(stream)

    async def _serve_light(self, stream) -> None:
        if self.peer_manager.is_banned(stream.muxed_conn.peer_id):
            await stream.reset()
            return
        await self._light_server.handle(stream)

    async def _serve_sync(self, stream) -> None:
        if self.peer_manager.is_banned(stream.muxed_conn.peer_id):
            await stream.reset()
            return
        await self._server.handle_sync(stream)

    async def _serve_status(self, stream) -> None:
        if self.peer_manager.is_banned(stream.muxed_conn.peer_id):
            await stream.reset()
            return
        await self._server.handle_status(stream)

    async def serve(self, listen: multiaddr.Multiaddr, *,
                    task_status: trio.TaskStatus[Network] = trio.TASK_STATUS_IGNORED) -> None:
        """Run everything; ``task_status.started(self)`` once listening and subscribed."""
        self._set_stream_handlers()
        async with self.host.run(listen_addrs=[listen]):
            try:
                if not self.host.get_network().listeners:
                    raise NetSetupError(f"cannot listen on {listen}: address in use or unavailable")
                async with background_trio_service(self.pubsub), background_trio_service(self.router):
                    await self.pubsub.wait_until_ready()
                    await self._run_tasks(task_status)
            finally:
                # host.run() does not close the listening sockets on exit: without
                # this a restarted node cannot listen on its port again.
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_DEADLINE_S):
                    await self.host.close()

    async def _run_tasks(self, task_status: trio.TaskStatus[Network]) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for kind in TopicKind:
                if kind is not TopicKind.TX and kind in self.settings.subscribe:
                    nursery.start_soon(self._drain, await self.pubsub.subscribe(self._topics[kind]))
            await self.set_tx_relay(self.settings.relay_txs)
            await nursery.start(self.batcher.run)
            for info in self._bootstrap:
                if info.peer_id != self.host.get_id():
                    nursery.start_soon(self.peer_manager.keep_connected, info)
            nursery.start_soon(self._watch_scores)
            nursery.start_soon(self._poll_heights)
            task_status.started(self)
            await trio.sleep_forever()


async def _call_handler(handler: Handler, peer: str, data: bytes) -> Verdict:
    result = handler(peer, data)
    if inspect.isawaitable(result):
        result = await result
    if not isinstance(result, Verdict):
        raise TypeError(f"gossip handler returned {type(result).__name__}, not a Verdict")
    return result


def _parse_listen(addr: str) -> multiaddr.Multiaddr:
    try:
        return multiaddr.Multiaddr(addr)
    except Exception as exc:  # multiaddr raises many types on garbage; all mean bad input
        raise NetSetupError(f"bad listen address {addr!r}: {str(exc)[:100] or type(exc).__name__}") from None


@asynccontextmanager
async def open_network(home_dir: Path, chain_id: bytes, listen_maddr: str,
                       bootstrap_peers: Sequence[str], handlers: Mapping[TopicKind, Handler], *,
                       get_block: sync.GetBlock = _no_block, get_height: sync.GetHeight = _zero_height,
                       settings: NetSettings = NetSettings(),
                       serve_state: statesync.StateResponder | None = None, get_fork: sync.GetFork = _no_fork,
                       check_fork: sync.CheckFork = _any_fork,
                       serve_light: statesync.LightResponder | None = None,
                       tx_batch_handler: BatchHandler | None = None) -> AsyncIterator[Network]:
    """Start the network, yield it once listening, stop it cleanly on exit.

    Bad addresses, a corrupt ``p2p.key`` or a port in use raise ``NetSetupError``.
    """
    libp2p_fixes.apply_library_fixes()
    if settings.libp2p_log_level is not None:
        logging.getLogger("libp2p").setLevel(settings.libp2p_log_level)
    listen = _parse_listen(listen_maddr)
    # An ephemeral identity is saved nowhere: random, or (a joiner of a chain that seals)
    # derived from the node's key seed, so that a validator serves it snapshot chunks.
    key = create_new_key_pair(settings.identity_seed) if settings.ephemeral_identity else \
        load_or_create_identity(Path(home_dir), settings.identity_seed)
    host = new_host(key_pair=key, muxer_preference=settings.muxer)
    net = Network(host, chain_id, handlers, bootstrap_peers, get_block, get_height, settings, serve_state,
                  get_fork, check_fork, serve_light, tx_batch_handler)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(net.serve, listen)
            yield net
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        setup_error = find_only(group, NetSetupError)
        if setup_error is None:
            raise
        raise setup_error from None
