"""consensus/events.py: the one mapping of a consensus message to its engine input."""

from __future__ import annotations

import pytest

from consensus.block import Commit
from consensus.events import DecisionMsg, EvidenceMsg, ProposalMsg, VoteMsg, as_input
from consensus.messages import CONSENSUS_MESSAGES, Decision
from consensus.privval import INITIAL_SIGN_STATE
from consensus.vote import PREVOTE, make_duplicate_vote
from tests.unit.consensus.harness import KEYS, make_block, signed_proposal, signed_vote

BLOCK = make_block(1, None, KEYS[1].public)
VOTE = signed_vote(KEYS[1], PREVOTE, 1, 0, None)
MESSAGES = [
    (signed_proposal(KEYS[1], 1, 0, BLOCK), ProposalMsg),
    (VOTE, VoteMsg),
    (make_duplicate_vote(VOTE, signed_vote(KEYS[1], PREVOTE, 1, 0, bytes(32))), EvidenceMsg),
    (Decision(block=BLOCK, commit=Commit(height=1, round=0, block_id=bytes(32), sigs=())), DecisionMsg),
]


@pytest.mark.parametrize("msg, kind", MESSAGES, ids=lambda v: getattr(v, "TAG", getattr(v, "__name__", "")))
def test_as_input_wraps_each_consensus_message(msg, kind):
    inp = as_input(msg)
    assert type(inp) is kind and inp == kind(msg)


def test_as_input_covers_every_consensus_message():
    assert {type(msg) for msg, _ in MESSAGES} == set(CONSENSUS_MESSAGES)


def test_invalid_as_input_of_a_non_consensus_message():
    with pytest.raises(TypeError, match="not a consensus message: SignState"):
        as_input(INITIAL_SIGN_STATE)
