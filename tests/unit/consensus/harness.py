"""Helpers for the consensus unit tests: keys, a toy application, and a lossless
in-memory network that delivers engine broadcasts in order and holds timeouts
until a test fires them."""

from __future__ import annotations

import hashlib
from collections import deque

from wire import Keypair, sign_message

from consensus.block import ZERO_ID, Block, Commit, Header, compute_tx_root
from consensus.engine import Engine
from consensus.events import (
    Broadcast, CommitBlock, EngineConfig, PersistBeforeSign, ScheduleTimeout, Start, Timeout, as_input,
)
from consensus.messages import Proposal
from consensus.vote import Vote

CHAIN = hashlib.sha256(b"test chain").digest()
OTHER_CHAIN = hashlib.sha256(b"other chain").digest()
KEYS = [Keypair(hashlib.sha256(b"validator-%d" % i).digest()) for i in range(12)]
OUTSIDER = Keypair(hashlib.sha256(b"outsider").digest())


def publics(n: int) -> list[bytes]:
    return [k.public for k in KEYS[:n]]


class ToyApp:
    """Blocks carry one tx naming (height, round, proposer, salt)."""

    def __init__(self, me: bytes, sets) -> None:
        self.me, self.sets, self.salt = me, sets, 0
        self.rejected: set[bytes] = set()
        self.stale: set[bytes] = set()      # tx roots of blocks this validator finds too old
        self.proposed: list[tuple] = []

    def validator_set(self, height: int) -> list[bytes]:
        return self.sets(height)

    def propose(self, height, round, last_commit, evidence) -> Block:
        self.proposed.append((height, round, evidence))
        return make_block(height, last_commit, self.me, round=round, salt=self.salt, evidence=evidence)

    def validate(self, block: Block) -> bool:
        return block.header.tx_root not in self.rejected

    def is_timely(self, block: Block) -> bool:
        return block.header.tx_root not in self.stale


def make_block(height: int, last_commit: Commit | None, proposer: bytes, round: int = 0, salt: int = 0,
               evidence=(), chain_id: bytes = CHAIN, time_ms: int | None = None) -> Block:
    txs = (b"tx h=%d r=%d s=%d " % (height, round, salt) + proposer[:4],)
    header = Header(chain_id=chain_id, height=height, time_ms=time_ms if time_ms is not None else 1000 * height + round,
                    parent=last_commit.block_id if last_commit is not None else ZERO_ID,
                    tx_root=compute_tx_root(txs), state_hash=bytes(32), proposer=proposer,
                    next_validators=bytes(32), version=1)
    return Block(header=header, txs=txs, last_commit=last_commit, evidence=tuple(evidence))


def signed_vote(key: Keypair, kind: int, height: int, round: int, block_id: bytes | None,
                chain_id: bytes = CHAIN) -> Vote:
    return sign_message(Vote(kind=kind, height=height, round=round, block_id=block_id,
                             validator=key.public, sig=bytes(64)), chain_id, key)


def signed_proposal(key: Keypair, height: int, round: int, block: Block, pol_round: int = -1) -> Proposal:
    return sign_message(Proposal(height=height, round=round, pol_round=pol_round, block=block,
                                 proposer=key.public, sig=bytes(64)), CHAIN, key)


class Net:
    """n engines (validators 0..n-1), lossless, FIFO; ``skip`` nodes are disconnected."""

    def __init__(self, n: int, sets=None, config: EngineConfig = EngineConfig(), ready: bool = True) -> None:
        self.sets = sets or (lambda h: publics(n))
        self.apps = [ToyApp(KEYS[i].public, self.sets) for i in range(n)]
        self.engines = [Engine(CHAIN, KEYS[i], self.apps[i], config) for i in range(n)]
        self.ready = ready
        self.queue: deque = deque()
        self.timeouts: list[list[ScheduleTimeout]] = [[] for _ in range(n)]
        self.commits: list[list[CommitBlock]] = [[] for _ in range(n)]
        self.persisted: list = [None] * n
        self.effects: list[list] = [[] for _ in range(n)]
        self.down: set[int] = set()

    def start(self) -> None:
        for i, engine in enumerate(self.engines):
            self.handle(i, engine.step(Start(1, None, self.ready)))

    def handle(self, i: int, effects: list) -> None:
        self.effects[i].extend(effects)
        for e in effects:
            if isinstance(e, Broadcast):
                for j in range(len(self.engines)):
                    if j != i and j not in self.down:
                        self.queue.append((j, as_input(e.message)))
            elif isinstance(e, ScheduleTimeout):
                self.timeouts[i].append(e)
            elif isinstance(e, PersistBeforeSign):
                self.persisted[i] = e.state
            elif isinstance(e, CommitBlock):
                self.commits[i].append(e)
                self.handle(i, self.engines[i].step(Start(e.block.header.height + 1, e.commit, self.ready)))

    def run(self, max_steps: int = 100_000, heights: int | None = None) -> None:
        for _ in range(max_steps):
            if not self.queue or (heights is not None and self.min_height() >= heights):
                return
            j, inp = self.queue.popleft()
            if j not in self.down:
                self.handle(j, self.engines[j].step(inp))

    def run_heights(self, heights: int) -> None:
        """Deliver messages, firing the earliest timeouts when the network goes quiet."""
        for _ in range(10_000):
            self.run(heights=heights)
            if self.min_height() >= heights:
                return
            self.fire_next_timeouts()
        raise AssertionError("no progress")

    def min_height(self) -> int:
        return min(len(c) for i, c in enumerate(self.commits) if i not in self.down)

    def fire_next_timeouts(self) -> None:
        for i, pending in enumerate(self.timeouts):
            if i in self.down:
                continue
            self.timeouts[i] = []
            for t in pending:
                if t.step != "gossip":
                    self.handle(i, self.engines[i].step(Timeout(t.height, t.round, t.step)))

    def chain(self, i: int = 0) -> list[tuple[Block, Commit]]:
        return [(c.block, c.commit) for c in self.commits[i]]
