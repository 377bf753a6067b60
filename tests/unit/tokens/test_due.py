"""get_next_due_ms: when an empty block would next run a time-driven rule (docs/cadence.md)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from tokens import layout as L
from tokens import txs as T
from tokens.due import DUE_NOW_MS, compute_settle_time_s, get_next_due_ms, is_due
from tests.unit.tokens.commune import VALIDATORS, Chain, cosign, make_genesis

# What an empty block writes when nothing is due: the clock, the height, the state
# hash and its tree nodes, and the settled-until mark.
CLOCK_KEYS = {L.META_HEIGHT, L.META_TIME, L.META_STATE_HASH, L.META_SETTLED}


def is_work(result) -> bool:
    """True iff the block ran a rule: an event, or a write beyond the clock."""
    return bool(result.events) or any(k not in CLOCK_KEYS and not k.startswith(L.TREE) for k in result.writes)


def fresh_chain(**params) -> tuple[Chain, list]:
    genesis, keys = make_genesis(params=params)
    chain = Chain(genesis)
    chain.block()
    return chain, keys


def test_idle_chain_is_due_only_at_the_next_epoch():
    chain, _ = fresh_chain()
    due = get_next_due_ms(chain.kv)
    epoch_s = chain.genesis.params["allocation_epoch_s"]
    assert due == (chain.time_s // epoch_s + 1) * epoch_s * 1000
    assert not is_due(chain.kv, due - 1) and is_due(chain.kv, due)


def test_a_reading_makes_its_interval_due_at_end_plus_grace():
    chain, keys = fresh_chain()
    interval, grace = chain.genesis.params["settlement_interval_s"], chain.genesis.params["settlement_grace_s"]
    chain.block([chain.reading(keys[0], 0, 1, chain.time_s, 1000, 0)])
    chain.block([chain.reading(keys[0], 0, 2, chain.time_s + 1, 1002, 1)])
    end = (chain.time_s // interval + 1) * interval
    assert get_next_due_ms(chain.kv) == (end + grace) * 1000
    result = chain.block(at=end + grace - 1)
    assert not is_work(result)
    result = chain.block(at=end + grace)
    assert any(type(e).__name__ == "Settled" for e in result.events)


def test_settle_time_of_an_unaligned_end_is_the_next_boundary():
    assert compute_settle_time_s(1800, 1800, 300) == 2100
    assert compute_settle_time_s(1801, 1800, 300) == 3900


def test_a_proposal_is_due_at_the_end_of_its_window():
    chain, keys = fresh_chain()
    end = chain.time_s + 600
    chain.block([chain.tx(T.Propose, keys[0], param="levy_bp", value=json.dumps(1500), voting_end=end)])
    assert get_next_due_ms(chain.kv) == end * 1000
    assert any(type(e).__name__ == "ProposalTallied" for e in chain.block(at=end).events)


def test_a_validator_set_change_is_due_now_until_it_takes_effect():
    chain, _ = fresh_chain()
    newcomer = VALIDATORS[3]
    tx = T.ValidatorSetChange(nonce=1, add=(), add_addrs=(), remove=(newcomer.public,), sigs=())
    chain.block([cosign(chain.genesis, tx, VALIDATORS[:3])])
    assert get_next_due_ms(chain.kv) == DUE_NOW_MS
    chain.block()
    assert get_next_due_ms(chain.kv) != DUE_NOW_MS


actions = st.lists(st.tuples(st.sampled_from(["reading", "offer", "propose", "idle"]),
                             st.integers(1, 7200)), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions)
def test_property_empty_blocks_do_nothing_before_due_and_work_at_due(steps):
    """Whatever the history, an empty block before the due time changes nothing but the
    clock, and one at the due time runs a rule."""
    chain, keys = fresh_chain(history_retention_s=7200)
    seq, imp = 0, 0
    for kind, dt in steps:
        txs = []
        if kind == "reading":
            seq, imp = seq + 1, imp + dt
            txs = [chain.reading(keys[0], 0, seq, chain.time_s + dt, imp, 0)]
        elif kind == "offer":
            txs = [chain.tx(T.Offer, keys[1], give_cls="kwh", give_amount=1, want_cls="hour", want_amount=1,
                            counterparty=None, expires=chain.time_s + dt + 1)]
        elif kind == "propose":
            txs = [chain.tx(T.Propose, keys[1], param="levy_bp", value="1200", voting_end=chain.time_s + dt + 1)]
        chain.block(txs, dt_s=dt)
    due = get_next_due_ms(chain.kv)
    assert due is not None      # the epoch always comes
    due_s = -(-due // 1000)
    if due_s > chain.time_s + 1:
        assert not is_work(chain.block(at=due_s - 1))
    assert is_work(chain.block(at=max(due_s, chain.time_s + 1)))
