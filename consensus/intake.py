"""Remote input of the consensus engine: route, check and record peers' messages.

Every check here drops a bad message with a counted reason and leaves the state
unchanged; nothing raises on remote input. The rules that react to what is
recorded live in consensus/engine.py (``Engine`` inherits this mixin).
"""

from __future__ import annotations

from consensus.block import compute_block_id, verify_commit
from consensus.errors import InvalidBlock, InvalidVote
from consensus.events import Broadcast, DecisionMsg, Effect, EvidenceMsg, ProposalMsg, VoteMsg
from consensus.messages import Proposal
from consensus.step import Step
from consensus.vote import EVIDENCE_MAX_AGE, DuplicateVote, Vote, compute_evidence_key, make_duplicate_vote
from consensus.vote import verify_evidence
from wire import Message
from wire.units import BlockId, Height, Round

KEPT_DECISIONS = 2      # decisions re-sent to peers seen lagging this many heights behind


class RemoteIntake:
    """Handlers for ProposalMsg, VoteMsg, EvidenceMsg and DecisionMsg."""

    # ---- remote messages -------------------------------------------------

    def _on_vote(self, inp: VoteMsg, out: list[Effect]) -> None:
        vote = inp.vote
        if not self._is_current(inp, vote.height, vote.round, vote.validator):
            return
        vs = self.log.peek_votes(vote.kind, vote.round)
        if vs is not None and vs.is_duplicate(vote):
            self.dropped["duplicate"] += 1
            return
        if not self._is_signed_by_validator(vote, vote.validator):
            return
        prior = vs.get_conflict(vote) if vs is not None else None
        if prior is not None:
            self._process_evidence(make_duplicate_vote(prior, vote), out, announce=True)
            if vs.is_full_for(vote.validator):
                self.dropped["too many conflicting votes"] += 1
                return
        self._process_vote(vote)
        self._end_wait(out)
        self._check_rules(out)

    def _on_proposal(self, inp: ProposalMsg, out: list[Effect]) -> None:
        p = inp.proposal
        if not self._is_current(inp, p.height, p.round, p.proposer):
            return
        reason = self._get_proposal_fault(p)
        if reason:
            self.dropped[reason] += 1
            return
        block_id = compute_block_id(p.block)
        if self.log.get_proposal(p.round, block_id) is not None:
            self.dropped["duplicate"] += 1
            return
        if self.log.count_proposals(p.round) >= self.config.max_proposals_per_round:
            self.dropped["too many proposals"] += 1
            return
        if not self._is_signed_by_validator(p, p.proposer):
            return
        self._process_proposal(p, block_id)
        self._end_wait(out)
        self._check_rules(out)

    def _get_proposal_fault(self, p: Proposal) -> str:
        """A proposal comes from proposer(h, r), with -1 <= pol_round < round."""
        if p.proposer != self.get_proposer(p.round):
            return "wrong proposer"
        if not -1 <= p.pol_round < p.round:
            return "bad pol_round"
        if p.block.header.height != p.height:
            return "block height mismatch"
        return ""

    def _on_evidence(self, inp: EvidenceMsg, out: list[Effect]) -> None:
        ev = inp.evidence
        if self.current_step == Step.IDLE:
            self.dropped["not started"] += 1
            return
        if ev.height > self.height or ev.height + EVIDENCE_MAX_AGE < self.height:
            self.dropped["evidence height out of range"] += 1
            return
        self._process_evidence(ev, out, announce=False)
        if self.pending_evidence and self.current_step == Step.WAIT:
            self._end_wait(out)     # evidence must be committed: a block is due
            self._check_rules(out)

    def _on_decision(self, inp: DecisionMsg, out: list[Effect]) -> None:
        """Algorithm 1 line 49 with its inputs packed: a value and >= quorum precommits."""
        block, commit = inp.decision.block, inp.decision.commit
        if not self._is_current(inp, block.header.height, 0, None, lagging=False):
            return
        block_id = compute_block_id(block)
        try:
            verify_commit(self.validators, self.chain_id, self.height, block_id, commit)
        except InvalidBlock:
            self.dropped["bad decision"] += 1
            return
        if not self._is_valid(block, block_id):
            self.dropped["bad decision"] += 1
            return
        self._decide(block, block_id, commit, out)

    def _is_current(self, inp, height: Height, round: Round, sender: bytes | None, lagging: bool = True) -> bool:
        """Route a message by height: current, buffered (height+1), or dropped and counted."""
        if self.current_step == Step.IDLE:
            self.dropped["not started"] += 1
            return False
        if height == self.height and self.current_step != Step.DECIDED:
            if round > self.round + self.config.max_rounds_ahead:
                self.dropped["round too far ahead"] += 1
                return False
            return True
        if height <= self.height:
            self.dropped["stale height"] += 1
            if lagging and height + KEPT_DECISIONS >= self.height:
                self.lagging[height] = max(self.lagging.get(height, 0), self.height - height)
            return False
        if height == self.height + 1:
            self._buffer_future(inp)
        else:
            self.dropped["height too far ahead"] += 1
            self._note_height_seen(inp, height, sender)
        return False

    def _buffer_future(self, inp) -> None:
        if len(self.future) >= self.config.future_buffer:
            self.dropped["future buffer full"] += 1
            return
        self.future.append(inp)
        self.highest_seen = max(self.highest_seen, self.height + 1)

    def _note_height_seen(self, inp, height: Height, sender: bytes | None) -> None:
        """A signed message of a far height is a hint that block sync is needed."""
        if height <= self.highest_seen or sender not in self.members:
            return
        msg = inp.vote if isinstance(inp, VoteMsg) else inp.proposal if isinstance(inp, ProposalMsg) else None
        if msg is not None and self.verify(msg, self.chain_id):
            self.highest_seen = height

    def _is_signed_by_validator(self, msg: Message, signer: bytes) -> bool:
        if signer not in self.members:
            self.dropped["not a validator"] += 1
            return False
        if not self.verify(msg, self.chain_id):
            self.dropped["bad signature"] += 1
            return False
        return True

    # ---- recording ---------------------------------------------------------

    def _process_vote(self, vote: Vote) -> None:
        if self.log.add_vote(vote) >= self.skip and vote.round > self.round:
            self.fired.add((55, vote.round))

    def _process_proposal(self, p: Proposal, block_id: BlockId) -> None:
        if self.log.add_proposal(p, block_id) >= self.skip and p.round > self.round:
            self.fired.add((55, p.round))

    def _process_evidence(self, ev: DuplicateVote, out: list[Effect], announce: bool) -> None:
        """DESIGN §6: conflicting signed votes become evidence, kept until committed."""
        key = compute_evidence_key(ev)
        if key in self.pending_evidence or key in self.committed_evidence:
            self.dropped["duplicate evidence"] += 1
            return
        if len(self.pending_evidence) >= self.config.max_pending_evidence:
            self.dropped["evidence pool full"] += 1
            return
        try:
            verify_evidence(self.app.validator_set(ev.height), self.chain_id, ev)
        except InvalidVote:
            self.dropped["bad evidence"] += 1
            return
        self.pending_evidence[key] = ev
        if announce:
            out.append(Broadcast(ev))
