"""Running a node: the consensus driver, block sync, the HTTP server and signal handling."""

from __future__ import annotations

import logging
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import multiaddr
import trio
from hypercorn.config import Config as HttpConfig
from hypercorn.trio import serve as serve_http

from consensus.block import Block, Commit, get_equivocators
from consensus.errors import InvalidBlock
from consensus.events import (
    Broadcast, CommitBlock, PersistBeforeSign, ScheduleTimeout, Start, Timeout, as_input,
)
from consensus.sync import MAX_SYNC_BATCH, Trusted, verify_chain
from consensus.messages import Decision
from consensus.vote import VOTE_KINDS, DuplicateVote, Vote
from node.api.app import build_app
from node.consent.store import open_consent_store
from node.service.errors import ServiceError
from node.home.homedir import home_key, load_home
from node.home.receivekeys import get_receive_dir, load_receive_keys
from node.service.roles import compute_role
from node.service.upgrades import check_fork, check_software_version, get_fork
from node.net.peers import parse_peer_addr
from node.net import BlocksPruned, NetError, NetSettings, TopicKind, open_network
from node.service.ledger_app import Committed
from node.service.ownlog import OwnMessages, load_own_messages
from node.service.roles import get_identity_seed
from node.service.sealing import NoCommuneKey
from node.service.cuts import CUT_OVERDUE_S
from node.service.node import EffectsRewrite, Node
from node.service.signstate import append_sign_journal, prepare_sign_state, save_sign_state
from node.service.statesync import (
    SNAPSHOT_INTERVAL, SNAPSHOT_KEEP, join_by_state_sync, keep_snapshots, respond_state,
)
from node.service.lightnode import run_light_node
from node.service.lightserve import EntriesServer
from node.store import Store
from node.store.pruning import Pruning
from node.store.store import DB_DIR
from tokens import MemoryKV, genesis_writes, get_state_hash, get_time_ms
from tokens.sealing import Keyring, compute_genesis_keyring
from tokens.settlement import Settled
from wire import MAX_BLOCK_BYTES, DecodeError, decode

log = logging.getLogger("voisinage.node")

SYNC_CHECK_S = 1.0
REGOSSIP_S = 1.0                # restored own messages: re-sent as the engine re-sends its own
SYNC_BEHIND = 2                 # DESIGN §7: sync when more than 2 heights behind
STARTUP_PEER_WAIT_S = 3.0


def tx_tag(data: bytes) -> str:
    """The type tag of an encoded tx without decoding it all: [fixstr tag, ...]."""
    if len(data) > 2 and data[1] & 0xE0 == 0xA0:
        return data[2:2 + (data[1] & 0x1F)].decode("ascii", "replace")
    return "unknown"


def last_commit(store: Store) -> Commit | None:
    """The commit of the last stored block (None at genesis)."""
    h = store.height()
    return decode(store.commit(h), Commit, MAX_BLOCK_BYTES) if h > 0 else None


