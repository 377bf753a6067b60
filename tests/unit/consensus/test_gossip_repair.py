"""The engine's gossip tick (``Engine._gossip``): what it re-sends, and when.

Own recent votes go out on every tick. Proposals (own or the round's) and the polka
are large and go out only when (height, round, step) has not moved since the
previous tick. A Decision for a height a peer was heard at after we decided it goes
out when we are stuck too, when the message was 2+ heights old, or when the height
was heard on two different ticks: a single late vote is routine.

Validator 0 of 4 is driven by hand with crafted messages, as in test_engine.py.
"""

from __future__ import annotations

from consensus.block import Commit, compute_block_id
from consensus.engine import Engine
from consensus.events import (
    T_GOSSIP, Broadcast, CommitBlock, EngineConfig, ProposalMsg, Start, Timeout, VoteMsg,
)
from consensus.messages import Decision, Proposal
from consensus.vote import PRECOMMIT, PREVOTE, Vote
from tests.unit.consensus.harness import CHAIN, KEYS, ToyApp, make_block, publics, signed_proposal, signed_vote

V = publics(4)
ME = KEYS[0].public


def engine_at(height: int = 1, last_commit: Commit | None = None) -> Engine:
    engine = Engine(CHAIN, KEYS[0], ToyApp(ME, lambda h: V), EngineConfig())
    engine.step(Start(height, last_commit, True))
    return engine


def tick(engine: Engine) -> list:
    """One gossip tick: the broadcast messages, in order."""
    effects = engine.step(Timeout(0, 0, T_GOSSIP))
    return [e.message for e in effects if isinstance(e, Broadcast)]


def proposals(msgs) -> list[Proposal]:
    return [m for m in msgs if isinstance(m, Proposal)]


def decisions(msgs) -> list[int]:
    return [m.block.header.height for m in msgs if isinstance(m, Decision)]


def votes_of(msgs, who: bytes) -> list[tuple[int, int, int]]:
    return [(m.height, m.round, m.kind) for m in msgs if isinstance(m, Vote) and m.validator == who]


def propose_from_peer(engine: Engine, height: int, last_commit: Commit | None = None) -> tuple[Proposal, bytes]:
    """The round-0 proposal of proposer(height, 0), fed to ``engine`` (it then prevotes)."""
    key = KEYS[height % 4]
    assert key.public != ME, "pick a height whose round-0 proposer is another validator"
    block = make_block(height, last_commit, key.public)
    p = signed_proposal(key, height, 0, block)
    engine.step(ProposalMsg(p))
    return p, compute_block_id(block)


def feed(engine: Engine, kind: int, height: int, block_id: bytes, voters=(1, 2)) -> list:
    out = []
    for i in voters:
        out += engine.step(VoteMsg(signed_vote(KEYS[i], kind, height, 0, block_id)))
    return out


def decide(engine: Engine, height: int, last_commit: Commit | None) -> Commit:
    """Drive ``engine`` through ``height`` with validators 1 and 2, then start the next."""
    _, block_id = propose_from_peer(engine, height, last_commit)
    feed(engine, PREVOTE, height, block_id)
    effects = feed(engine, PRECOMMIT, height, block_id)
    (commit,) = [e.commit for e in effects if isinstance(e, CommitBlock)]
    engine.step(Start(height + 1, commit, True))
    return commit


def late_vote(height: int, block_id: bytes | None = None, voter: int = 3) -> VoteMsg:
    """The slow validator's precommit for a height we already decided."""
    return VoteMsg(signed_vote(KEYS[voter], PRECOMMIT, height, 0, block_id))


# ---- votes every tick, proposals and polka only when stuck ------------------------

def test_a_tick_right_after_a_step_change_resends_votes_but_no_proposal():
    engine = engine_at(1)
    p, block_id = propose_from_peer(engine, 1)      # prevote step
    tick(engine)
    feed(engine, PREVOTE, 1, block_id)              # polka: precommit step
    msgs = tick(engine)
    assert votes_of(msgs, ME) == [(1, 0, PREVOTE), (1, 0, PRECOMMIT)]
    assert proposals(msgs) == []
    assert votes_of(msgs, KEYS[1].public) == []     # no polka relay either


