"""A seeded, virtual-clock simulator of N consensus engines in one process (DESIGN §1).

The router delivers every broadcast through a heap of timed events. Faults:
message drops, random delays, partitions that form and heal on a schedule,
crash-restart (the engine is rebuilt from its persisted double-sign record and
the blocks it stored), and byzantine validators that equivocate (conflicting
proposals and votes to different peers). It checks that no two honest validators
commit different blocks at one height and that no honest validator signs two
different messages for one (height, round, step). Everything random comes from
``SimConfig.seed``: one seed, one run.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import time
from dataclasses import dataclass, field

from wire import Keypair, Message, signing_bytes, verify_message

from consensus.block import ZERO_ID, Block, Commit, Header, compute_block_id, compute_tx_root, compute_validators_hash
from consensus.block import check_block_lag, check_block_time
from consensus.engine import Engine
from consensus.errors import InvalidBlock
from consensus.events import (
    Broadcast, CommitBlock, EngineConfig, PersistBeforeSign, ScheduleTimeout, Start, Timeout, as_input,
)
from consensus.messages import Proposal, decode_consensus
from consensus.privval import INITIAL_SIGN_STATE
from consensus.sync import Trusted, verify_chain
from consensus.vote import Vote
from tokens.upgrades import GENESIS_VERSION
from node.sim.actors import Byzantine

CHAIN_ID = hashlib.sha256(b"voisinage simulated commune").digest()
GENESIS_TIME_MS = 1_700_000_000_000
SYNC_PERIOD_MS = 1_000



@dataclass(frozen=True)
class Crash:
    """Validator ``node`` is down from ``down_ms`` to ``up_ms`` of virtual time."""

    node: int
    down_ms: int
    up_ms: int


@dataclass(frozen=True)
class SimConfig:
    validators: int = 4
    byzantine: int = 0              # the last ``byzantine`` validators equivocate
    drop: float = 0.0               # probability that one delivery is lost
    delay_ms: tuple[int, int] = (5, 50)
    partition_every_s: float = 0.0  # form a random partition every S s, heal it after S/2
    partition_until_s: float = 0.0  # no new partition after this virtual time (0: never stop)
    crashes: tuple[Crash, ...] = ()
    heights: int = 10
    seed: int = 0
    always_ready: bool = True       # False: empty blocks only on the max_idle heartbeat
    encode: bool = False            # carry every message as bytes through the strict decoder
    shared_verify: bool = True      # verify each distinct signed message once for all nodes
    max_virtual_s: float = 0.0      # 0: 120 s + 30 s per height
    clock_skew_ms: tuple[int, ...] = ()     # validator i's clock runs this far from virtual time
    engine: EngineConfig = field(default_factory=EngineConfig)


@dataclass
class SimResult:
    committed_heights: int          # heights committed by every honest validator
    safety_violations: int
    double_signs: int
    evidence_committed: int
    equivocators: list[str]
    rounds_max: int
    virtual_seconds: float
    wall_seconds: float
    messages: int
    dropped: int
    refused_signs: int              # signatures refused by double-sign protection
    synced_blocks: int              # blocks applied through verified block sync
    commit_times_ms: dict[int, int]  # height -> virtual time of its first honest commit

    def to_json(self) -> dict:
        return {
            "committed_heights": self.committed_heights, "safety_violations": self.safety_violations,
            "double_signs": self.double_signs, "evidence_committed": self.evidence_committed,
            "equivocators": self.equivocators, "rounds_max": self.rounds_max,
            "virtual_seconds": round(self.virtual_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "messages": self.messages, "dropped": self.dropped,
            "refused_signs": self.refused_signs, "synced_blocks": self.synced_blocks,
        }


class SimApp:
    """A trivial application: each block carries random bytes; the state is a hash chain."""

    def __init__(self, sim: "Simulation", me: bytes, rng: random.Random, chain: list, skew_ms: int = 0) -> None:
        self.sim, self.me, self.rng, self.skew_ms = sim, me, rng, skew_ms
        self.state_hash, self.time_ms = bytes(32), GENESIS_TIME_MS
        for block, _ in chain:
            self.apply(block)

    def validator_set(self, height: int) -> list[bytes]:
        return self.sim.validators

    def propose(self, height, round, last_commit, evidence) -> Block:
        txs = (self.rng.randbytes(16),)
        parent = last_commit.block_id if last_commit is not None else ZERO_ID
        header = Header(chain_id=CHAIN_ID, height=height,
                        time_ms=max(self.time_ms + 1, self.now_ms()),
                        parent=parent, tx_root=compute_tx_root(txs), state_hash=self.state_hash,
                        proposer=self.me, next_validators=compute_validators_hash(self.sim.validators), version=GENESIS_VERSION)
        return Block(header=header, txs=txs, last_commit=last_commit, evidence=evidence)

    def now_ms(self) -> int:
        """This validator's clock: virtual time plus its configured skew."""
        return GENESIS_TIME_MS + self.sim.now + self.skew_ms

    def validate(self, block: Block) -> bool:
        try:
            check_block_time(block, self.time_ms, self.now_ms())
        except InvalidBlock:
            return False
        return block.header.state_hash == self.state_hash

    def is_timely(self, block: Block) -> bool:
        try:
            check_block_lag(block, self.now_ms())
        except InvalidBlock:
            return False
        return True

    def apply(self, block: Block) -> None:
        self.state_hash = hashlib.sha256(self.state_hash + block.header.tx_root).digest()
        self.time_ms = block.header.time_ms