class Driver:
    """The one owner of the consensus engine."""

    def __init__(self, node: Node, nursery: trio.Nursery) -> None:
        self.node, self.nursery = node, nursery
        # Every node: one that becomes a validator records what it signs from its first vote.
        self.own = OwnMessages(node.home.path)

    async def run(self) -> None:
        node = self.node
        await self.execute(node.engine.step(Start(node.store.height() + 1, last_commit(node.store),
                                                   ready=node.is_ready())))
        await self.restore_own_messages()
        async for inp in node.inputs_recv:
            if isinstance(inp, Start) and inp.height != node.store.height() + 1:
                continue  # a restart request overtaken by a later commit
            await self.execute(node.engine.step(inp))

    async def restore_own_messages(self) -> None:
        """After a restart mid-height: what this validator signed there before goes back
        to its engine and out to its peers (ownlog.py says why)."""
        node = self.node
        if self.own is None:
            return
        height = node.engine.height
        restored = load_own_messages(node.home.path, node.chain_id, height, node.key.public,
                                     node.engine.sign_state)
        if not restored:
            return
        log.info("resuming height %d with %d messages signed before the restart", height, len(restored))
        for msg in restored:
            await self.execute(node.engine.step(as_input(msg)))
        self.nursery.start_soon(self.regossip, height, [m.encode() for m in restored])

    async def regossip(self, height: int, messages: list[bytes]) -> None:
        """Gossip the restored messages every second until the height is decided: like
        the engine's own re-broadcasts, which died with the previous process."""
        while self.node.engine.height == height:
            for data in messages:
                await self.publish(TopicKind.CONSENSUS, data)
            await trio.sleep(REGOSSIP_S)

    async def execute(self, effects) -> None:
        node = self.node
        if node.rewrite_effects is not None:
            effects = node.rewrite_effects(effects, node.chain_id, node.key)
        for index, effect in enumerate(effects):
            if isinstance(effect, PersistBeforeSign):
                self.save_signed(effect, effects[index + 1:index + 2])
            elif isinstance(effect, Broadcast):
                kind = TopicKind.EVIDENCE if isinstance(effect.message, DuplicateVote) else TopicKind.CONSENSUS
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("gossip %s", describe(effect.message))
                await self.publish(kind, effect.message.encode())
            elif isinstance(effect, ScheduleTimeout):
                self.nursery.start_soon(self.timer, effect)
            elif isinstance(effect, CommitBlock):
                await self.commit(effect)
        node.metrics.consensus_round.set(node.engine.round)

    def save_signed(self, effect: PersistBeforeSign, following: list) -> None:
        """DESIGN §6: the signed message (ownlog.py) then the fsynced record, before the
        Broadcast that follows them is sent."""
        node = self.node
        if self.own is not None and following and isinstance(following[0], Broadcast):
            self.own.record(effect.state.height, following[0].message.encode())
        save_sign_state(node.home.path, effect.state)
        if node.sign_journal:
            append_sign_journal(node.home.path, effect.state)

    async def publish(self, kind: TopicKind, data: bytes) -> None:
        try:
            await self.node.net.publish(kind, data)
        except NetError as exc:
            log.warning("could not gossip a consensus message: %s", exc)

    async def timer(self, effect: ScheduleTimeout) -> None:
        await trio.sleep(effect.delay_ms / 1000)
        await self.node.inputs_send.send(Timeout(effect.height, effect.round, effect.step))

    async def commit(self, effect: CommitBlock) -> None:
        node = self.node
        height = effect.block.header.height
        async with node.commit_lock:
            if height == node.store.height() + 1:
                record_commit(node, node.app.commit(effect.block, effect.commit, effect.equivocators))
            last = effect.commit if height == node.store.height() else last_commit(node.store)
        await self.execute(node.engine.step(Start(node.store.height() + 1, last, ready=node.is_ready())))


def describe(message) -> str:
    """One consensus message for the debug log: what, height, round."""
    if isinstance(message, DuplicateVote):
        return f"evidence against {message.vote_a.validator.hex()[:8]} at height {message.vote_a.height}"
    if isinstance(message, Decision):
        return f"decision for height {message.block.header.height}"
    what = VOTE_KINDS[message.kind] if isinstance(message, Vote) else type(message).__name__.lower()
    return f"{what} {message.height}/{message.round}"


def record_commit(node: Node, committed: Committed) -> None:
    """Metrics and mempool bookkeeping after a block is stored."""
    now = time.monotonic()
    m = node.metrics
    block = committed.block
    for entry in node.mempool.remove(committed.result.tx_ids):
        m.commit_latency.observe(now - entry.arrived)
    for tag, count in Counter(tx_tag(data) for data in block.txs).items():
        m.txs.labels(tag).inc(count)
    interval = None if node.stats.last_commit is None else now - node.stats.last_commit
    if interval is not None:
        m.block_interval.observe(interval)
    node.stats.last_commit = now
    node.stats.settled_intervals += sum(isinstance(e, Settled) for e in committed.result.events)
    m.equivocations.inc(len(get_equivocators(block)))
    m.height.set(block.header.height)
    m.mempool_txs.set(len(node.mempool))
    node.notify_stored()
    node.follow_validator_set()
    node.publish_receive_key()
    node.drive_cut()
    log.info("committed height %d: %d txs, id %s, round %d%s", block.header.height, len(block.txs),
             committed.block_id.hex()[:12], committed.round,
             "" if interval is None else f", {interval:.2f} s after the previous one")
    check_software_version(node.store.state, block.header.height)