def test_a_second_tick_with_no_progress_resends_the_proposal_and_the_polka():
    engine = engine_at(1)
    p, block_id = propose_from_peer(engine, 1)
    tick(engine)
    feed(engine, PREVOTE, 1, block_id)
    tick(engine)                                    # step changed since the tick before
    msgs = tick(engine)                             # nothing moved since
    assert proposals(msgs) == [p]
    assert votes_of(msgs, ME)[:2] == [(1, 0, PREVOTE), (1, 0, PRECOMMIT)]
    # The polka of the valid value: the prevotes of validators 1 and 2 (and ours).
    assert votes_of(msgs, KEYS[1].public) == votes_of(msgs, KEYS[2].public) == [(1, 0, PREVOTE)]
    # Still no progress: still re-sent.
    assert proposals(tick(engine)) == [p]


def test_own_proposal_waits_for_a_tick_without_progress():
    engine = engine_at(4)                           # proposer(4, 0) is validator 0
    assert engine.get_proposer(0) == ME
    first = tick(engine)
    assert votes_of(first, ME) == [(4, 0, PREVOTE)] and proposals(first) == []
    (own,) = proposals(tick(engine))
    assert (own.height, own.round, own.proposer) == (4, 0, ME)


def test_the_first_tick_of_a_new_height_sends_no_proposal():
    engine = engine_at(1)
    commit = decide(engine, 1, None)
    tick(engine)
    propose_from_peer(engine, 2, commit)            # height 2, prevote step
    msgs = tick(engine)
    assert proposals(msgs) == [] and votes_of(msgs, ME) == [(2, 0, PREVOTE)]


# ---- decisions for lagging peers ------------------------------------------------------

def heard_late_then_moving_on(engine: Engine):
    """Height 1 decided and ticked; a peer's late vote for height 1 arrives; height 2's
    proposal moves us on (prevote step). Returns (height 1's commit, height 2's block id)."""
    commit = decide(engine, 1, None)
    tick(engine)
    engine.step(late_vote(1, commit.block_id))
    _, block_id = propose_from_peer(engine, 2, commit)
    return commit, block_id


def test_one_late_vote_for_the_previous_height_sends_no_decision_while_progressing():
    engine = engine_at(1)
    heard_late_then_moving_on(engine)               # progress: prevote step
    assert decisions(tick(engine)) == []


def test_the_same_height_heard_again_on_a_later_tick_sends_its_decision():
    engine = engine_at(1)
    commit, block_id = heard_late_then_moving_on(engine)
    assert decisions(tick(engine)) == []
    engine.step(late_vote(1, commit.block_id))      # the peer is still at height 1
    feed(engine, PREVOTE, 2, block_id)              # progress again: precommit step
    msgs = tick(engine)
    assert decisions(msgs) == [1]
    (decision,) = [m for m in msgs if isinstance(m, Decision)]
    assert decision.commit == commit and compute_block_id(decision.block) == commit.block_id


def test_a_height_heard_before_but_not_since_the_last_tick_sends_nothing():
    engine = engine_at(1)
    _, block_id = heard_late_then_moving_on(engine)
    tick(engine)
    feed(engine, PREVOTE, 2, block_id)              # progress, and height 1 not heard
    assert decisions(tick(engine)) == []


def test_one_late_vote_sends_the_decision_when_the_engine_is_stuck_too():
    engine = engine_at(1)
    commit = decide(engine, 1, None)
    propose_from_peer(engine, 2, commit)
    tick(engine)
    engine.step(late_vote(1, commit.block_id))
    assert decisions(tick(engine)) == [1]           # nothing moved since the last tick


def test_a_vote_two_heights_old_sends_the_decision_on_the_next_tick():
    engine = engine_at(1)
    c1 = decide(engine, 1, None)
    c2 = decide(engine, 2, c1)                      # now at height 3, propose step
    assert engine.height == 3
    tick(engine)
    engine.step(late_vote(1, c1.block_id))
    propose_from_peer(engine, 3, c2)                # progressing
    msgs = tick(engine)
    assert decisions(msgs) == [1]
    (decision,) = [m for m in msgs if isinstance(m, Decision)]
    assert decision.commit == c1
    assert decisions(tick(engine)) == []            # answered once, not every tick


def test_a_late_vote_older_than_the_kept_decisions_is_not_answered():
    engine = engine_at(1)
    c1 = decide(engine, 1, None)
    c2 = decide(engine, 2, c1)
    decide(engine, 3, c2)                           # now at height 4: decision 1 dropped
    tick(engine)
    engine.step(late_vote(1, c1.block_id))
    assert engine.lagging == {}
    assert decisions(tick(engine)) == []
    assert decisions(tick(engine)) == []
