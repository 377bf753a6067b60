"""The consensus wire messages (DESIGN §6) and their strict decoder.

- ``Proposal``: a block proposed at (height, round), signed by proposer(h, r);
  ``pol_round`` is the round of its proof-of-lock (Algorithm 1 validRound), -1 if none.
- ``Vote``: a prevote or precommit (see consensus.vote).
- ``DuplicateVote``: evidence of an equivocation, gossiped as it is found.
- ``Decision``: a decided block with its commit, sent to a peer seen lagging one or
  two heights behind so it can decide without block sync (Algorithm 1 line 49
  inputs packed together: the proposal value and >= quorum precommits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from wire import I64, KEY, MAX_BLOCK_BYTES, SIG, U64, Message, Nested, decode, field_of, register
from wire.units import Height, Round

from consensus.block import Block, Commit
from consensus.vote import DuplicateVote, Vote

# A proposal or decision carries a whole block (<= 4 MiB) plus a small envelope.
MAX_CONSENSUS_BYTES = MAX_BLOCK_BYTES + 64 * 1024


@register("cs/proposal")
@dataclass(frozen=True)
class Proposal(Message):
    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = (("proposer", "sig"),)
    height: Height = field_of(U64)
    round: Round = field_of(U64)
    pol_round: int = field_of(I64)      # a Round, or -1: none
    block: Block = field_of(Nested(Block))
    proposer: bytes = field_of(KEY)
    sig: bytes = field_of(SIG)


@register("cs/decision")
@dataclass(frozen=True)
class Decision(Message):
    block: Block = field_of(Nested(Block))
    commit: Commit = field_of(Nested(Commit))


CONSENSUS_MESSAGES: tuple[type[Message], ...] = (Proposal, Vote, DuplicateVote, Decision)


def decode_consensus(data: bytes) -> Message:
    """Strictly decode one consensus gossip message; raises ``wire.DecodeError``."""
    return decode(data, CONSENSUS_MESSAGES, MAX_CONSENSUS_BYTES)


__all__ = ["CONSENSUS_MESSAGES", "Decision", "DuplicateVote", "MAX_CONSENSUS_BYTES", "Proposal",
           "Vote", "decode_consensus"]
