"""Algorithm 1 rule by rule on one engine (validator 0 of 4) fed crafted messages,
plus bad remote input, restarts and validator-set changes."""

import dataclasses

import pytest
from hypothesis import given, strategies as st

from consensus.block import ZERO_ID, compute_block_id, verify_commit
from consensus.engine import Engine
from consensus.events import (
    T_PRECOMMIT, T_PREVOTE, T_PROPOSE, T_WAIT, Broadcast, CommitBlock, DecisionMsg, EngineConfig,
    EvidenceMsg, PersistBeforeSign, ProposalMsg, ScheduleTimeout, Start, Timeout, ValueReady, VoteMsg,
)
from consensus.messages import Decision, Proposal
from consensus.privval import INITIAL_SIGN_STATE
from consensus.vote import PRECOMMIT, PREVOTE, Vote, make_duplicate_vote
from tests.unit.consensus.harness import (
    CHAIN, KEYS, OTHER_CHAIN, OUTSIDER, Net, ToyApp, make_block, publics, signed_proposal, signed_vote,
)

V = publics(4)


def solo(sign_state=INITIAL_SIGN_STATE, ready=True, sets=None, height=1, last_commit=None):
    app = ToyApp(KEYS[0].public, sets or (lambda h: V))
    engine = Engine(CHAIN, KEYS[0], app, EngineConfig(), sign_state)
    effects = engine.step(Start(height, last_commit, ready))
    return engine, app, effects


def snapshot(e: Engine):
    log = e.log
    return (e.height, e.round, e.current_step, e.locked_round, e.locked_id, e.valid_round, e.valid_id,
            {r: vs.counts for r, vs in log.prevotes.items()}, {r: vs.counts for r, vs in log.precommits.items()},
            {r: sorted(p) for r, p in log.proposals.items()}, {r: set(s) for r, s in log.senders.items()},
            e.sign_state, len(e.future), sorted(e.pending_evidence))


def own_votes(effects, kind=None):
    return [e.message for e in effects if isinstance(e, Broadcast) and isinstance(e.message, Vote)
            and e.message.validator == KEYS[0].public and (kind is None or e.message.kind == kind)]


def proposal_for(height=1, round=0, proposer=None, pol_round=-1, salt=0, last_commit=None):
    key = proposer or KEYS[(height + round) % 4]
    block = make_block(height, last_commit, key.public, round=round, salt=salt)
    return signed_proposal(key, height, round, block, pol_round), compute_block_id(block)


def feed_votes(engine, kind, round, block_id, voters, height=1):
    out = []
    for i in voters:
        out += engine.step(VoteMsg(signed_vote(KEYS[i], kind, height, round, block_id)))
    return out


# ---- schedule and rotation ---------------------------------------------------

def test_timeouts_of_design():
    cfg = EngineConfig()
    assert [cfg.get_timeout_ms(T_PROPOSE, r) for r in range(3)] == [1000, 1500, 2000]
    assert [cfg.get_timeout_ms(T_PREVOTE, r) for r in range(3)] == [500, 1000, 1500]
    assert [cfg.get_timeout_ms(T_PRECOMMIT, r) for r in range(3)] == [500, 1000, 1500]
    assert cfg.get_timeout_ms(T_WAIT, 0) == 10_000


def test_proposer_rotation():
    engine, _, _ = solo()
    assert [engine.get_proposer(r) for r in range(5)] == [V[1], V[2], V[3], V[0], V[1]]


def test_start_schedules_propose_timeout_for_a_non_proposer():
    _, _, effects = solo()
    assert ScheduleTimeout(1, 0, T_PROPOSE, 1000) in effects
    assert not any(isinstance(e, Broadcast) and isinstance(e.message, Proposal) for e in effects)


def test_proposer_persists_then_broadcasts_its_proposal():
    _, app2, effects = solo(height=4)                       # proposer(4, 0) = V[0]
    kinds = [type(e) for e in effects]
    i = kinds.index(PersistBeforeSign)
    assert isinstance(effects[i + 1], Broadcast) and isinstance(effects[i + 1].message, Proposal)
    assert app2.proposed == [(4, 0, ())]


