"""The message log of one height: proposals and vote tallies per round (Algorithm 1).

Pure bookkeeping, no rules: the engine reads the tallies to decide which
"upon" rule fires. A second, different vote of one validator for one (round, kind)
is reported to the caller as an equivocation.
"""

from __future__ import annotations

from wire.units import BlockId, Round

from consensus.messages import Proposal
from consensus.vote import PRECOMMIT, Vote

MAX_IDS_PER_VALIDATOR = 8


class VoteSet:
    """The prevotes or precommits of one round, as Algorithm 1 counts them: for each id
    (None for nil), the set of validators that sent a vote for it.

    An equivocating validator counts once for each id it voted for (the paper's model:
    its conflicting messages are all received), so a polka that one honest node saw
    can be shown to every other; ``total`` counts each validator once. At most
    ``MAX_IDS_PER_VALIDATOR`` ids are kept per validator, so memory stays bounded.
    """

    __slots__ = ("first", "by_id", "ids_of", "quorum", "quorum_ids")

    def __init__(self, quorum: int) -> None:
        self.first: dict[bytes, Vote] = {}
        self.by_id: dict[bytes | None, dict[bytes, Vote]] = {}
        self.ids_of: dict[bytes, int] = {}
        self.quorum = quorum
        # Ids (None for nil) that reached quorum, in the order they did.
        self.quorum_ids: list[bytes | None] = []

    def get_conflict(self, vote: Vote) -> Vote | None:
        """The validator's first vote in this set if it was for another id."""
        prior = self.first.get(vote.validator)
        if prior is not None and prior.block_id != vote.block_id:
            return prior
        return None

    def is_duplicate(self, vote: Vote) -> bool:
        voters = self.by_id.get(vote.block_id)
        return voters is not None and vote.validator in voters

    def is_full_for(self, validator: bytes) -> bool:
        return self.ids_of.get(validator, 0) >= MAX_IDS_PER_VALIDATOR

    def add(self, vote: Vote) -> bool:
        """Count a vote not counted yet; True if its id just reached quorum."""
        self.first.setdefault(vote.validator, vote)
        self.ids_of[vote.validator] = self.ids_of.get(vote.validator, 0) + 1
        voters = self.by_id.get(vote.block_id)
        if voters is None:
            voters = self.by_id[vote.block_id] = {}
        voters[vote.validator] = vote
        if len(voters) == self.quorum:
            self.quorum_ids.append(vote.block_id)
            return True
        return False

    @property
    def total(self) -> int:
        """Distinct validators that voted, whatever for."""
        return len(self.first)

    @property
    def counts(self) -> dict[bytes | None, int]:
        return {block_id: len(voters) for block_id, voters in self.by_id.items()}

    def has_quorum_for(self, block_id: BlockId | None) -> bool:
        return len(self.by_id.get(block_id, ())) >= self.quorum

    def get_votes_for(self, block_id: BlockId | None) -> dict[bytes, Vote]:
        return self.by_id.get(block_id, {})


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

    def get_votes(self, kind: int, round: Round) -> VoteSet:
        table = self.precommits if kind == PRECOMMIT else self.prevotes
        vs = table.get(round)
        if vs is None:
            vs = table[round] = VoteSet(self.quorum)
        return vs

    def peek_votes(self, kind: int, round: Round) -> VoteSet | None:
        return (self.precommits if kind == PRECOMMIT else self.prevotes).get(round)

    def add_vote(self, vote: Vote) -> int:
        """Count a vote; return how many distinct validators sent something in its round."""
        if self.get_votes(vote.kind, vote.round).add(vote) and vote.kind == PRECOMMIT:
            if vote.block_id is not None:
                self.commit_candidates.append((vote.round, vote.block_id))
        return self.add_sender(vote.round, vote.validator)

    def add_proposal(self, proposal: Proposal, block_id: BlockId) -> int:
        self.proposals.setdefault(proposal.round, {})[block_id] = proposal
        self.first_proposal.setdefault(proposal.round, block_id)
        return self.add_sender(proposal.round, proposal.proposer)

    def add_sender(self, round: Round, validator: bytes) -> int:
        senders = self.senders.get(round)
        if senders is None:
            senders = self.senders[round] = set()
        senders.add(validator)
        return len(senders)

    def get_proposal(self, round: Round, block_id: BlockId) -> Proposal | None:
        return self.proposals.get(round, {}).get(block_id)

    def count_proposals(self, round: Round) -> int:
        return len(self.proposals.get(round, ()))
