"""Inputs, effects and the application interface of the consensus engine (DESIGN §6).

The engine is sans-I/O: the node feeds it inputs and carries out the effects it
returns, in order. ``PersistBeforeSign`` must be durable (fsync) before the
``Broadcast`` that follows it in the same effect list is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from wire import Message
from wire.units import Height, Round

from consensus.block import Block, Commit
from consensus.messages import Decision, Proposal
from consensus.privval import SignState
from consensus.vote import DuplicateVote, Vote

# Timeout steps. PROPOSE/PREVOTE/PRECOMMIT are Algorithm 1's; WAIT is the wait for a
# value before round 0 (DESIGN §6 empty-block heartbeat); GOSSIP re-sends this
# validator's messages so that lost ones are eventually delivered.
T_PROPOSE = "propose"
T_PREVOTE = "prevote"
T_PRECOMMIT = "precommit"
T_WAIT = "wait"
T_GOSSIP = "gossip"
TIMEOUT_STEPS = (T_PROPOSE, T_PREVOTE, T_PRECOMMIT, T_WAIT, T_GOSSIP)


@dataclass(frozen=True)
class EngineConfig:
    """Timeouts of DESIGN §6 in milliseconds, and the engine's buffer limits."""

    propose_ms: int = 1_000
    propose_delta_ms: int = 500
    vote_ms: int = 500
    vote_delta_ms: int = 500
    idle_ms: int = 10_000           # max_idle_s: optional safety heartbeat; 0 = none
    gossip_ms: int = 1_000          # re-send period of own messages
    future_buffer: int = 4_096      # messages of height+1 kept until that height starts
    max_rounds_ahead: int = 1_000   # messages of rounds further ahead are dropped
    max_proposals_per_round: int = 4
    max_pending_evidence: int = 256
    rebroadcast_rounds: int = 3     # own messages of the last rounds re-sent on GOSSIP

    def get_timeout_ms(self, step: str, round: Round) -> int:
        """DESIGN §6: propose 1 s + 0.5 s·r; prevote and precommit 0.5 s + 0.5 s·r."""
        if step == T_PROPOSE:
            return self.propose_ms + self.propose_delta_ms * round
        if step in (T_PREVOTE, T_PRECOMMIT):
            return self.vote_ms + self.vote_delta_ms * round
        if step == T_WAIT:
            return self.idle_ms
        return self.gossip_ms


class Application(Protocol):
    """What the engine needs from the ledger. It knows nothing of tokens."""

    def validator_set(self, height: Height) -> Sequence[bytes]:
        """Validators of ``height``, in proposer order; must answer for heights up to
        ``EVIDENCE_MAX_AGE`` back (to check evidence) and for the next height."""

    def propose(self, height: Height, round: Round, last_commit: Commit | None,
                evidence: tuple[DuplicateVote, ...]) -> Block:
        """A new block for ``height`` on top of the last committed one, carrying
        ``last_commit`` and ``evidence`` as given."""

    def validate(self, block: Block) -> bool:
        """True iff the block is valid for the application: time, state hash, txs.
        The engine has already checked chain id, height, parent, tx root,
        last commit and evidence."""

    def is_timely(self, block: Block) -> bool:
        """True iff a fresh proposal's time is not too far behind this validator's clock
        (consensus/block.py check_block_lag). Asked only before prevoting a proposal
        without a polka (line 22), never when deciding or syncing."""


# ---- inputs ----------------------------------------------------------------

@dataclass(frozen=True)
class Start:
    """Begin ``height`` (the first one after boot, block sync, or a CommitBlock effect).

    ``last_commit`` is the commit of height-1 (None at height 1). ``ready`` says the
    app already has something to propose (else the engine waits for ValueReady or
    the idle timeout before round 0, DESIGN §6 heartbeat).
    """

    height: Height
    last_commit: Commit | None
    ready: bool = False


@dataclass(frozen=True)
class ProposalMsg:
    proposal: Proposal


@dataclass(frozen=True)
class VoteMsg:
    vote: Vote


@dataclass(frozen=True)
class EvidenceMsg:
    evidence: DuplicateVote


@dataclass(frozen=True)
class DecisionMsg:
    decision: Decision


@dataclass(frozen=True)
class Timeout:
    height: Height
    round: Round
    step: str


@dataclass(frozen=True)
class ValueReady:
    """The app has txs to propose (a new tx entered the mempool)."""

    height: Height


NewTx = ValueReady

Input = Start | ProposalMsg | VoteMsg | EvidenceMsg | DecisionMsg | Timeout | ValueReady
MessageInput = ProposalMsg | VoteMsg | EvidenceMsg | DecisionMsg

INPUT_OF: dict[type[Message], type[MessageInput]] = {
    Proposal: ProposalMsg, Vote: VoteMsg, DuplicateVote: EvidenceMsg, Decision: DecisionMsg,
}


def as_input(msg: Message) -> MessageInput:
    """The engine input that carries a consensus message (one of CONSENSUS_MESSAGES)."""
    wrap = INPUT_OF.get(type(msg))
    if wrap is None:
        raise TypeError(f"not a consensus message: {type(msg).__name__}")
    return wrap(msg)


# ---- effects ---------------------------------------------------------------

@dataclass(frozen=True)
class Broadcast:
    message: Message


@dataclass(frozen=True)
class ScheduleTimeout:
    """Feed back ``Timeout(height, round, step)`` after ``delay_ms``."""

    height: Height
    round: Round
    step: str
    delay_ms: int


@dataclass(frozen=True)
class PersistBeforeSign:
    """Store ``state`` durably (fsync) before sending the next Broadcast."""

    state: SignState


@dataclass(frozen=True)
class CommitBlock:
    """``block`` is final at its height. Apply it, store it with ``commit``, then
    send ``Start(height + 1, commit)``. ``equivocators`` are the validators its
    evidence convicts (for the ledger's apply_block(..., equivocators=))."""

    block: Block
    commit: Commit
    equivocators: tuple[bytes, ...]


Effect = Broadcast | ScheduleTimeout | PersistBeforeSign | CommitBlock