# ---- lines 22, 28, 36, 44, 47, 49, 55 -----------------------------------------

def test_line_22_prevotes_a_valid_proposal():
    engine, _, _ = solo()
    p, bid = proposal_for()
    effects = engine.step(ProposalMsg(p))
    assert [v.block_id for v in own_votes(effects, PREVOTE)] == [bid]
    assert engine.get_step_name() == "prevote"


def test_the_sign_record_keeps_the_signing_step_numbers():
    engine, _, _ = solo()
    p, bid = proposal_for()
    effects = engine.step(ProposalMsg(p)) + feed_votes(engine, PREVOTE, 0, bid, [1, 2])
    persisted = [e.state for e in effects if isinstance(e, PersistBeforeSign)]
    # sign_state.bin numbers: 2 for the prevote, 3 for the precommit on the polka.
    assert [(r.height, r.round, r.step) for r in persisted] == [(1, 0, 2), (1, 0, 3)]


# "stale": DESIGN §6 lower bound on a fresh proposal's time (consensus/block.py check_block_lag).
@pytest.mark.parametrize("refusal", ["rejected", "stale"], ids=["invalid", "too_far_behind_the_clock"])
def test_line_22_prevotes_nil_for_a_refused_proposal(refusal):
    engine, app, _ = solo()
    p, bid = proposal_for()
    getattr(app, refusal).add(p.block.header.tx_root)
    effects = engine.step(ProposalMsg(p))
    assert [v.block_id for v in own_votes(effects, PREVOTE)] == [None]


def test_line_28_prevotes_a_value_with_a_polka_however_old_its_time():
    # Its time was judged when it was fresh; judging it again could lock the height forever.
    engine, app, _ = solo()
    engine.step(Timeout(1, 0, T_PROPOSE))
    p, bid = proposal_for(round=0)
    feed_votes(engine, PREVOTE, 0, bid, [1, 2, 3])
    feed_votes(engine, PRECOMMIT, 0, None, [1, 2])
    engine.step(Timeout(1, 0, T_PRECOMMIT))
    app.stale.add(p.block.header.tx_root)
    effects = engine.step(ProposalMsg(signed_proposal(KEYS[2], 1, 1, p.block, pol_round=0)))
    assert [v.block_id for v in own_votes(effects, PREVOTE)] == [bid]


def lock_in_round_0_then_start_round_1(engine):
    """Validator 0 locks on round 0's proposal, then round 0 ends without a decision."""
    p0, bid0 = proposal_for()
    engine.step(ProposalMsg(p0))
    feed_votes(engine, PREVOTE, 0, bid0, [1, 2])             # locked on bid0 at round 0
    feed_votes(engine, PRECOMMIT, 0, None, [1, 2])
    engine.step(Timeout(1, 0, T_PRECOMMIT))                  # line 47 timeout: round 1
    return p0, bid0


def test_line_22_a_locked_validator_prevotes_its_own_locked_value_however_old():
    engine, app, _ = solo()
    p0, bid0 = lock_in_round_0_then_start_round_1(engine)
    app.stale.add(p0.block.header.tx_root)
    effects = engine.step(ProposalMsg(signed_proposal(KEYS[2], 1, 1, p0.block)))
    assert [v.block_id for v in own_votes(effects, PREVOTE)] == [bid0]


def test_line_34_and_44_timeout_prevote_then_nil_polka():
    engine, _, _ = solo()
    engine.step(Timeout(1, 0, T_PROPOSE))                  # prevote nil on timeout
    feed_votes(engine, PREVOTE, 0, None, [1])
    effects = feed_votes(engine, PREVOTE, 0, bytes(range(32)), [2])
    assert ScheduleTimeout(1, 0, T_PREVOTE, 500) in effects   # 2f+1 prevotes of any kind
    assert own_votes(effects, PRECOMMIT) == []
    effects = feed_votes(engine, PREVOTE, 0, None, [3])        # 2f+1 nil prevotes
    assert [v.block_id for v in own_votes(effects, PRECOMMIT)] == [None]


