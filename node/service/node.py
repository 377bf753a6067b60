"""One node: store, mempool, ledger app, consensus driver, gossip, block sync and HTTP.

One task owns the consensus engine (CometBFT's "one owner updates the consensus
state"): gossip handlers, timeouts and the syncer only put inputs into its channel.
Effects are carried out in order; ``PersistBeforeSign`` is fsynced before the
``Broadcast`` that follows it leaves the process.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import trio
from prometheus_client import Counter as PromCounter

from consensus.block import Block, Commit
from consensus.engine import Engine
from consensus.events import EngineConfig, ValueReady, as_input
from consensus.lightsync import HEADER_RULES
from consensus.messages import Decision, Proposal, decode_consensus
from consensus.vote import DuplicateVote
from node.api.app import TxRefused
from node.clock import ChainClock
from node.home.homedir import Home, home_key
from node.service.heartbeat import HEARTBEAT_S, HeartbeatBook
from node.service.mempool import Duplicate, Mempool, MempoolFull, get_pending_nonce
from node.service.metrics import Metrics
from node.net import ACCEPT, NetError, Outcome, TopicKind, Verdict, ignore, reject
from node.service.ledger_app import LedgerApp
from node.store.pruning import Pruner, Pruning
from node.service.checks import get_consensus_fault, is_evidence_too_old
from node.api.render import block_json
from node.service.roles import compute_role
from node.home.receivekeys import get_receive_dir, load_receive_keys
from node.service.cuts import CUT_OVERDUE_S, CutGatherer, describe_cut, has_quorum, needs_gathering
from node.service.sealing import make_receive_key_tx, needs_receive_key, open_node_keyring, prune_receive_keys
from node.service.txcheck import Checked, TxChecker
from node.service.signstate import SIGN_STATE_FILE, load_sign_state, start_record_if_missing
from node.store import Store
from node.store.backup import iter_store_backup
from tokens import InvalidTx, check_tx, get_account
from tokens.due import get_next_due_ms
from tokens.layout import VALIDATOR
from tokens.queries import get_household
from tokens.txs import RotateDataKey, SetReceiveKey, Tx, decode_tx
from wire import MAX_BLOCK_BYTES, DecodeError, Keypair, compute_id, decode

log = logging.getLogger("voisinage.node")

INPUT_QUEUE = 10_000
# A household node re-checks and re-gossips txs that waited this long for a block.
PENDING_CHECK_S = 30.0
MAX_REGOSSIP = 4096
# A holder's first receive key waits at most this long at start for a peer to gossip it to.
RECEIVE_KEY_WAIT_S = 10.0
# A validator's node looks at a due cut this often between blocks (docs/privacy.md "The
# cut is forced"): a quiet chain makes no block, and a builder's turn passes in time.
CUT_CHECK_S = 30.0
# Arriving txs are checked on worker threads this many at a time (node/service/txcheck.py):
# enough to keep every core busy, few enough that a hostile batch costs little past its
# first bad tx.
ADMIT_CHUNK = 128
# Gossip REJECT (the forwarder is penalised) only for what no honest peer relays;
# every state-dependent refusal is IGNORE (DESIGN §7).
# DESIGN §7: REJECT only what no honest relayer could have accepted. A registrar
# removed by RegistrarSetChange was a registrar one block earlier, so a peer relaying
# its tx across the change is honest: ``not_registrar`` is an IGNORE.
# A seal that does not open or does not match what its envelope signs is the sender's
# fault whatever the state (a household's data key never changes once published), and
# so is a payload in clear, or a seal, on a chain that says otherwise in its genesis.
REJECT_REASONS = frozenset({"bad_signature", "unknown_signer", "malformed", "seal_does_not_open",
                            "payload_hash_mismatch", "signer_mismatch", "nonce_mismatch", "malformed_payload",
                            "data_key_does_not_open", "must_seal", "sealing_off", "cosig_does_not_open",
                            "not_cosigned"})


# The engine's effects, rewritten before they are executed: (effects, chain id, key) -> effects.
EffectsRewrite = Callable[[list, bytes, Keypair], list]


def get_common_status(node: Any) -> dict[str, Any]:
    """The part of ``GET /status`` a full node and a light household node share."""
    net = node.net
    return {
        "chain_id": node.chain_id.hex(),
        "name": node.home.config.get("name", node.home.path.name),
        "height": node.store.height(),
        "state_hash": node.store.state_hash().hex(),
        "time_ms": node.clock.now_ms(),
        "peers": len(net.peers()) if net is not None else 0,
        "peer_id": net.peer_id if net is not None else None,
        "listen_addrs": net.listen_addrs() if net is not None else [],
        "address": node.key.public.hex(),
        # Txs this node originated per gossip message (DESIGN §7 batching).
        "gossip_tx_batches": net.batcher.batches_sent if net is not None else 0,
        "gossip_batched_txs": net.batcher.txs_sent if net is not None else 0,
    }


@dataclass
class NodeStats:
    started: float = field(default_factory=time.monotonic)
    last_commit: float | None = None
    syncing: bool = False
    settled_intervals: int = 0


class Node:
    def __init__(self, home: Home, store: Store, *, check_all_signatures: bool = False,
                 rewrite_effects: EffectsRewrite | None = None,
                 sign_journal: bool = False, relay_txs: bool | None = None, pruning: Pruning | None = None,
                 check_workers: int = 0, cut_overdue_s: int = CUT_OVERDUE_S) -> None:
        """``relay_txs``: None means as the role needs (validators yes, households no).
        ``pruning``: what the store keeps (node/store/pruning.py; default ``Pruning()``).
        ``check_workers``: arriving txs checked in that many processes (0: worker threads);
        whoever runs the node calls ``checker.close()`` when it stops.
        ``cut_overdue_s``: when a due cut is said overdue (node/service/cuts.py)."""
        self.home, self.store = home, store
        self.sign_journal = sign_journal
        # None when honest. The e2e suite's ``--byzantine`` passes a rewrite that adds
        # equivocations to the engine's effects; the service itself knows no misbehaviour.
        self.rewrite_effects = rewrite_effects
        self.check_all_signatures, self.relay_txs = check_all_signatures, relay_txs
        self.genesis = home.genesis
        self.chain_id = self.genesis.chain_id
        self.key = home_key(home)
        self.role = compute_role(self.key.public, store.state, store.height())
        self.clock = ChainClock(self.genesis.genesis_time, self.genesis.params["time_scale"])
        self.mempool = Mempool()
        self.heartbeats = HeartbeatBook(self.chain_id, self.clock.now_ms, self.genesis.params["time_scale"])
        self.metrics = Metrics()
        self.stats = NodeStats()
        self.pruner = Pruner(pruning or Pruning(), self.key.public, self.is_validator)
        self.receive_dir = get_receive_dir(home.path)
        self.keys = open_node_keyring(self.genesis, store.state, self.key, load_receive_keys(self.receive_dir))
        for path in prune_receive_keys(self.keys, store.state, self.key, self.receive_dir):
            log.info("deleted the receive key file %s: it opened only epochs before the cut (docs/privacy.md "
                     "\"Receive keys\")", path.name)
        # Arriving txs' signatures and envelopes, checked on one worker thread per core,
        # or in ``check_workers`` processes.
        self.checker = TxChecker(self.chain_id, store.state.get, store.height, self.keys,
                                 workers=check_workers, scan=store.state.iter_prefix)
        self.app = LedgerApp(self.genesis, store, self.mempool, self.key, self.clock.now_ms,
                             trust_quorum=self._trusts_quorum(), pruner=self.pruner, keys=self.keys,
                             receive_dir=self.receive_dir)
        # docs/privacy.md "The cut is forced": the co-signatures of a due cut, gathered.
        self.cuts = CutGatherer(self.chain_id, self.key)
        self.cut_overdue_s = cut_overdue_s
        config = EngineConfig(idle_ms=self.genesis.params["max_idle_s"] * 1000)
        # Every node's engine holds its key and its double-sign record (DESIGN §6): the
        # engine signs only at heights whose validator set holds the key, and the record
        # is loaded now, so a node that becomes a validator never signs without it.
        self.engine = Engine(self.chain_id, self.key, self.app, config, load_sign_state(home.path))
        self.net = None
        self.inputs_send, self.inputs_recv = trio.open_memory_channel(INPUT_QUEUE)
        self.commit_lock = trio.Lock()
        self._stored = trio.Event()      # set, then replaced, at every stored block
        self._nursery: trio.Nursery | None = None
        self._rejected_seen: dict[str, int] = {}
        self.metrics.height.set(store.height())
        self.metrics.validator.set(int(self.is_validator))
        self.synced_blocks = PromCounter("voisinage_synced_blocks", "Blocks stored by block sync (DESIGN §7).",
                                     registry=self.metrics.registry)

    @property
    def is_validator(self) -> bool:
        return self.role.is_validator

    def _trusts_quorum(self) -> bool:
        # A household node re-executes every block and checks its state hash, but by
        # default takes the tx signatures as checked by the quorum of validators that
        # committed the block (nothing is stored before the commit is verified): at a
        # commune's rate that is most of a small box's CPU. Validators check them all,
        # and so does `node verify`.
        return not (self.is_validator or self.check_all_signatures)

    def follow_validator_set(self) -> None:
        """After each stored block: the role and the validators' peers as the state now
        says (roles.py). Nothing else about the node is restarted."""
        role = compute_role(self.key.public, self.store.state, self.store.height())
        if role == self.role:
            return
        if role.is_validator != self.role.is_validator:
            log.info("this node is %s at height %d", "now a validator" if role.is_validator
                     else "no longer a validator: a full node", self.store.height())
            if role.is_validator and start_record_if_missing(self.home.path):
                log.info("double-sign record started in %s", self.home.path / SIGN_STATE_FILE)
        self.role = role
        self.app.trust_quorum = self._trusts_quorum()
        self.pruner.is_validator = role.is_validator
        self.metrics.validator.set(int(role.is_validator))
        if self.net is not None:
            self.net.set_validator_peers(role.validator_addrs)
            if self.relay_txs is None and self._nursery is not None:
                self._nursery.start_soon(self.net.set_tx_relay, role.is_validator)

    def get_missing_receive_key(self) -> bytes | None:
        """docs/privacy.md "Receive keys": this holder's ``SetReceiveKey`` of a fresh
        receive key (saved first), when it has none fresh and none waits here; else None."""
        if self.keys is None or not needs_receive_key(self.store.state, self.key.public, self.keys.receive):
            return None
        own = self.key.public
        if any(isinstance(entry.tx, SetReceiveKey) and entry.tx.signer == own for entry in self.mempool.entries()):
            return None
        return make_receive_key_tx(self.store.state, self.key, self.chain_id, self.keys, self.receive_dir,
                                   self.clock.now_ms()).encode()

    async def publish_receive_key_at_start(self) -> None:
        """The first receive key goes out at start (a quiet chain makes no block before
        something is due), once a peer is there to gossip it to, or alone after a while."""
        with trio.move_on_after(RECEIVE_KEY_WAIT_S):
            while self.net is None or not self.net.peers():
                await trio.sleep(0.5)
        self.publish_receive_key()

    def publish_receive_key(self) -> None:
        """After each stored block, and at start: publish a fresh receive key if needed."""
        data = self.get_missing_receive_key()
        if data is None:
            return
        try:
            tx_id = self.submit_tx(data)
        except TxRefused as exc:
            log.warning("could not publish a receive key of this holder: %s", exc)
            return
        log.info("published a fresh receive key of this holder (tx %s): the next epochs of the commune data key are "
                 "sealed to it (docs/privacy.md \"Receive keys\")", tx_id.hex()[:16])

    # ---- the cut is forced (docs/privacy.md "Erasure", node/service/cuts.py) ----

    def drive_cut(self) -> list[bytes]:
        """After each stored block, at start and every CUT_CHECK_S: in this validator's
        turn, build the due cut; gossip again every cut gathering signatures. What it
        gossiped or took into the mempool (a cut with its quorum), encoded."""
        if self.keys is None or not self.is_validator:
            return []
        height = self.store.height() + 1
        return [self._pass_cut(tx, height) for tx in
                self.cuts.step(self.store.state, self.keys, height, self.clock.now_ms() // 1000)]

    async def keep_cut_moving(self) -> None:
        """``drive_cut`` between blocks: a quiet chain makes none until the cut is in."""
        while True:
            self.drive_cut()
            await trio.sleep(CUT_CHECK_S)

    def take_cut_proposal(self, data: bytes) -> tuple[Verdict, bytes | None] | None:
        """A gossiped cut with too few co-signatures (node/service/cuts.py): checked,
        co-signed by this validator, and the merged one gossiped, or taken into the
        mempool once it has its quorum. (verdict, what this node passed on), or None
        when ``data`` is no such cut (the ordinary refusal then stands)."""
        tx = decode_tx(data)
        height = self.store.height() + 1
        if not needs_gathering(self.store.state, height, tx):
            return None
        try:
            merged = self.cuts.receive(self.store.state, self.keys, height, tx)
        except InvalidTx as exc:
            return (reject(exc.reason) if exc.reason in REJECT_REASONS else ignore(exc.reason)), None
        return ACCEPT, None if merged is None else self._pass_cut(merged, height)

    def _pass_cut(self, tx: RotateDataKey, height: int) -> bytes:
        """A cut with its quorum goes into the mempool (and gossip) as any tx; one still
        gathering signatures only to gossip."""
        data = tx.encode()
        if not has_quorum(self.store.state, height, tx):
            self._gossip([data])
            return data
        try:
            tx_id = self.submit_tx(data)
        except TxRefused as exc:
            log.warning("could not take the cut of the commune data key gathered by the validators: %s", exc)
            return data
        log.info("the validators co-signed the cut of the commune data key at epoch %d (tx %s) that an erasure made "
                 "due: it goes into the next block (docs/privacy.md \"The cut is forced\")", tx.nonce,
                 tx_id.hex()[:16])
        return data

    def cut_status(self) -> dict[str, Any] | None:
        """GET /status's ``cut``: whether a cut is due, since when, and overdue."""
        return describe_cut(self.store.state, self.clock.now_ms() // 1000, self.cut_overdue_s)

    # ---- gossip handlers (run inside gossip validation) ----

    def on_tx(self, peer: str, data: bytes, checked: Checked | None = None) -> Verdict:
        """The verdict on one gossiped tx; ``checked``: its signatures and envelope as a
        worker thread found them (node/service/txcheck.py), or None to check them here."""
        try:
            self._admit(data, checked)
        except Duplicate:
            return ignore("duplicate")
        except MempoolFull:
            return ignore("mempool_full")
        except DecodeError:
            return reject("malformed")
        except InvalidTx as exc:
            if exc.reason == "insufficient_signatures":
                gathered = self.take_cut_proposal(data)
                if gathered is not None:
                    return gathered[0]
            if exc.reason in REJECT_REASONS:
                return reject(exc.reason)
            return ignore(exc.reason)
        return ACCEPT

    async def on_tx_batch(self, peer: str, txs: Sequence[bytes]) -> list[Verdict]:
        """The verdicts on a gossip batch's txs, in order, as ``on_tx`` gives them one by
        one, up to the first REJECT (one bad tx condemns the batch). Each chunk's
        signatures and envelopes are checked on worker threads first, so a hostile batch
        costs at most one chunk of checks more than its first bad tx."""
        verdicts: list[Verdict] = []
        for start in range(0, len(txs), ADMIT_CHUNK):
            chunk = txs[start:start + ADMIT_CHUNK]
            for data, checked in zip(chunk, await self.check_txs(chunk)):
                verdicts.append(self.on_tx(peer, data, checked))
                if verdicts[-1].outcome is Outcome.REJECT:
                    return verdicts
        return verdicts

    async def check_txs(self, txs: Sequence[bytes]) -> list[Checked]:
        """Signatures and envelopes of ``txs`` checked on worker threads; a tx the
        mempool holds already is skipped (it will be refused as a duplicate)."""
        return await self.checker.check([None if compute_id(data) in self.mempool else data for data in txs])

    def on_consensus(self, peer: str, data: bytes) -> Verdict:
        try:
            msg = decode_consensus(data)
        except DecodeError:
            return reject("malformed")
        height = msg.height if not isinstance(msg, Decision) else msg.block.header.height
        # Evidence stays valid for EVIDENCE_MAX_AGE heights; other messages for 2.
        stale = (is_evidence_too_old(msg, self.engine.height) if isinstance(msg, DuplicateVote)
                 else height + 2 < self.engine.height)
        if stale:
            return ignore("stale")
        fault = get_consensus_fault(msg, self.chain_id, self.app.validator_set)
        if fault:
            # Validator sets are known up to 2 heights ahead (changes start at h+2):
            # beyond that an honest forwarder cannot be told from a forger.
            return reject(fault) if height <= self.store.height() + 2 else ignore("too_far_ahead")
        if isinstance(msg, Proposal):
            log.debug("proposal %d/%d with %d txs (%d bytes) via %s", msg.height, msg.round,
                      len(msg.block.txs), len(data), peer[-8:])
            if self.net is not None and msg.height == self.engine.height:
                self.net.batcher.cue()
        try:
            self.inputs_send.send_nowait(as_input(msg))
        except trio.WouldBlock:
            return ignore("busy")
        return ACCEPT

    def on_evidence(self, peer: str, data: bytes) -> Verdict:
        return self.on_consensus(peer, data)

    def on_heartbeat(self, peer: str, data: bytes) -> Verdict:
        height = self.store.height()
        return self.heartbeats.check(data, self.app.validator_set(height + 1),
                                     lambda key: self.store.state.get(VALIDATOR + key) is not None)

    async def send_heartbeats(self) -> None:
        """A validator's liveness, gossiped every HEARTBEAT_S (docs/cadence.md)."""
        while True:
            if self.is_validator and self.net is not None:
                data = self.heartbeats.build(self.key, self.store.height())
                try:
                    await self.net.publish(TopicKind.HEARTBEAT, data)
                except NetError as exc:
                    log.warning("could not gossip a heartbeat: %s", exc)
            await trio.sleep(HEARTBEAT_S)

    def _admit(self, data: bytes, checked: Checked | None = None) -> bool:
        was_empty = len(self.mempool) == 0
        self.mempool.add(data, lambda d: self._check_tx(d, checked))
        self.metrics.mempool_txs.set(len(self.mempool))
        if was_empty:
            try:
                self.inputs_send.send_nowait(ValueReady(self.engine.height))
            except trio.WouldBlock:
                pass  # the engine is flooded with input; Start(ready=...) will catch up
        return True

    def _check_tx(self, data: bytes, checked: Checked | None) -> Tx:
        state = self.store.state
        if checked is None or checked.tx is None:
            return check_tx(state, self.genesis, data, self.clock.now_ms(), headers=HEADER_RULES, keys=self.keys)
        self.checker.seed(checked, compute_id(data))
        return check_tx(state, self.genesis, data, self.clock.now_ms(), verified=checked.signed,
                        headers=HEADER_RULES, keys=self.keys, decoded=checked.tx)

    # ---- HTTP API (node.api.app.NodeAPI) ----

    def submit_tx(self, data: bytes) -> bytes:
        tx_id, refused = self._take(data)
        if refused is not None:
            raise refused
        # Gossiped again when it was already held: a client that posts a tx again may
        # do so because it never reached a block (gossip is best effort).
        self._gossip([data])
        return tx_id

    def submit_txs(self, txs: Sequence[bytes],
                   checked: Sequence[Checked] | None = None) -> list[tuple[bytes, TxRefused | None]]:
        """Many signed txs at once (``POST /txs``): (id, None) for each one taken or
        already held, (id, why) for each refused. The taken ones are gossiped in order.
        ``checked``: what ``check_txs`` found of each, if it ran."""
        results = [self._take(data, None if checked is None else checked[i]) for i, data in enumerate(txs)]
        self._gossip([data for data, (_, refused) in zip(txs, results) if refused is None])
        return results

    async def submit_batch(self, txs: Sequence[bytes]) -> list[tuple[bytes, TxRefused | None]]:
        """``submit_txs``, with the signatures and envelopes checked on worker threads first."""
        checked: list[Checked] = []
        for start in range(0, len(txs), ADMIT_CHUNK):
            checked.extend(await self.check_txs(txs[start:start + ADMIT_CHUNK]))
        return self.submit_txs(txs, checked)

    def _take(self, data: bytes, checked: Checked | None = None) -> tuple[bytes, TxRefused | None]:
        """(id, why it was refused or None): taken, or already held, when None."""
        tx_id = compute_id(data)
        try:
            self._admit(data, checked)
        except Duplicate:
            pass
        except MempoolFull as exc:
            return tx_id, TxRefused(str(exc), 503)
        except DecodeError as exc:
            return tx_id, TxRefused(f"malformed: {exc.reason}")
        except InvalidTx as exc:
            return tx_id, TxRefused(f"{exc.reason}: {exc.detail}")
        return tx_id, None

    # ---- cadence: a block when something is due (docs/cadence.md) ----

    def get_wait_s(self) -> float | None:
        """Wall seconds until the committed state has a time-driven rule due (0: now),
        or None when nothing is due until a tx arrives (tokens/due.py). A height that
        moved the commune key's epoch or a household's data key makes the next one due
        at once: its state is provable, so a household's node in light mode sees it,
        only once the next header carries its root, and until then that household
        cannot seal (docs/cadence.md; without it a quiet commune stalled after a rotation)."""
        if self.app.key_news_height is not None and self.app.key_news_height == self.store.height():
            return 0.0
        due = get_next_due_ms(self.store.state)
        if due is None:
            return None
        return max(0.0, self.clock.chain_to_wall_s(due - self.clock.now_ms()))

    def is_ready(self) -> bool:
        """The next height has something to propose: txs, or a rule due now."""
        return len(self.mempool) > 0 or self.get_wait_s() == 0.0

    async def wake_when_due(self) -> None:
        """DESIGN §12: an empty block only when something is due. Sleeps until the
        committed state's next due time (or a new block, which may change it), then
        tells the engine a value is ready at its height."""
        while True:
            stored = self._stored
            wait_s = self.get_wait_s()
            with trio.move_on_after(math.inf if wait_s is None else wait_s) as scope:
                await stored.wait()
            if scope.cancelled_caught:
                await self.inputs_send.send(ValueReady(self.engine.height))
                await stored.wait()

    async def keep_pending_moving(self) -> None:
        """A household node never proposes (a validator's own proposals carry its txs):
        a tx it took stays in its mempool until a block holds it. Gossip is best effort
        (no validator reachable yet, a queue overflow), so every PENDING_CHECK_S each tx waiting longer than that is checked
        again against the committed state: gossiped again if still valid, dropped
        (with its reason logged) if not, e.g. a reading whose interval has settled.
        Without this an acknowledged tx could be lost and the mempool would only grow."""
        while True:
            await trio.sleep(PENDING_CHECK_S)
            if not self.is_validator:
                self.recheck_pending(time.monotonic() - PENDING_CHECK_S)

    def recheck_pending(self, older_than: float) -> tuple[int, int]:
        """(gossiped again, dropped) for the mempool txs that arrived before ``older_than``."""
        now_ms, stale, again, reasons = self.clock.now_ms(), [], [], Counter()
        for entry in self.mempool.entries():     # oldest first
            if entry.arrived > older_than or len(again) >= MAX_REGOSSIP:
                break
            try:
                check_tx(self.store.state, self.genesis, entry.data, now_ms, verified=True, headers=HEADER_RULES,
                         keys=self.keys)
            except (InvalidTx, DecodeError) as exc:
                stale.append(entry.id)
                reasons[exc.reason if isinstance(exc, InvalidTx) else "malformed"] += 1
                continue
            again.append(entry.data)
        if stale:
            self.mempool.remove(stale)
            self.metrics.mempool_txs.set(len(self.mempool))
            log.info("dropped %d pending txs no longer valid (%s)", len(stale),
                     ", ".join(f"{r}: {n}" for r, n in reasons.most_common()))
        if again:
            log.info("gossiping again %d txs still waiting for a block", len(again))
            self._gossip(again)
        return len(again), len(stale)

    def _gossip(self, txs: list[bytes]) -> None:
        if txs and self.net is not None and self._nursery is not None:
            self._nursery.start_soon(self._publish_txs, txs)

    async def _publish_txs(self, txs: list[bytes]) -> None:
        for data in txs:
            await self.net.publish(TopicKind.TX, data)

    def get_pending_nonce(self, addr: bytes) -> int | None:
        """GET /accounts' ``pending_nonce``: the highest nonce of ``addr``'s clear txs in
        this node's mempool (node/service/mempool.py ``get_pending_nonce``)."""
        return get_pending_nonce(self.mempool, addr)

    def status(self) -> dict[str, Any]:
        return {
            **get_common_status(self),
            "validator": self.is_validator,
            "syncing": self.stats.syncing,
            "round": self.engine.round,
            "step": self.engine.get_step_name(),
            "mempool_txs": len(self.mempool),
            "settled_intervals": self.stats.settled_intervals,
            "cut": self.cut_status(),
        }

    def notify_stored(self) -> None:
        """Wake whoever waits for a height (GET /blocks/{h}?wait=)."""
        self._stored.set()
        self._stored = trio.Event()

    async def wait_for_height(self, height: int) -> None:
        while self.store.height() < height:
            await self._stored.wait()

    def block_json(self, height: int) -> dict[str, Any] | None:
        stored = self.store.block(height)
        if stored is None:
            return None
        block = decode(stored, Block, MAX_BLOCK_BYTES)
        commit = decode(self.store.commit(height), Commit, MAX_BLOCK_BYTES)
        return block_json(block, commit)

    def backup_chunks(self, consent: Iterable[tuple[bytes, bytes]] = ()) -> tuple[int, Iterator[bytes]]:
        """A backup of the database as of now (node/store/backup.py), and of the
        ``consent`` entries, without the home's files: its height, and its bytes taken
        from one snapshot, closed when done."""
        return iter_store_backup(self.store, self.chain_id, consent)

    def account_json(self, addr: bytes) -> dict[str, Any] | None:
        state = self.store.state
        account = get_account(state, addr)
        if get_household(state, addr) is None and account["nonce"] == 0 and not any(account["balances"].values()):
            return None
        return account

    def render_metrics(self) -> bytes:
        if self.net is not None:
            self.metrics.peers.set(len(self.net.peers()))
            for reason, total in self.net.rejected_total().items():
                seen = self._rejected_seen.get(reason, 0)
                if total > seen:
                    self.metrics.gossip_rejected.labels(reason).inc(total - seen)
                    self._rejected_seen[reason] = total
        self.metrics.consensus_round.set(self.engine.round)
        cut = self.cut_status()
        self.metrics.cut_overdue.set(int(cut is not None and cut["cut_overdue"]))
        self.metrics.cut_pending.set(-1 if cut is None or cut["cut_pending_s"] is None else cut["cut_pending_s"])
        for key in self.app.validator_set(self.store.height() + 1):
            age = self.heartbeats.get_age_s(key)
            self.metrics.heartbeat_age.labels(key.hex()[:16]).set(-1 if age is None else age)
        return self.metrics.render()
