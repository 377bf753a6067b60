"""The message log of one height: proposals and vote tallies per round (Algorithm 1).

Pure bookkeeping, no rules: the engine reads the tallies to decide which
"upon" rule fires. Each validator counts once per (round, kind); a second,
different vote from it is returned to the caller as an equivocation.
"""

from __future__ import annotations

from consensus.messages import Proposal
from consensus.vote import PRECOMMIT, Vote


class VoteSet:
    """The prevotes or precommits of one round: first vote of each validator, tallies."""

    __slots__ = ("votes", "counts", "quorum", "quorum_ids")

    def __init__(self, quorum: int) -> None:
        self.votes: dict[bytes, Vote] = {}
        self.counts: dict[bytes | None, int] = {}
        self.quorum = quorum
        # Ids (None for nil) that reached quorum, in the order they did.
        self.quorum_ids: list[bytes | None] = []

    def get_conflict(self, vote: Vote) -> Vote | None:
        """The validator's earlier vote in this set if it was for another id."""
        prior = self.votes.get(vote.validator)
        if prior is not None and prior.block_id != vote.block_id:
            return prior
        return None

    def is_duplicate(self, vote: Vote) -> bool:
        prior = self.votes.get(vote.validator)
        return prior is not None and prior.block_id == vote.block_id

    def add(self, vote: Vote) -> bool:
        """Count a vote whose validator has not voted here yet; True if the id just hit quorum."""
        self.votes[vote.validator] = vote
        count = self.counts.get(vote.block_id, 0) + 1
        self.counts[vote.block_id] = count
        if count == self.quorum:
            self.quorum_ids.append(vote.block_id)
            return True
        return False

    @property
    def total(self) -> int:
        return len(self.votes)

    def has_quorum_for(self, block_id: bytes | None) -> bool:
        return self.counts.get(block_id, 0) >= self.quorum


class HeightLog:
    """Everything received (or sent) at one height, indexed by round."""

    __slots__ = ("quorum", "prevotes", "precommits", "proposals", "first_proposal", "senders",
                 "commit_candidates")

    def __init__(self, quorum: int) -> None:
        self.quorum = quorum
        self.prevotes: dict[int, VoteSet] = {}
        self.precommits: dict[int, VoteSet] = {}
        self.proposals: dict[int, dict[bytes, Proposal]] = {}
        self.first_proposal: dict[int, bytes] = {}
        self.senders: dict[int, set[bytes]] = {}
        # (round, block id) pairs with >= quorum precommits: Algorithm 1 line 49 candidates.
        self.commit_candidates: list[tuple[int, bytes]] = []

    def get_votes(self, kind: int, round: int) -> VoteSet:
        table = self.precommits if kind == PRECOMMIT else self.prevotes
        vs = table.get(round)
        if vs is None:
            vs = table[round] = VoteSet(self.quorum)
        return vs

    def peek_votes(self, kind: int, round: int) -> VoteSet | None:
        return (self.precommits if kind == PRECOMMIT else self.prevotes).get(round)

    def add_vote(self, vote: Vote) -> int:
        """Count a vote; return how many distinct validators sent something in its round."""
        if self.get_votes(vote.kind, vote.round).add(vote) and vote.kind == PRECOMMIT:
            if vote.block_id is not None:
                self.commit_candidates.append((vote.round, vote.block_id))
        return self.add_sender(vote.round, vote.validator)

    def add_proposal(self, proposal: Proposal, block_id: bytes) -> int:
        self.proposals.setdefault(proposal.round, {})[block_id] = proposal
        self.first_proposal.setdefault(proposal.round, block_id)
        return self.add_sender(proposal.round, proposal.proposer)

    def add_sender(self, round: int, validator: bytes) -> int:
        senders = self.senders.get(round)
        if senders is None:
            senders = self.senders[round] = set()
        senders.add(validator)
        return len(senders)

    def get_proposal(self, round: int, block_id: bytes) -> Proposal | None:
        return self.proposals.get(round, {}).get(block_id)

    def count_proposals(self, round: int) -> int:
        return len(self.proposals.get(round, ()))