class SimNode:
    """One validator: its store (blocks with commits), persisted sign state, engine."""

    def __init__(self, sim: "Simulation", index: int, key: Keypair) -> None:
        self.sim, self.index, self.key = sim, index, key
        self.honest = True
        self.up = True
        self.incarnation = 0
        self.chain: list[tuple[Block, Commit]] = []
        self.sign_state = INITIAL_SIGN_STATE
        self.rng = random.Random(sim.rng.getrandbits(64))
        self.engine: Engine | None = None
        self.app: SimApp | None = None
        # Durable, like the node's own-message log (node/service/ownlog.py): what this
        # validator signed and sent at its current height.
        self.signed: list[Message] = []

    def boot(self) -> list:
        """(Re)start from what is durable: the stored chain, the sign-state record and
        the messages signed at the current height, which go back to the engine (it
        may not sign them again) and out to the peers, as the node's Driver does."""
        self.incarnation += 1
        self.up = True
        skews = self.sim.config.clock_skew_ms
        self.app = SimApp(self.sim, self.key.public, self.rng, self.chain,
                          skews[self.index] if self.index < len(skews) else 0)
        self.engine = Engine(CHAIN_ID, self.key, self.app, self.sim.config.engine, self.sign_state,
                             self.sim.verify)
        last_commit = self.chain[-1][1] if self.chain else None
        effects = self.engine.step(Start(len(self.chain) + 1, last_commit, self.sim.config.always_ready))
        restored = self.restored()
        for msg in restored:
            effects += self.engine.step(as_input(msg))
        if restored:
            self.sim.push(self.sim.now, self.index, self.incarnation, ("regossip", self.engine.height))
        return effects

    def restored(self) -> list[Message]:
        return [m for m in self.signed if m.height == self.engine.height]

    def record_signed(self, msg: Message) -> None:
        if isinstance(msg, (Vote, Proposal)) and self.key.public in (getattr(msg, "validator", None),
                                                                     getattr(msg, "proposer", None)):
            self.signed = [m for m in self.signed if m.height >= msg.height and m != msg] + [msg]

    @property
    def height(self) -> int:
        return len(self.chain)


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        if not 1 <= config.validators <= 200:
            raise ValueError("validators must be between 1 and 200")
        if not 0 <= config.byzantine <= config.validators:
            raise ValueError("byzantine must be between 0 and validators")
        if not 0.0 <= config.drop < 1.0:
            raise ValueError("drop must be in [0, 1)")
        self.config = config
        self.rng = random.Random(config.seed)
        self.now = 0
        self._queue: list = []
        self._seq = 0
        keys = [Keypair(hashlib.sha256(b"sim-validator-%d" % i).digest()) for i in range(config.validators)]
        self.validators = [k.public for k in keys]
        self.nodes = [SimNode(self, i, k) for i, k in enumerate(keys)]
        self.byzantine: dict[int, Byzantine] = {}
        for node in self.nodes[config.validators - config.byzantine:]:
            node.honest = False
            self.byzantine[node.index] = Byzantine(node, CHAIN_ID, random.Random(self.rng.getrandbits(64)))
        self.side = [0] * config.validators
        self.canonical: dict[int, bytes] = {}
        self.commit_times: dict[int, int] = {}
        self.signed: dict[tuple, bytes] = {}
        self.safety_violations = self.double_signs = 0
        self.messages = self.dropped = 0
        self.refused_signs = self.synced_blocks = 0
        self._verified: dict[int, tuple[Message, bool]] = {}

    # ---- verification shared by all simulated nodes ------------------------

    def verify(self, msg: Message, chain_id: bytes) -> bool:
        """Each node checks every signature; with shared_verify one check of a
        given message object stands for all of them (same bytes, same answer)."""
        if not self.config.shared_verify:
            return verify_message(msg, chain_id)
        hit = self._verified.get(id(msg))
        if hit is not None and hit[0] is msg:
            return hit[1]
        if len(self._verified) > 200_000:
            self._verified.clear()
        ok = verify_message(msg, chain_id)
        self._verified[id(msg)] = (msg, ok)
        return ok

    # ---- event queue -------------------------------------------------------

    def push(self, at_ms: int, node: int, incarnation: int, event) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at_ms, self._seq, node, incarnation, event))

    def run(self) -> SimResult:
        wall = time.perf_counter()
        self._schedule_faults()
        booted = [node.boot() for node in self.nodes]     # all up before anything is sent
        for node, effects in zip(self.nodes, booted):
            self.process(node, effects)
            self.push(SYNC_PERIOD_MS, node.index, 0, "sync")
        limit_ms = int(1000 * (self.config.max_virtual_s or 120 + 30 * self.config.heights))
        while self._queue and not self.is_done():
            at, _, index, incarnation, event = heapq.heappop(self._queue)
            if at > limit_ms:
                break
            self.now = at
            self.dispatch(self.nodes[index], incarnation, event)
        return self.get_result(time.perf_counter() - wall)

    def is_done(self) -> bool:
        target = self.config.heights
        return all(n.height >= target for n in self.nodes if n.honest) and self.now >= self._last_fault_ms

    def dispatch(self, node: SimNode, incarnation: int, event) -> None:
        if event == "crash":
            self.refused_signs += node.engine.refused_signs if node.up else 0
            node.up = False
            node.incarnation += 1
        elif event == "restart":
            self.process(node, node.boot())
        elif event == "partition":
            self.form_partition()
        elif event == "heal":
            self.side = [0] * len(self.nodes)
        elif event == "sync":
            self.push(self.now + SYNC_PERIOD_MS, node.index, 0, "sync")
            if node.up:
                self.sync_node(node)
        elif isinstance(event, tuple):      # ("regossip", height) after a restart
            if node.up and incarnation == node.incarnation and node.engine.height == event[1]:
                for msg in node.restored():
                    self.send(node.index, msg, None)
                self.push(self.now + self.config.engine.gossip_ms, node.index, incarnation, event)
        elif node.up and incarnation == node.incarnation:
            if isinstance(event, bytes):
                msg = decode_consensus(event)
                event = as_input(msg)
            self.process(node, node.engine.step(event))

    # ---- faults ------------------------------------------------------------

    def _schedule_faults(self) -> None:
        cfg = self.config
        self._last_fault_ms = 0
        for crash in cfg.crashes:
            self.push(crash.down_ms, crash.node, 0, "crash")
            self.push(crash.up_ms, crash.node, 0, "restart")
            self._last_fault_ms = max(self._last_fault_ms, crash.up_ms)
        if cfg.partition_every_s > 0:
            every = int(cfg.partition_every_s * 1000)
            until = int(cfg.partition_until_s * 1000) or int(1000 * (cfg.max_virtual_s or 120 + 30 * cfg.heights))
            for start in range(every, until + 1, every):
                self.push(start, 0, 0, "partition")
                self.push(start + every // 2, 0, 0, "heal")
            if cfg.partition_until_s > 0:
                self._last_fault_ms = max(self._last_fault_ms, until + every // 2)

    def form_partition(self) -> None:
        """Split the validators into two random non-empty sides."""
        order = list(range(len(self.nodes)))
        self.rng.shuffle(order)
        cut = self.rng.randint(1, max(1, len(order) - 1))
        self.side = [0] * len(self.nodes)
        for i in order[cut:]:
            self.side[i] = 1

    # ---- effects -----------------------------------------------------------

    def process(self, node: SimNode, effects: list) -> None:
        for effect in effects:
            kind = type(effect)
            if kind is Broadcast:
                if node.honest:
                    self.check_double_sign(node, effect.message)
                    node.record_signed(effect.message)
                    self.send(node.index, effect.message, None)
                else:
                    self.byzantine[node.index].send(effect.message, self)
            elif kind is ScheduleTimeout:
                self.push(self.now + effect.delay_ms, node.index, node.incarnation,
                          Timeout(effect.height, effect.round, effect.step))
            elif kind is PersistBeforeSign:
                node.sign_state = effect.state
            elif kind is CommitBlock:
                self.commit(node, effect.block, effect.commit)
                self.process(node, node.engine.step(Start(node.height + 1, effect.commit,
                                                          self.config.always_ready)))

    def send(self, src: int, msg: Message, targets: list[int] | None) -> None:
        """Deliver ``msg`` to each target (default: every other node), subject to faults."""
        cfg, rng, side = self.config, self.rng, self.side
        event = msg.encode() if cfg.encode else as_input(msg)
        lo, hi = cfg.delay_ms
        for dst in (targets if targets is not None else range(len(self.nodes))):
            if dst == src:
                continue
            self.messages += 1
            node = self.nodes[dst]
            if not node.up or side[dst] != side[src] or (cfg.drop and rng.random() < cfg.drop):
                self.dropped += 1
                continue
            self.push(self.now + rng.randint(lo, hi), dst, node.incarnation, event)

    def commit(self, node: SimNode, block: Block, commit: Commit) -> None:
        """Store the block; check that it is the block every honest node committed."""
        height = block.header.height
        if height != node.height + 1:
            raise RuntimeError(f"node {node.index} committed height {height} after {node.height}")
        node.chain.append((block, commit))
        node.app.apply(block)
        if not node.honest:
            return
        block_id = commit.block_id
        known = self.canonical.setdefault(height, block_id)
        self.commit_times.setdefault(height, self.now)
        if known != block_id:
            self.safety_violations += 1

    def check_double_sign(self, node: SimNode, msg: Message) -> None:
        """Invariant: an honest validator never signs two messages for one (h, r, step)."""
        me = node.key.public
        if isinstance(msg, Vote) and msg.validator == me:
            slot = (node.index, msg.height, msg.round, msg.kind)
        elif isinstance(msg, Proposal) and msg.proposer == me:
            slot = (node.index, msg.height, msg.round, 0)
        else:
            return      # relayed: signed by someone else
        digest = hashlib.sha256(signing_bytes(CHAIN_ID, msg)).digest()
        if self.signed.setdefault(slot, digest) != digest:
            self.double_signs += 1

    # ---- block sync --------------------------------------------------------

    def sync_node(self, node: SimNode) -> None:
        """DESIGN §7: a node that sees messages 2+ heights ahead fetches blocks from a
        reachable peer and verifies them with consensus.sync before applying them."""
        engine = node.engine
        if engine.highest_seen < engine.height + 2:
            return
        peers = [p for p in self.nodes if p.up and p is not node and self.side[p.index] == self.side[node.index]
                 and p.height > node.height + 1]
        if not peers:
            return
        peer = self.rng.choice(peers)
        tip = Trusted(0) if not node.chain else Trusted(
            node.height, compute_block_id(node.chain[-1][0]), node.chain[-1][0].header.time_ms)
        pairs = peer.chain[node.height:node.height + 256]
        try:
            for block, commit in verify_chain(tip, CHAIN_ID, pairs, self.app_validator_set):
                self.commit(node, block, commit)
                self.synced_blocks += 1
        except InvalidBlock:
            return
        self.process(node, engine.step(Start(node.height + 1, node.chain[-1][1], self.config.always_ready)))

    def app_validator_set(self, height: int) -> list[bytes]:
        return self.validators

    # ---- result ------------------------------------------------------------

    def get_result(self, wall_seconds: float) -> SimResult:
        honest = [n for n in self.nodes if n.honest]
        committed = min((n.height for n in honest), default=0)
        reference = max(honest, key=lambda n: n.height).chain if honest else []
        evidence = {ev.id() for block, _ in reference for ev in block.evidence}
        equivocators = sorted({ev.validator.hex() for block, _ in reference for ev in block.evidence})
        rounds = max([c.round for n in honest for _, c in n.chain] + [n.engine.round for n in honest])
        return SimResult(
            committed_heights=committed, safety_violations=self.safety_violations,
            double_signs=self.double_signs, evidence_committed=len(evidence),
            equivocators=equivocators, rounds_max=rounds, virtual_seconds=self.now / 1000,
            wall_seconds=wall_seconds, messages=self.messages, dropped=self.dropped,
            refused_signs=self.refused_signs + sum(n.engine.refused_signs for n in self.nodes if n.up),
            synced_blocks=self.synced_blocks,
            commit_times_ms=dict(self.commit_times),
        )


def make_crash_plan(honest: int, count: int, seed: int) -> tuple[Crash, ...]:
    """``count`` of the first ``honest`` validators each go down once, at a random time
    in the first 10 s, for 2 to 8 s (seeded)."""
    rng = random.Random(f"crash-plan-{seed}")
    plan = []
    for node in rng.sample(range(honest), min(count, honest)):
        down = rng.randint(500, 10_000)
        plan.append(Crash(node, down, down + rng.randint(2_000, 8_000)))
    return tuple(plan)


def run_simulation(config: SimConfig) -> SimResult:
    return Simulation(config).run()