def test_line_36_locks_and_precommits_on_a_polka():
    engine, _, _ = solo()
    p, bid = proposal_for()
    engine.step(ProposalMsg(p))
    effects = feed_votes(engine, PREVOTE, 0, bid, [1, 2])
    assert [v.block_id for v in own_votes(effects, PRECOMMIT)] == [bid]
    assert (engine.locked_round, engine.locked_id, engine.valid_round, engine.valid_id) == (0, bid, 0, bid)
    # The lock is in the record persisted before the precommit left.
    persisted = [e.state for e in effects if isinstance(e, PersistBeforeSign)][-1]
    assert (persisted.locked_round, persisted.locked_id) == (0, bid)


def test_locked_validator_prevotes_nil_for_another_value_then_follows_a_newer_polka():
    engine, _, _ = solo()
    lock_in_round_0_then_start_round_1(engine)
    assert engine.round == 1
    p1, bid1 = proposal_for(round=1, salt=1)
    effects = engine.step(ProposalMsg(p1))                   # line 22, locked elsewhere
    assert [v.block_id for v in own_votes(effects, PREVOTE)] == [None]
    feed_votes(engine, PREVOTE, 1, bid1, [1, 2, 3])          # a polka for bid1 at round 1
    feed_votes(engine, PRECOMMIT, 1, None, [1, 2])
    engine.step(Timeout(1, 1, T_PRECOMMIT))
    assert engine.round == 2 and engine.valid_round == 1 and engine.valid_id == bid1
    p2 = signed_proposal(KEYS[3], 1, 2, p1.block, pol_round=1)
    effects = engine.step(ProposalMsg(p2))                   # line 28: lockedRound 0 <= vr 1
    assert [v.block_id for v in own_votes(effects, PREVOTE)] == [bid1]


def test_line_28_waits_for_the_polka_of_pol_round():
    engine, _, _ = solo()
    engine.step(Timeout(1, 0, T_PROPOSE))
    feed_votes(engine, PREVOTE, 0, None, [1, 2])
    feed_votes(engine, PRECOMMIT, 0, None, [1, 2])
    engine.step(Timeout(1, 0, T_PRECOMMIT))
    p, bid = proposal_for(round=0)
    reproposal = signed_proposal(KEYS[2], 1, 1, p.block, pol_round=0)
    assert own_votes(engine.step(ProposalMsg(reproposal)), PREVOTE) == []
    # Algorithm 1 counts an equivocator's votes for each value, as gossip delivers them.
    effects = feed_votes(engine, PREVOTE, 0, bid, [1, 2, 3])
    assert [v.block_id for v in own_votes(effects, PREVOTE)] == [bid]


def test_line_49_decides_with_a_verifiable_commit():
    engine, _, _ = solo()
    p, bid = proposal_for()
    engine.step(ProposalMsg(p))
    feed_votes(engine, PREVOTE, 0, bid, [1, 2])
    effects = feed_votes(engine, PRECOMMIT, 0, bid, [1, 2])
    commits = [e for e in effects if isinstance(e, CommitBlock)]
    assert len(commits) == 1 and commits[0].block == p.block and commits[0].equivocators == ()
    verify_commit(V, CHAIN, 1, bid, commits[0].commit)
    assert engine.get_step_name() == "decided"


def test_line_49_decides_for_a_value_of_an_earlier_round():
    engine, _, _ = solo()
    p, bid = proposal_for()
    engine.step(ProposalMsg(p))
    feed_votes(engine, PRECOMMIT, 2, None, [1, 2])           # f+1 of round 2: skip there
    assert engine.round == 2
    effects = feed_votes(engine, PRECOMMIT, 0, bid, [1, 2, 3])
    assert any(isinstance(e, CommitBlock) and e.commit.round == 0 for e in effects)


def test_line_55_skips_to_a_round_with_f_plus_one_messages():
    engine, _, _ = solo()
    feed_votes(engine, PREVOTE, 5, None, [1])
    assert engine.round == 0
    effects = feed_votes(engine, PRECOMMIT, 5, None, [2])
    assert engine.round == 5
    assert ScheduleTimeout(1, 5, T_PROPOSE, 1000 + 500 * 5) in effects


