"""The Tendermint consensus engine: Algorithm 1 of Buchman, Kwon, Milosevic (arXiv
1807.04938) as a sans-I/O state machine (DESIGN §6).

``Engine.step(input) -> [effects]``. Every "upon" rule of Algorithm 1 is one method
below, named after its line. Remote input never raises: a bad message is dropped,
counted in ``dropped`` by reason, and leaves the state unchanged.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Callable

from wire import Keypair, Message, signing_bytes, verify_message
from wire.units import BlockId, Round

from consensus.block import (
    ZERO_ID, Block, Commit, CommitSig, check_block_shape, compute_block_id, get_equivocators,
    verify_block_evidence, verify_commit,
)
from consensus.errors import InvalidBlock
from consensus.events import (
    T_GOSSIP, T_PRECOMMIT, T_PREVOTE, T_PROPOSE, T_WAIT, Application, Broadcast, CommitBlock,
    DecisionMsg, Effect, EngineConfig, EvidenceMsg, PersistBeforeSign, ProposalMsg,
    ScheduleTimeout, Start, Timeout, ValueReady, VoteMsg,
)
from consensus.intake import KEPT_DECISIONS, RemoteIntake
from consensus.log import HeightLog
from consensus.messages import Decision, Proposal
from consensus.privval import INITIAL_SIGN_STATE, SignState, check_hrs, get_sign_step
from consensus.step import Step
from consensus.vote import (
    EVIDENCE_MAX_AGE, PRECOMMIT, PREVOTE, DuplicateVote, Vote, compute_evidence_key, compute_quorum,
    compute_sign_hash, compute_skip_threshold,
)

NO_SIG = bytes(64)


class Engine(RemoteIntake):
    """One validator's (or, with ``key=None``, an observer's) consensus state."""

    def __init__(self, chain_id: bytes, key: Keypair | None, app: Application,
                 config: EngineConfig = EngineConfig(), sign_state: SignState = INITIAL_SIGN_STATE,
                 verify: Callable[[Message, bytes], bool] = verify_message) -> None:
        self.chain_id, self.key, self.app, self.config = chain_id, key, app, config
        self.me = key.public if key is not None else None
        self.sign_state = sign_state
        self.verify = verify
        self.dropped: Counter[str] = Counter()      # remote input dropped, by reason
        self.refused_signs = 0                      # double-sign protection refusals
        self.height, self.round, self.current_step = 0, 0, Step.IDLE
        self.validators: list[bytes] = []
        self.members: frozenset[bytes] = frozenset()
        self.quorum = self.skip = 1
        self.last_commit: Commit | None = None
        self.parent_id = ZERO_ID
        self.highest_seen = 0
        self.future: list = []
        # Heights that peers were heard at after we decided them: height -> the most
        # heights we were past it when heard. Noted since the last gossip tick, and before.
        self.lagging: dict[int, int] = {}
        self.lagging_before: set[int] = set()
        self.gossip_mark: tuple[int, int, int] | None = None
        self.decisions: dict[int, Decision] = {}
        self.pending_evidence: dict[tuple, DuplicateVote] = {}
        self.committed_evidence: dict[tuple, int] = {}
        self.gossiping = False
        self._reset_height_state()
        self._handlers = {
            Start: self._on_start, ProposalMsg: self._on_proposal, VoteMsg: self._on_vote,
            EvidenceMsg: self._on_evidence, DecisionMsg: self._on_decision,
            Timeout: self._on_timeout, ValueReady: self._on_value_ready,
        }

    def _reset_height_state(self) -> None:
        self.log = HeightLog(self.quorum)
        self.locked_round, self.locked_id = -1, None
        self.valid_round, self.valid_block, self.valid_id = -1, None, None
        self.fired: set[tuple[int, int]] = set()
        self.valid_cache: dict[bytes, bool] = {}
        self.own: list[tuple[int, Message]] = []
        self.known_precommits: frozenset[tuple[bytes, bytes]] = frozenset()

    # ---- public API ------------------------------------------------------

    def step(self, inp) -> list[Effect]:
        """Feed one input; return the effects to carry out, in order."""
        out: list[Effect] = []
        handler = self._handlers.get(type(inp))
        if handler is None:
            raise TypeError(f"not an engine input: {type(inp).__name__}")
        handler(inp, out)
        return out

    def get_proposer(self, round: Round) -> bytes:
        """DESIGN §6: proposer(h, r) = V[(h + r) mod n]."""
        return self.validators[(self.height + round) % len(self.validators)]

    def get_step_name(self) -> str:
        return self.current_step.name.lower()

    # ---- Start (a new height) --------------------------------------------

    def _on_start(self, inp: Start, out: list[Effect]) -> None:
        self.height = inp.height
        self.validators = list(self.app.validator_set(inp.height))
        self.members = frozenset(self.validators)
        self.quorum = compute_quorum(len(self.validators))
        self.skip = compute_skip_threshold(len(self.validators))
        self._reset_height_state()
        self.known_precommits = self._get_decided_precommits(inp.last_commit)
        self.last_commit = inp.last_commit
        self.parent_id = inp.last_commit.block_id if inp.last_commit is not None else ZERO_ID
        self._restore_from_sign_state()
        if not self.gossiping:
            self.gossiping = True
            out.append(ScheduleTimeout(0, 0, T_GOSSIP, self.config.gossip_ms))
        # Pending evidence is something to propose, as txs are (DESIGN §12: a block when
        # something is due). idle_ms = 0: no heartbeat, the app says when (ValueReady).
        if inp.ready or self.round > 0 or self.pending_evidence:
            self._start_round(self.round, out)
        else:
            self.current_step = Step.WAIT
            if self.config.idle_ms > 0:
                out.append(ScheduleTimeout(self.height, self.round, T_WAIT, self.config.idle_ms))
        self._replay_future(out)
        self._check_rules(out)

    def _get_decided_precommits(self, commit: Commit | None) -> frozenset[tuple[bytes, bytes]]:
        """Precommit signatures this engine verified for the parent: no need to re-verify."""
        decision = self.decisions.get(commit.height) if commit is not None else None
        if decision is None:
            return frozenset()
        return frozenset((s.validator, s.sig) for s in decision.commit.sigs)

    def _restore_from_sign_state(self) -> None:
        """After a restart mid-height, resume at the last signed round with its lock."""
        ss = self.sign_state
        if ss.height == self.height and ss.step > 0:
            self.round = ss.round
            self.locked_round, self.locked_id = ss.locked_round, ss.locked_id
        else:
            self.round = 0

    def _replay_future(self, out: list[Effect]) -> None:
        buffered, self.future = self.future, []
        for inp in buffered:
            self._handlers[type(inp)](inp, out)

    # ---- the rules of Algorithm 1 ------------------------------------------

    def _check_rules(self, out: list[Effect]) -> None:
        """Fire every enabled rule until none is: rules may enable one another."""
        while self.current_step not in (Step.IDLE, Step.WAIT, Step.DECIDED):
            if not (self._rule_decide(out) or self._rule_round_skip(out)
                    or self._rule_proposal(out) or self._rule_polka_value(out)
                    or self._rule_polka_nil(out)):
                self._rule_polka_any(out)
                self._rule_precommit_any(out)
                return

    def _rule_proposal(self, out: list[Effect]) -> bool:
        """Lines 22 and 28: prevote for the round's proposal if valid and the lock allows."""
        if self.current_step != Step.PROPOSE:
            return False
        block_id = self.log.first_proposal.get(self.round)
        if block_id is None:
            return False
        p = self.log.proposals[self.round][block_id]
        vr = p.pol_round
        if vr == -1:        # line 22, with DESIGN §6's lower bound on a fresh proposal's time
            ok = self._is_valid(p.block, block_id) and (
                self.locked_id == block_id or (self.locked_round == -1 and self.app.is_timely(p.block)))
        else:               # line 28: only with a polka for it at round vr
            prevotes = self.log.peek_votes(PREVOTE, vr)
            if prevotes is None or not prevotes.has_quorum_for(block_id):
                return False
            ok = self._is_valid(p.block, block_id) and (self.locked_round <= vr or self.locked_id == block_id)
        self._vote(PREVOTE, block_id if ok else None, out)
        self.current_step = Step.PREVOTE
        return True

    def _rule_polka_any(self, out: list[Effect]) -> None:
        """Line 34: 2f+1 prevotes of any kind at step prevote start timeoutPrevote, once."""
        prevotes = self.log.peek_votes(PREVOTE, self.round)
        if self.current_step == Step.PREVOTE and prevotes is not None and prevotes.total >= self.quorum:
            self._schedule_once(34, T_PREVOTE, out)

    def _rule_polka_value(self, out: list[Effect]) -> bool:
        """Line 36: a valid proposal with a polka: lock and precommit it (at step prevote),
        and remember it as the valid value."""
        if self.current_step < Step.PREVOTE or (36, self.round) in self.fired:
            return False
        prevotes = self.log.peek_votes(PREVOTE, self.round)
        for block_id in (prevotes.quorum_ids if prevotes is not None else ()):
            p = self.log.get_proposal(self.round, block_id) if block_id is not None else None
            if p is None or not self._is_valid(p.block, block_id):
                continue
            self.fired.add((36, self.round))
            if self.current_step == Step.PREVOTE:
                self.locked_round, self.locked_id = self.round, block_id
                self._vote(PRECOMMIT, block_id, out)
                self.current_step = Step.PRECOMMIT
            self.valid_round, self.valid_block, self.valid_id = self.round, p.block, block_id
            out.extend(self._get_polka_broadcasts())
            return True
        return False

    def _rule_polka_nil(self, out: list[Effect]) -> bool:
        """Line 44: 2f+1 nil prevotes at step prevote: precommit nil."""
        prevotes = self.log.peek_votes(PREVOTE, self.round)
        if self.current_step != Step.PREVOTE or prevotes is None or not prevotes.has_quorum_for(None):
            return False
        self._vote(PRECOMMIT, None, out)
        self.current_step = Step.PRECOMMIT
        return True

    def _rule_precommit_any(self, out: list[Effect]) -> None:
        """Line 47: 2f+1 precommits of any kind start timeoutPrecommit, once per round."""
        precommits = self.log.peek_votes(PRECOMMIT, self.round)
        if precommits is not None and precommits.total >= self.quorum:
            self._schedule_once(47, T_PRECOMMIT, out)

    def _rule_decide(self, out: list[Effect]) -> bool:
        """Line 49: a proposal of any round with 2f+1 precommits for it: decide, if valid."""
        for round, block_id in self.log.commit_candidates:
            p = self.log.get_proposal(round, block_id)
            if p is not None and self._is_valid(p.block, block_id):
                self._decide(p.block, block_id, self._make_commit(round, block_id), out)
                return True
        return False

    def _rule_round_skip(self, out: list[Effect]) -> bool:
        """Line 55: f+1 validators sent messages of a higher round: start that round."""
        higher = [r for rule, r in self.fired if rule == 55 and r > self.round]
        if not higher:
            return False
        self._start_round(max(higher), out)
        return True

    def _schedule_once(self, rule: int, step: str, out: list[Effect]) -> None:
        if (rule, self.round) not in self.fired:
            self.fired.add((rule, self.round))
            delay = self.config.get_timeout_ms(step, self.round)
            out.append(ScheduleTimeout(self.height, self.round, step, delay))

    # ---- rounds, timeouts ---------------------------------------------------

    def _start_round(self, round: Round, out: list[Effect]) -> None:
        """StartRound: the proposer proposes validValue if any, else a new value."""
        self.round, self.current_step = round, Step.PROPOSE
        if self.me is not None and self.get_proposer(round) == self.me:
            self._propose(out)
        # Also scheduled for the proposer: if double-sign protection refused its
        # proposal (restart), the round must still move on.
        out.append(ScheduleTimeout(self.height, round, T_PROPOSE,
                                   self.config.get_timeout_ms(T_PROPOSE, round)))

    def _propose(self, out: list[Effect]) -> None:
        if self.valid_block is not None:
            block, pol_round = self.valid_block, self.valid_round
        else:
            evidence = tuple(self.pending_evidence[k] for k in sorted(self.pending_evidence))
            block = self.app.propose(self.height, self.round, self.last_commit, evidence)
            pol_round = -1
        p = Proposal(height=self.height, round=self.round, pol_round=pol_round, block=block,
                     proposer=self.me, sig=NO_SIG)
        signed = self._sign(p, out)
        if signed is not None:
            self._process_proposal(signed, compute_block_id(block))
            out.extend(self._get_polka_broadcasts())

    def _get_polka_broadcasts(self) -> list[Effect]:
        """Relay the prevotes that prove the valid value's polka (its pol_round), so that
        peers can apply line 28; gossip relays others' votes as well as one's own."""
        if self.valid_round < 0:
            return []
        prevotes = self.log.peek_votes(PREVOTE, self.valid_round)
        votes = prevotes.get_votes_for(self.valid_id).values() if prevotes is not None else ()
        return [Broadcast(v) for v in votes]

    def _on_timeout(self, t: Timeout, out: list[Effect]) -> None:
        if t.step == T_GOSSIP:
            self._gossip(out)
            return
        if t.height != self.height or self.current_step in (Step.IDLE, Step.DECIDED):
            return
        if t.step == T_WAIT and self.current_step == Step.WAIT:
            self._end_wait(out)
        elif t.round != self.round:
            return
        elif t.step == T_PROPOSE and self.current_step == Step.PROPOSE:        # OnTimeoutPropose
            self._vote(PREVOTE, None, out)
            self.current_step = Step.PREVOTE
        elif t.step == T_PREVOTE and self.current_step == Step.PREVOTE:        # OnTimeoutPrevote
            self._vote(PRECOMMIT, None, out)
            self.current_step = Step.PRECOMMIT
        elif t.step == T_PRECOMMIT and self.current_step != Step.WAIT:         # OnTimeoutPrecommit
            self._start_round(self.round + 1, out)
        self._check_rules(out)

    def _on_value_ready(self, inp: ValueReady, out: list[Effect]) -> None:
        if inp.height == self.height:
            self._end_wait(out)
            self._check_rules(out)

    def _end_wait(self, out: list[Effect]) -> None:
        """DESIGN §6 and §12: round 0 starts once there is something to propose (txs,
        evidence, or a time-driven rule due, which the app signals with ValueReady), a
        peer has started, or the optional max_idle_s safety heartbeat has passed."""
        if self.current_step == Step.WAIT:
            self._start_round(self.round, out)

    def _gossip(self, out: list[Effect]) -> None:
        """Repair lost messages, as Algorithm 1 assumes of gossip: every tick, re-send
        own recent votes (small). Blocks are large, so the round's proposal (own or
        not) and the polka of the valid value are re-sent only when the height, round
        and step have not moved since the last tick; and the decision of a height a
        peer is still heard at goes out when we are stuck too (we may need that peer),
        when the peer was heard a height or more after we decided it, or on two ticks.
        A single late vote is routine (the slowest validator's vote arrives after the
        quorum decided): answering each with a whole block would send every block
        several times more over gossip."""
        out.append(ScheduleTimeout(0, 0, T_GOSSIP, self.config.gossip_ms))
        mark = (self.height, self.round, self.current_step)
        stuck, self.gossip_mark = mark == self.gossip_mark, mark
        if self.current_step in (Step.PROPOSE, Step.PREVOTE, Step.PRECOMMIT):
            oldest = self.round - self.config.rebroadcast_rounds + 1
            out.extend(Broadcast(msg) for r, msg in self.own
                       if r >= oldest and (stuck or not isinstance(msg, Proposal)))
            block_id = self.log.first_proposal.get(self.round)
            p = self.log.proposals[self.round][block_id] if block_id is not None else None
            if stuck and p is not None and p.proposer != self.me:
                out.append(Broadcast(p))
            if stuck:
                out.extend(self._get_polka_broadcasts())
        due = {h for h, behind in self.lagging.items() if stuck or behind >= 2 or h in self.lagging_before}
        out.extend(Broadcast(self.decisions[h]) for h in sorted(due) if h in self.decisions)
        self.lagging_before = {h for h in (self.lagging_before | self.lagging.keys()) - due
                               if h + KEPT_DECISIONS >= self.height}
        self.lagging.clear()

    # ---- signing, validity, deciding ---------------------------------------

    def _vote(self, kind: int, block_id: BlockId | None, out: list[Effect]) -> None:
        if self.me is None or self.me not in self.members:
            return
        vote = Vote(kind=kind, height=self.height, round=self.round, block_id=block_id,
                    validator=self.me, sig=NO_SIG)
        signed = self._sign(vote, out)
        if signed is not None:
            self._process_vote(signed)

    def _sign(self, msg: Proposal | Vote, out: list[Effect]):
        """DESIGN §6 double-sign protection: check h/r/s, persist, then broadcast."""
        data = signing_bytes(self.chain_id, msg)
        sign_hash = compute_sign_hash(data)
        step = get_sign_step(msg)
        if not check_hrs(self.sign_state, self.height, self.round, step, sign_hash).allow:
            self.refused_signs += 1
            return None
        self.sign_state = SignState(height=self.height, round=self.round, step=int(step),
                                    sign_hash=sign_hash, locked_round=self.locked_round,
                                    locked_id=self.locked_id)
        signed = dataclasses.replace(msg, sig=self.key.sign(data))
        out.append(PersistBeforeSign(self.sign_state))
        out.append(Broadcast(signed))
        self.own.append((self.round, signed))
        return signed

    def _is_valid(self, block: Block, block_id: BlockId) -> bool:
        """valid(v): consensus checks here, then the application's; cached by id."""
        cached = self.valid_cache.get(block_id)
        if cached is None:
            cached = self.valid_cache[block_id] = self._check_block(block)
        return cached

    def _check_block(self, block: Block) -> bool:
        try:
            check_block_shape(block, self.chain_id, self.height, self.parent_id)
            if block.header.proposer not in self.members:
                raise InvalidBlock("block proposer is not a validator")
            if self.height > 1:
                verify_commit(self.app.validator_set(self.height - 1), self.chain_id, self.height - 1,
                              self.parent_id, block.last_commit, self.known_precommits)
            verify_block_evidence(block, self.chain_id, self.app.validator_set, self.committed_evidence)
        except InvalidBlock:
            self.dropped["invalid block"] += 1
            return False
        if not self.app.validate(block):
            self.dropped["invalid block"] += 1
            return False
        return True

    def _make_commit(self, round: Round, block_id: BlockId) -> Commit:
        votes = self.log.get_votes(PRECOMMIT, round).get_votes_for(block_id)
        sigs = tuple(CommitSig(validator=v, sig=votes[v].sig) for v in self.validators if v in votes)
        return Commit(height=self.height, round=round, block_id=block_id, sigs=sigs)

    def _decide(self, block: Block, block_id: BlockId, commit: Commit, out: list[Effect]) -> None:
        self.current_step = Step.DECIDED
        self.decisions[self.height] = Decision(block=block, commit=commit)
        self.decisions.pop(self.height - KEPT_DECISIONS, None)
        for ev in block.evidence:
            key = compute_evidence_key(ev)
            self.pending_evidence.pop(key, None)
            self.committed_evidence[key] = ev.height
        for key in [k for k, h in self.committed_evidence.items() if h + EVIDENCE_MAX_AGE < self.height]:
            del self.committed_evidence[key]
        out.append(CommitBlock(block=block, commit=commit, equivocators=get_equivocators(block)))
