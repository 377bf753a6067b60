"""Proposal tallies (DESIGN §5): quorum, threshold, liquid weights."""

from __future__ import annotations

import pytest

from governance import GovernanceError, tally_proposal
from governance.proposals import is_quorum_met, is_threshold_met

W5 = dict.fromkeys("abcde", 1)


def test_counts_each_choice_with_delegated_weight():
    tally = tally_proposal({"a": "yes", "b": "no", "c": "abstain"}, W5,
                           {"d": {"params": "a"}, "e": {"*": "b"}}, 5, 2000, 5000)
    assert (tally.yes, tally.no, tally.abstain) == (2, 2, 1)
    assert tally.participation_bp == 10_000
    assert tally.effective_weight == {"a": 2, "b": 2, "c": 1}
    assert tally.passed is False              # 2/4 is not > 50 %


def test_passes_with_quorum_and_majority():
    tally = tally_proposal({"a": "yes"}, W5, {"b": {"*": "a"}}, 5, 2000, 5000)
    assert (tally.yes, tally.no, tally.participation_bp, tally.passed) == (2, 0, 4000, True)


def test_quorum_is_inclusive():
    # participation × 10 000 >= quorum_bp × total: 1 × 10 000 >= 2000 × 5
    assert tally_proposal({"a": "yes"}, W5, {}, 5, 2000, 5000).passed is True
    assert tally_proposal({"a": "yes"}, W5, {}, 5, 2001, 5000).passed is False


def test_threshold_is_strict():
    votes = {"a": "yes", "b": "no"}
    assert tally_proposal(votes, W5, {}, 5, 0, 5000).passed is False
    assert tally_proposal(votes, W5, {}, 5, 0, 4999).passed is True


def test_abstain_counts_for_quorum_not_for_threshold():
    votes = {"a": "yes", "b": "abstain", "c": "abstain"}
    tally = tally_proposal(votes, W5, {}, 5, 6000, 9000)
    assert tally.participation_bp == 6000
    assert tally.passed is True              # 1 yes, 0 no: 100 % > 90 %


def test_only_abstentions_do_not_pass():
    tally = tally_proposal({"a": "abstain"}, W5, {}, 5, 0, 0)
    assert (tally.abstain, tally.passed) == (1, False)


def test_weight_lost_in_a_loop_is_not_participation():
    delegations = {"b": {"*": "c"}, "c": {"*": "b"}}
    tally = tally_proposal({"a": "yes"}, W5, delegations, 5, 4000, 5000)
    assert tally.participation_bp == 2000
    assert tally.passed is False


def test_allocation_delegation_does_not_vote_on_params():
    tally = tally_proposal({"a": "yes"}, W5, {"b": {"allocation": "a"}}, 5, 0, 5000)
    assert tally.effective_weight == {"a": 1}


def test_total_weight_can_exceed_the_voters_given():
    tally = tally_proposal({"a": "yes"}, {"a": 1}, {}, 10, 1000, 5000)
    assert (tally.participation_bp, tally.passed) == (1000, True)


def test_predicates():
    assert is_quorum_met(20, 100, 2000) and not is_quorum_met(19, 100, 2000)
    assert is_threshold_met(6, 4, 5000) and not is_threshold_met(5, 5, 5000)
    assert not is_threshold_met(0, 0, 0)


@pytest.mark.parametrize("votes, weights, total_weight, message", [
    ({"a": "maybe"}, W5, 5, "expected yes, no or abstain"),
    ({"a": "yes"}, {"a": 3}, 2, "total weight"),
    ({"z": "yes"}, W5, 5, "unknown voter"),
], ids=["choice", "total_weight_below_participation", "vote_from_unknown_voter"])
def test_invalid_tally_input(votes, weights, total_weight, message):
    with pytest.raises(GovernanceError, match=message):
        tally_proposal(votes, weights, {}, total_weight, 2000, 5000)


@pytest.mark.parametrize("quorum, threshold", [(-1, 5000), (2000, 10_001), (2000.0, 5000)])
def test_invalid_basis_points(quorum, threshold):
    with pytest.raises(GovernanceError, match="from 0 to 10000"):
        tally_proposal({}, W5, {}, 5, quorum, threshold)