def test_precommit_timeout_starts_the_next_round():
    engine, _, _ = solo()
    engine.step(Timeout(1, 0, T_PROPOSE))
    feed_votes(engine, PREVOTE, 0, None, [1, 2])
    effects = feed_votes(engine, PRECOMMIT, 0, None, [1, 2])
    assert ScheduleTimeout(1, 0, T_PRECOMMIT, 500) in effects
    engine.step(Timeout(1, 0, T_PRECOMMIT))
    assert (engine.round, engine.get_step_name()) == (1, "propose")


def test_stale_timeouts_are_ignored():
    engine, _, _ = solo()
    before = snapshot(engine)
    assert engine.step(Timeout(1, 3, T_PROPOSE)) == [] and engine.step(Timeout(9, 0, T_PREVOTE)) == []
    assert snapshot(engine) == before


# ---- heartbeat -----------------------------------------------------------------

def test_waits_for_a_value_or_the_idle_heartbeat():
    engine, app, effects = solo(ready=False, height=4)      # proposer of (4, 0)
    assert ScheduleTimeout(4, 0, T_WAIT, 10_000) in effects
    assert app.proposed == [] and engine.get_step_name() == "wait"
    engine.step(ValueReady(4))
    assert app.proposed == [(4, 0, ())]


def test_idle_timeout_proposes_an_empty_heartbeat_block():
    engine, app, _ = solo(ready=False, height=4)
    engine.step(Timeout(4, 0, T_WAIT))
    assert app.proposed == [(4, 0, ())]


def test_without_heartbeat_nothing_is_proposed_until_the_app_says_a_value_is_ready():
    app = ToyApp(KEYS[0].public, lambda h: V)
    engine = Engine(CHAIN, KEYS[0], app, EngineConfig(idle_ms=0), INITIAL_SIGN_STATE)
    effects = engine.step(Start(4, None, False))
    assert not any(isinstance(e, ScheduleTimeout) and e.step == T_WAIT for e in effects)
    assert app.proposed == [] and engine.get_step_name() == "wait"
    engine.step(ValueReady(4))                  # the node's due timer: a rule is due
    assert app.proposed == [(4, 0, ())]


def test_pending_evidence_ends_the_wait_without_heartbeat():
    app = ToyApp(KEYS[0].public, lambda h: V)
    engine = Engine(CHAIN, KEYS[0], app, EngineConfig(idle_ms=0), INITIAL_SIGN_STATE)
    engine.step(Start(4, None, False))
    a = signed_vote(KEYS[2], PREVOTE, 4, 0, b"\x01" * 32)
    b = signed_vote(KEYS[2], PREVOTE, 4, 0, b"\x02" * 32)
    engine.step(EvidenceMsg(make_duplicate_vote(a, b)))
    assert app.proposed and app.proposed[0][:2] == (4, 0) and len(app.proposed[0][2]) == 1


def test_a_peer_message_ends_the_wait():
    engine, _, _ = solo(ready=False)
    p, bid = proposal_for()
    effects = engine.step(ProposalMsg(p))
    assert [v.block_id for v in own_votes(effects, PREVOTE)] == [bid]


# ---- bad remote input: dropped, counted, state unchanged -------------------------

