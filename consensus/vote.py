"""Votes and duplicate-vote evidence (DESIGN §6), the leaves of every consensus message.

A vote is signed with the domain-separated scheme of wire.crypto, so the bytes a
validator signs for a precommit are also what a ``Commit`` carries a signature of.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from wire import KEY, OPT_HASH, SIG, U64, Message, Nested, field_of, register, verify_message
from wire.errors import DecodeError
from wire.message import Kind
from wire.units import BlockId, Height, Round

from consensus.errors import InvalidVote

PREVOTE = 1
PRECOMMIT = 2
VOTE_KINDS = {PREVOTE: "prevote", PRECOMMIT: "precommit"}

# A block accepts evidence from at most this many heights below its own; the
# engine keeps committed evidence keys as long, to refuse a second inclusion.
EVIDENCE_MAX_AGE = 100


class OneOf(Kind):
    """An unsigned integer restricted to a fixed set of values."""

    def __init__(self, values: Sequence[int], name: str) -> None:
        self.values, self.name = frozenset(values), name

    def check(self, value: Any, where: str) -> int:
        if type(value) is not int or value not in self.values:
            raise DecodeError(f"{where}: {value!r} is not a valid {self.name}")
        return value


VOTE_KIND = OneOf(VOTE_KINDS, "vote kind")


def compute_quorum(n: int) -> int:
    """DESIGN §6: quorum is floor(2n/3) + 1 of n equal-power validators."""
    return 2 * n // 3 + 1


def compute_skip_threshold(n: int) -> int:
    """Algorithm 1 line 55: f+1 validators, f = floor((n-1)/3), include one honest one."""
    return (n - 1) // 3 + 1


@register("cs/vote")
@dataclass(frozen=True)
class Vote(Message):
    """A prevote or precommit for ``block_id`` (None: nil) at (height, round)."""

    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = (("validator", "sig"),)
    kind: int = field_of(VOTE_KIND)
    height: Height = field_of(U64)
    round: Round = field_of(U64)
    block_id: BlockId | None = field_of(OPT_HASH)
    validator: bytes = field_of(KEY)
    sig: bytes = field_of(SIG)


def compute_vote_key(vote: Vote) -> tuple[bytes, int, int, int]:
    """The slot a validator may sign only once: (validator, height, round, kind)."""
    return (vote.validator, vote.height, vote.round, vote.kind)


def _sort_key(vote: Vote) -> bytes:
    return b"" if vote.block_id is None else vote.block_id


@register("cs/duplicate-vote")
@dataclass(frozen=True)
class DuplicateVote(Message):
    """Evidence: two signed votes of one validator for one (h, r, kind), different ids.

    Canonical order: ``vote_a`` has the smaller block id (nil first), so one
    equivocation has exactly one encoding and one id.
    """

    vote_a: Vote = field_of(Nested(Vote))
    vote_b: Vote = field_of(Nested(Vote))

    @property
    def validator(self) -> bytes:
        return self.vote_a.validator

    @property
    def height(self) -> Height:
        return self.vote_a.height


def make_duplicate_vote(first: Vote, second: Vote) -> DuplicateVote:
    """Build the canonical evidence from two conflicting votes, in either order."""
    a, b = sorted((first, second), key=_sort_key)
    return DuplicateVote(vote_a=a, vote_b=b)


def compute_evidence_key(ev: DuplicateVote) -> tuple[bytes, int, int, int]:
    """One piece of evidence per equivocation slot, whatever the ids."""
    return compute_vote_key(ev.vote_a)


def verify_vote(validators: Sequence[bytes] | frozenset[bytes], chain_id: bytes, vote: Vote) -> None:
    """A vote counts only if its signer is a validator of its height and signed it."""
    if vote.validator not in validators:
        raise InvalidVote("vote from a non-validator")
    if not verify_message(vote, chain_id):
        raise InvalidVote("bad vote signature")


def verify_evidence(validators: Sequence[bytes], chain_id: bytes, ev: DuplicateVote) -> None:
    """DESIGN §6: two signed votes by one validator, same (h, r, type), different ids."""
    a, b = ev.vote_a, ev.vote_b
    if compute_vote_key(a) != compute_vote_key(b):
        raise InvalidVote("evidence votes are not for the same validator, height, round and type")
    if a.block_id == b.block_id:
        raise InvalidVote("evidence votes are for the same block id")
    if _sort_key(a) >= _sort_key(b):
        raise InvalidVote("evidence votes are not in canonical order")
    verify_vote(validators, chain_id, a)
    verify_vote(validators, chain_id, b)


def compute_sign_hash(data: bytes) -> bytes:
    """What the double-sign record keeps of the signed bytes: their sha256."""
    return hashlib.sha256(data).digest()


__all__ = [
    "DuplicateVote", "EVIDENCE_MAX_AGE", "PRECOMMIT", "PREVOTE", "VOTE_KINDS", "Vote", "compute_evidence_key",
    "compute_quorum", "compute_sign_hash",
    "compute_skip_threshold", "compute_vote_key", "make_duplicate_vote", "verify_evidence",
    "verify_vote",
]