class Syncer:
    """DESIGN §7 block sync: at start-up, and whenever more than 2 heights behind."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def run(self) -> None:
        node = self.node
        with trio.move_on_after(STARTUP_PEER_WAIT_S):
            while not node.net.peer_heights():
                await trio.sleep(0.1)
        await self.catch_up(behind=0)
        while True:
            await trio.sleep(SYNC_CHECK_S)
            await self.catch_up(behind=SYNC_BEHIND)

    async def catch_up(self, behind: int) -> None:
        node = self.node
        banned = set(node.net.banned_peers())
        heights = {p: h for p, h in node.net.peer_heights().items() if p not in banned}
        if not heights:
            return
        tried = False
        # Highest first; a peer that fails (a pruned node answers "pruned" for blocks
        # below its window, docs/state.md) hands over to the next one.
        for peer, best in sorted(heights.items(), key=lambda item: -item[1]):
            if best - node.store.height() <= behind:
                break
            tried = node.stats.syncing = True
            try:
                await self.sync_from(peer, best)
            finally:
                node.stats.syncing = False
        if not tried:
            return
        await node.inputs_send.send(Start(node.store.height() + 1, last_commit(node.store),
                                          ready=node.is_ready()))

    async def sync_from(self, peer: str, target: int) -> None:
        node = self.node
        start = node.store.height()
        progress = SyncProgress(start, target)
        while node.store.height() < target:
            height = node.store.height()
            try:
                raw = await node.net.request_blocks(peer, height + 1, min(MAX_SYNC_BATCH, target - height))
                pairs = [(decode(b, Block, MAX_BLOCK_BYTES), decode(c, Commit, MAX_BLOCK_BYTES)) for b, c in raw]
            except (NetError, DecodeError) as exc:
                log.warning("block sync from %s failed: %s", peer[:12], exc)
                return
            if not pairs:
                return
            if not await self.apply_pairs(peer, pairs):
                return
            progress.update(node.store.height())
        progress.done(node.store.height())

    async def apply_pairs(self, peer: str, pairs) -> bool:
        node = self.node
        # Consensus may have committed some of these while the request was in flight:
        # they are not the peer's fault, skip them rather than call the batch a gap.
        pairs = [(b, c) for b, c in pairs if b.header.height > node.store.height()]
        trusted = Trusted(node.store.height(), node.store.last_block_id() or bytes(32),
                          get_time_ms(node.store.state) if node.store.height() > 0 else None)
        try:
            for block, commit in verify_chain(trusted, node.chain_id, pairs, node.app.validator_set):
                async with node.commit_lock:
                    if block.header.height != node.store.height() + 1:
                        return True
                    record_commit(node, node.app.commit(block, commit, get_equivocators(block)))
                    node.synced_blocks.inc()
                await trio.sleep(0)
        except InvalidBlock as exc:
            log.warning("peer %s sent an invalid chain (%s): banned", peer[:12], exc)
            node.net.ban_peer(peer, f"bad sync response: {exc}")
            return False
        return True


class SyncProgress:
    """A progress bar on a terminal, a log line per batch otherwise."""

    def __init__(self, start: int, target: int) -> None:
        self.start, self.target = start, target
        self.bar = None
        if sys.stderr.isatty():
            from rich.progress import Progress

            self.bar = Progress(transient=True)
            self.bar.start()
            self.task = self.bar.add_task("block sync", total=target - start)
        log.info("block sync: %d -> %d", start, target)

    def update(self, height: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=height - self.start)
        else:
            log.info("block sync: height %d of %d", height, self.target)

    def done(self, height: int) -> None:
        if self.bar is not None:
            self.bar.stop()
        log.info("block sync done at height %d", height)


def open_store(home) -> Store:
    store = Store.open_home(home.path, chain_id=home.genesis.chain_id)
    try:
        init_genesis(home, store)
    except BaseException:
        store.close()
        raise
    return store


def init_genesis(home, store: Store) -> None:
    """An empty store starts from genesis (unless state sync installed a snapshot)."""
    if not store.is_initialized():
        writes = genesis_writes(home.genesis, open_genesis_keyring(home))
        store.init_genesis(home.genesis.chain_id, writes, get_state_hash(MemoryKV(writes)))


def open_genesis_keyring(home) -> Keyring | None:
    """docs/privacy.md "Genesis households": a genesis that seals its households opens
    only with the commune key of epoch 0, which the genesis seals to each genesis
    validator; so do the meter and PRM index keys of any household of a chain that seals
    (tokens/indexkeys.py). Any other full node joins by state sync, and is refused here
    in one line."""
    if not home.genesis.needs_commune_key:
        return None
    key = home_key(home)
    keys = compute_genesis_keyring(home.genesis, key.seed, key.public, load_receive_keys(get_receive_dir(home.path)))
    if 0 not in keys.secrets:
        raise NoCommuneKey("this chain seals household payloads, and its genesis households' records and indexes "
                           f"open only with the commune data key of epoch 0, which this node's key "
                           f"{key.public.hex()[:16]}… (no genesis validator) does not hold: it cannot compute the "
                           "genesis state. A full node (an auditor's) joins by state sync from a validator's "
                           "snapshot; a household's node runs --light (docs/privacy.md)")
    return keys


def check_households_sealed(genesis) -> None:
    """A genesis that seals payloads but lists a household in clear publishes its meter,
    PRM and label to every node: refused, but for a development genesis."""
    clear = genesis.clear_households
    if clear and not genesis.dev:
        raise ServiceError(f"genesis.json seals household payloads but lists {len(clear)} household(s) in clear "
                           f"(households[{clear[0]}] first): their meter, PRM and label are in every copy of the "
                           "file. Write the genesis with `voisinage genesis new --seal-payloads`, which seals each "
                           "one (docs/privacy.md \"Genesis households\")")


def check_port_free(host: str, port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ServiceError(f"cannot serve HTTP on {host}:{port}: {exc.strerror}") from None


def parse_http(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ServiceError(f"bad --http address {addr!r}: expected HOST:PORT")
    return host or "127.0.0.1", int(port)


async def serve_api(node: Node, host: str, port: int, api_token: str | None = None,
                    task_status=trio.TASK_STATUS_IGNORED) -> None:
    config = HttpConfig()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("voisinage.http")
    config.graceful_timeout = 1
    # The household's consents live in its home, beside the chain's store (node/consent/store.py).
    with open_consent_store(node.home.path) as consent:
        await serve_http(build_app(node, api_token=api_token, consent=consent), config, task_status=task_status)


async def run_node(home_dir: Path, *, listen: str | None = None, peers: list[str] = (),
                   http: str | None = None, sign_journal: bool = False, api_token: str | None = None,
                   rewrite_effects: EffectsRewrite | None = None, relay_txs: bool | None = None,
                   check_all_signatures: bool = False, pruning: Pruning | None = None,
                   state_sync: bool = True, snapshot_interval: int | None = None,
                   snapshot_keep: int | None = None, reset_sign_state_at: int | None = None,
                   light: bool = False, rewrite_answers: Callable[[bytes], bytes] | None = None,
                   check_workers: int = 0, cut_overdue_s: int = CUT_OVERDUE_S) -> None:
    """``relay_txs``: None means as the role needs (validators yes, households no);
    ``pruning``: what the store keeps (node/store/pruning.py); ``state_sync``: an empty
    home joins from a peer's snapshot; ``snapshot_interval``: heights between a
    validator's snapshots (0: none; None: SNAPSHOT_INTERVAL) (node/service/statesync.py);
    ``reset_sign_state_at``: the operator's explicit new double-sign record
    (signstate.prepare_sign_state); ``light``: a household node that follows headers
    and its own proven entries only (lightnode.py; a home made light stays light);
    ``rewrite_answers``: None when honest (the live tests' ``--byzantine lie-proofs``);
    ``check_workers``: arriving txs checked in that many processes (node/service/txprocs.py),
    stopped with the node; 0: on worker threads; ``cut_overdue_s``: when a validator's
    node says a due cut is overdue (node/service/cuts.py)."""
    snapshot_interval = SNAPSHOT_INTERVAL if snapshot_interval is None else snapshot_interval
    snapshot_keep = SNAPSHOT_KEEP if snapshot_keep is None else snapshot_keep
    home = load_home(home_dir)
    check_households_sealed(home.genesis)
    http_host, http_port = parse_http(http or home.config.get("http", "127.0.0.1:8700"))
    check_port_free(http_host, http_port)
    listen = listen or home.config.get("listen") or _genesis_listen(home)
    peers = check_addrs(listen, list(peers))
    if not light and is_sealed_household_home(home):
        log.info("this commune seals household payloads: a household's node runs light (docs/privacy.md)")
        light = True
    if light or is_light_home(home):
        await run_light_node(home.path, listen=listen, peers=peers, http_host=http_host, http_port=http_port,
                             api_token=api_token, archive_keep_s=(pruning or Pruning()).archive_keep_s)
        return
    store, started = Store.open_home(home.path, chain_id=home.genesis.chain_id), False
    node = None
    try:
        # A genesis validator on an empty home is the network starting: nothing to sync.
        new_home = not store.is_initialized()
        if state_sync and new_home and not _is_genesis_validator(home):
            await join_by_state_sync(home, store, peers)
        init_genesis(home, store)
        check_software_version(store.state, store.height())
        own = home_key(home).public
        prepare_sign_state(home.path, store, own, compute_role(own, store.state, store.height()).is_validator,
                           reset_sign_state_at, new_home=new_home)
        node = Node(home, store, sign_journal=sign_journal, rewrite_effects=rewrite_effects,
                    check_all_signatures=check_all_signatures, relay_txs=relay_txs, pruning=pruning,
                    check_workers=check_workers, cut_overdue_s=cut_overdue_s)
        handlers = {TopicKind.TX: node.on_tx, TopicKind.CONSENSUS: node.on_consensus,
                    TopicKind.EVIDENCE: node.on_evidence, TopicKind.HEARTBEAT: node.on_heartbeat}
        # DESIGN §7 peers: the validators in state (genesis + ValidatorSetChange), then --peer.
        bootstrap = list(node.role.validator_addrs) + peers
        settings = NetSettings(identity_seed=get_identity_seed(node.key, store.state, store.height()),
                               core_peers=node.role.core_peers,
                               relay_txs=node.is_validator if relay_txs is None else relay_txs)
        async with open_network(home.path, home.genesis.chain_id, listen, bootstrap, handlers,
                                get_block=lambda h: _stored_pair(store, h), get_height=store.height,
                                settings=settings, serve_state=partial(respond_state, store, home.path),
                                get_fork=partial(get_fork, store, home.genesis.chain_id),
                                check_fork=partial(check_fork, store, home.genesis.chain_id),
                                serve_light=EntriesServer(store.snapshot, home.genesis.chain_id,
                                                          rewrite=rewrite_answers).respond,
                                tx_batch_handler=node.on_tx_batch) as net:
            node.net, started = net, True
            log.info("node %s (%s) at height %d, peer id %s", home.config.get("name", home.path.name),
                     "validator" if node.is_validator else "full node", store.height(), net.peer_id)
            async with trio.open_nursery() as nursery:
                node._nursery = nursery
                nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
                await nursery.start(serve_api, node, http_host, http_port, api_token)
                nursery.start_soon(Driver(node, nursery).run)
                nursery.start_soon(Syncer(node).run)
                nursery.start_soon(node.keep_pending_moving)
                if snapshot_interval > 0:
                    nursery.start_soon(keep_snapshots, store, home.path, snapshot_interval, snapshot_keep,
                                       lambda: node.is_validator)
                nursery.start_soon(node.wake_when_due)
                nursery.start_soon(node.send_heartbeats)
                nursery.start_soon(node.publish_receive_key_at_start)
                nursery.start_soon(node.keep_cut_moving)
    finally:
        if node is not None:
            node.checker.close()
        store.close()
        if started:
            log.info("store closed at height %d", store.height())


def is_sealed_household_home(home) -> bool:
    """A genesis household's new home on a commune that seals payloads: it holds no copy
    of the commune data key, so it could not replay the chain; it runs light."""
    if not home.genesis.seals_payloads or (home.path / DB_DIR).is_dir():
        return False
    own = home_key(home).public
    return any(h.key == own for h in home.genesis.households)


def is_light_home(home) -> bool:
    """Whether the home's store is a light one (node/store/light.py)."""
    if not (home.path / DB_DIR).is_dir():
        return False
    with Store.open_home(home.path, chain_id=home.genesis.chain_id) as store:
        return store.is_light()


def check_addrs(listen: str, peers: list[str]) -> list[str]:
    """Bad --listen or --peer addresses fail before the store is opened: one line."""
    try:
        multiaddr.Multiaddr(listen)
    except Exception as exc:  # multiaddr raises many types on garbage; all mean bad input
        raise ServiceError(f"bad listen address {listen!r}: {str(exc)[:100] or type(exc).__name__}") from None
    for addr in peers:
        parse_peer_addr(addr)
    return peers


def _stored_pair(store: Store, height: int):
    block, commit = store.block(height), store.commit(height)
    if block is None and 1 <= height < store.blocks_from():
        # DESIGN §7: the asker moves on to another peer (runner.BlockSync.catch_up).
        raise BlocksPruned(f"pruned: blocks are kept here from height {store.blocks_from()}")
    return (block, commit) if block is not None and commit is not None else None


def _is_genesis_validator(home) -> bool:
    key = home_key(home).public
    return any(v.key == key for v in home.genesis.validators)


def _genesis_listen(home) -> str:
    """A validator listens on its genesis address by default; others on any free port."""
    key = home_key(home).public
    for v in home.genesis.validators:
        if v.key == key:
            return v.addr
    return "/ip4/127.0.0.1/tcp/0"


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s: shutting down", signal.Signals(signum).name)
            scope.cancel()
            return