def _bad_inputs():
    p, bid = proposal_for()
    good_vote = signed_vote(KEYS[1], PREVOTE, 1, 0, bid)
    return [
        ("not a validator", VoteMsg(signed_vote(OUTSIDER, PREVOTE, 1, 0, bid))),
        ("bad signature", VoteMsg(dataclasses.replace(good_vote, block_id=None))),
        ("bad signature", VoteMsg(signed_vote(KEYS[1], PREVOTE, 1, 0, bid, chain_id=OTHER_CHAIN))),
        ("height too far ahead", VoteMsg(signed_vote(KEYS[1], PREVOTE, 10**9, 0, bid))),
        ("round too far ahead", VoteMsg(signed_vote(KEYS[1], PREVOTE, 1, 10**9, bid))),
        ("stale height", VoteMsg(signed_vote(KEYS[1], PREVOTE, 0, 0, bid))),
        ("wrong proposer", ProposalMsg(proposal_for(proposer=KEYS[2])[0])),
        ("bad pol_round", ProposalMsg(signed_proposal(KEYS[1], 1, 0, p.block, pol_round=0))),
        ("block height mismatch", ProposalMsg(signed_proposal(KEYS[1], 1, 0, make_block(2, None, V[1])))),
        ("bad signature", ProposalMsg(dataclasses.replace(p, pol_round=-1, sig=good_vote.sig))),
        ("bad evidence", EvidenceMsg(make_duplicate_vote(
            signed_vote(KEYS[1], PREVOTE, 1, 0, bid),
            dataclasses.replace(signed_vote(KEYS[1], PREVOTE, 1, 0, None), sig=good_vote.sig)))),
        ("evidence height out of range", EvidenceMsg(make_duplicate_vote(
            signed_vote(KEYS[1], PREVOTE, 5, 0, bid), signed_vote(KEYS[1], PREVOTE, 5, 0, None)))),
        ("bad decision", DecisionMsg(Decision(block=p.block, commit=_fake_commit(bid)))),
    ]


def _fake_commit(bid):
    from consensus.block import Commit, CommitSig
    vote = signed_vote(KEYS[1], PRECOMMIT, 1, 0, bid)
    return Commit(height=1, round=0, block_id=bid, sigs=(CommitSig(validator=V[1], sig=vote.sig),))


@pytest.mark.parametrize("reason,inp", _bad_inputs(), ids=[r for r, _ in _bad_inputs()])
def test_invalid_remote_input_is_dropped_and_counted(reason, inp):
    engine, _, _ = solo()
    before = snapshot(engine)
    effects = engine.step(inp)
    assert engine.dropped[reason] == 1
    assert snapshot(engine) == before
    assert not any(isinstance(e, (Broadcast, CommitBlock, PersistBeforeSign)) for e in effects)


def test_invalid_duplicate_vote_is_dropped():
    engine, _, _ = solo()
    vote = signed_vote(KEYS[1], PREVOTE, 1, 0, None)
    engine.step(VoteMsg(vote))
    before = snapshot(engine)
    engine.step(VoteMsg(vote))
    assert engine.dropped["duplicate"] == 1 and snapshot(engine) == before


def test_input_before_start_is_dropped():
    engine = Engine(CHAIN, KEYS[0], ToyApp(KEYS[0].public, lambda h: V))
    assert engine.step(VoteMsg(signed_vote(KEYS[1], PREVOTE, 1, 0, None))) == []
    assert engine.dropped["not started"] == 1


def test_next_height_messages_are_buffered_and_replayed():
    engine, _, _ = solo()
    engine.step(VoteMsg(signed_vote(KEYS[1], PREVOTE, 2, 0, None)))
    assert len(engine.future) == 1
    engine.step(Start(2, _fake_commit(bytes(32)), True))
    assert engine.log.prevotes[0].counts == {None: 1}


def test_invalid_future_buffer_is_bounded():
    engine = Engine(CHAIN, KEYS[0], ToyApp(KEYS[0].public, lambda h: V), EngineConfig(future_buffer=2))
    engine.step(Start(1, None, True))
    for r in range(3):
        engine.step(VoteMsg(signed_vote(KEYS[1], PREVOTE, 2, r, None)))
    assert len(engine.future) == 2 and engine.dropped["future buffer full"] == 1


# ---- evidence --------------------------------------------------------------------

def test_conflicting_votes_become_evidence_that_the_next_proposer_includes():
    engine, app, _ = solo(height=3)                         # proposer of (3, 1) is V[0]
    a = signed_vote(KEYS[2], PREVOTE, 3, 0, None)
    b = signed_vote(KEYS[2], PREVOTE, 3, 0, bytes(range(32)))
    engine.step(VoteMsg(a))
    effects = engine.step(VoteMsg(b))
    ev = make_duplicate_vote(a, b)
    assert Broadcast(ev) in effects and list(engine.pending_evidence.values()) == [ev]
    engine.step(Timeout(3, 0, T_PROPOSE))
    feed_votes(engine, PREVOTE, 0, None, [1, 3], height=3)
    feed_votes(engine, PRECOMMIT, 0, None, [1, 3], height=3)
    effects = engine.step(Timeout(3, 0, T_PRECOMMIT))
    assert app.proposed[-1] == (3, 1, (ev,))


def test_commit_reports_the_equivocators():
    net = Net(4)
    a = signed_vote(KEYS[3], PRECOMMIT, 1, 0, None)
    b = signed_vote(KEYS[3], PRECOMMIT, 1, 0, bytes(range(32)))
    ev = make_duplicate_vote(a, b)
    net.start()
    for e in net.engines:
        e.step(EvidenceMsg(ev))
    net.run_heights(3)
    convicted = [c.equivocators for c in net.commits[0]]
    assert (KEYS[3].public,) in convicted
    assert sum(1 for c in net.commits[0] for _ in c.block.evidence) == 1
    assert all(not e.pending_evidence for e in net.engines)


# ---- restarts and double-sign protection -------------------------------------------

def test_restart_mid_round_refuses_to_sign_a_conflicting_vote():
    engine, _, _ = solo()
    p, bid = proposal_for()
    effects = engine.step(ProposalMsg(p))                     # prevote bid at (1, 0)
    record = [e.state for e in effects if isinstance(e, PersistBeforeSign)][-1]
    restarted, _, effects = solo(sign_state=record)
    assert restarted.round == 0
    effects = restarted.step(Timeout(1, 0, T_PROPOSE))         # would prevote nil: refused
    assert own_votes(effects) == [] and restarted.refused_signs == 1
    effects = restarted.step(ProposalMsg(p))                  # would prevote nil? no: step moved on
    assert own_votes(effects) == []


def test_restart_re_signs_only_the_same_vote():
    engine, _, _ = solo()
    p, bid = proposal_for()
    effects = engine.step(ProposalMsg(p))
    sent = own_votes(effects)[0]
    record = [e.state for e in effects if isinstance(e, PersistBeforeSign)][-1]
    restarted, _, _ = solo(sign_state=record)
    effects = restarted.step(ProposalMsg(p))
    assert own_votes(effects) == [sent]


def test_restart_keeps_the_lock_and_round():
    engine, _, _ = solo()
    p, bid = proposal_for()
    engine.step(ProposalMsg(p))
    feed_votes(engine, PRECOMMIT, 2, None, [1, 2])           # skip to round 2
    p2, bid2 = proposal_for(round=2, salt=2)
    engine.step(ProposalMsg(p2))
    effects = feed_votes(engine, PREVOTE, 2, bid2, [1, 2])
    record = [e.state for e in effects if isinstance(e, PersistBeforeSign)][-1]
    restarted, _, _ = solo(sign_state=record)
    assert (restarted.round, restarted.locked_round, restarted.locked_id) == (2, 2, bid2)


def test_every_own_broadcast_follows_its_persist():
    net = Net(4)
    net.start()
    net.run_heights(4)
    for i, effects in enumerate(net.effects):
        last_persisted = None
        for e in effects:
            if isinstance(e, PersistBeforeSign):
                last_persisted = e.state
            elif isinstance(e, Broadcast) and getattr(e.message, "validator", getattr(e.message, "proposer", None)) == V[i]:
                m = e.message
                assert last_persisted is not None
                assert (last_persisted.height, last_persisted.round) == (m.height, m.round)


# ---- whole network, validator-set changes, observers, lagging peers -----------------

def test_four_engines_agree():
    net = Net(4)
    net.start()
    net.run_heights(10)
    ids = [[c.commit.block_id for c in commits[:10]] for commits in net.commits]
    assert all(chain == ids[0] for chain in ids)
    assert net.commits[0][1].block.header.parent == ids[0][0]
    assert net.commits[0][0].block.header.parent == ZERO_ID


def test_a_decision_lets_a_lagging_engine_catch_up():
    net = Net(4)
    net.down = {3}
    net.start()
    net.run_heights(1)
    lagging = net.engines[3]
    block, commit = net.chain(0)[0]
    effects = lagging.step(DecisionMsg(Decision(block=block, commit=commit)))
    assert [e.block for e in effects if isinstance(e, CommitBlock)] == [block]


def test_validator_set_change_takes_effect_at_its_height():
    sets = lambda h: publics(4) if h < 3 else publics(3) + [KEYS[5].public]   # noqa: E731
    engine, _, _ = solo(sets=sets, height=3, last_commit=_fake_commit(bytes(32)))
    engine.step(VoteMsg(signed_vote(KEYS[3], PREVOTE, 3, 0, None)))
    assert engine.dropped["not a validator"] == 1
    engine.step(VoteMsg(signed_vote(KEYS[5], PREVOTE, 3, 0, None)))
    assert engine.log.prevotes[0].counts == {None: 1}


def test_network_through_a_validator_set_change():
    sets = lambda h: publics(4) if h < 3 else publics(5)   # noqa: E731
    net = Net(5, sets=sets)
    net.start()
    net.run_heights(6)
    ids = [[c.commit.block_id for c in commits[:6]] for commits in net.commits]
    assert all(chain == ids[0] for chain in ids)
    assert any(s.validator == V[0] for s in net.commits[0][5].commit.sigs)


def test_observer_follows_without_signing():
    net = Net(4)
    observer = Engine(CHAIN, None, ToyApp(bytes(32), lambda h: V))
    effects = observer.step(Start(1, None, True))
    net.start()
    net.run_heights(1)
    block, commit = net.chain(0)[0]
    p = signed_proposal(KEYS[1], 1, commit.round, block) if commit.round == 0 else None
    if p is not None:
        effects += observer.step(ProposalMsg(p))
    for s in commit.sigs:
        effects += observer.step(VoteMsg(Vote(kind=PRECOMMIT, height=1, round=commit.round,
                                              block_id=commit.block_id, validator=s.validator, sig=s.sig)))
    assert not any(isinstance(e, PersistBeforeSign) for e in effects)
    assert [e.block for e in effects if isinstance(e, CommitBlock)] == [block]


def test_engine_rejects_unknown_input_type():
    engine, _, _ = solo()
    with pytest.raises(TypeError):
        engine.step("not an input")


BIDS = [None, bytes(range(32)), bytes(range(1, 33))]
remote = st.tuples(st.sampled_from(["vote", "proposal", "evidence", "timeout"]), st.integers(0, 3),
                   st.integers(0, 3), st.integers(0, 4), st.sampled_from(BIDS), st.booleans())


@given(st.lists(remote, max_size=25))
def test_remote_input_never_raises(items):
    """Any mix of votes, proposals, evidence (well or badly signed, from validators or
    not, any height and round) and timeouts: no exception, state stays coherent."""
    engine, _, _ = solo()
    keys = KEYS[:4] + [OUTSIDER]
    for what, height, round, who, bid, good in items:
        key = keys[who]
        if what == "vote":
            vote = signed_vote(key, PREVOTE if round % 2 else PRECOMMIT, height, round, bid)
            engine.step(VoteMsg(vote if good else dataclasses.replace(vote, sig=bytes(64))))
        elif what == "proposal":
            block = make_block(max(height, 1), None, key.public, round=round)
            engine.step(ProposalMsg(signed_proposal(key, height, round, block, -1 if good else round - 1)))
        elif what == "evidence":
            a = signed_vote(key, PREVOTE, height, round, None)
            b = signed_vote(key, PREVOTE, height, round, bid if good else None)
            engine.step(EvidenceMsg(make_duplicate_vote(a, b)))
        else:
            engine.step(Timeout(height, round, [T_PROPOSE, T_PREVOTE, T_PRECOMMIT, T_WAIT][round]))
    assert engine.height >= 1 and engine.round >= 0
    assert engine.get_step_name() in ("propose", "prevote", "precommit", "decided")
