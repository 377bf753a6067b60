"""Allocation rules (DESIGN §5): independent markets, mean, rounding to basis points."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance import GovernanceError, NoCountedBallot, allocate, compute_independent_markets, compute_shares
from governance.allocation import compute_basis_points

from .ballots import TOTAL, ballot, phantom_medians

IM = "independent_markets"


def weighted_ballots(n_categories, max_voters=5, max_weight=4, step=1):
    row = st.tuples(ballot(n_categories, step), st.integers(1, max_weight))
    return st.lists(row, min_size=1, max_size=max_voters)


def as_inputs(rows):
    ballots = {f"v{i}": b for i, (b, _) in enumerate(rows)}
    weights = {f"v{i}": w for i, (_, w) in enumerate(rows)}
    return ballots, weights


# --- rounding ---------------------------------------------------------------------

def test_basis_points_give_leftover_units_to_largest_remainders():
    shares = [Fraction(10_000, 3)] * 2 + [Fraction(10_000, 3)]
    assert compute_basis_points(shares) == [3334, 3333, 3333]


def test_basis_points_ties_go_to_the_lower_index():
    shares = [Fraction(5001, 2), Fraction(4999, 2), Fraction(5001, 2), Fraction(4999, 2)]
    result = compute_basis_points(shares)
    # all four remainders are 1/2 and two units are left: indices 0 and 1 get them
    assert result == [2501, 2500, 2500, 2499]


def test_basis_points_prefer_larger_remainder_over_index():
    shares = [Fraction(1000), Fraction(29999, 10), Fraction(60001, 10)]
    assert compute_basis_points(shares) == [1000, 3000, 6000]


def test_invalid_basis_points_of_shares_not_summing_to_total():
    with pytest.raises(RuntimeError):
        compute_basis_points([Fraction(1), Fraction(2)])


# --- mean -------------------------------------------------------------------------

def test_mean_is_the_weighted_average():
    shares = compute_shares("mean", {"a": [10_000, 0], "b": [0, 10_000]}, {"a": 3, "b": 1}, 2)
    assert shares == [7500, 2500]


def test_mean_rounds_by_largest_remainder():
    ballots = {"a": [10_000, 0, 0], "b": [0, 10_000, 0], "c": [0, 0, 10_000]}
    assert allocate("mean", ballots, dict.fromkeys(ballots, 1), 3) == [3334, 3333, 3333]


# --- independent markets: worked examples ----------------------------------------

def test_im_single_voter_gets_their_ballot():
    assert allocate(IM, {"a": [4000, 1000, 1000, 2000, 1000, 1000]}, {"a": 7}, 6) == [
        4000, 1000, 1000, 2000, 1000, 1000]


def test_im_unanimity():
    b = [1234, 5678, 3088]
    assert allocate(IM, {"a": b, "b": b, "c": b}, {"a": 1, "b": 5, "c": 2}, 3) == b


def test_im_two_voters_two_categories_is_the_phantom_median():
    # n=2, phantoms at min(1,2t), min(1,t), 0: medians 0.5 and 0.5 at t = 1/2.
    shares, t = compute_independent_markets([([6000, 4000], 1), ([2000, 8000], 1)], 2)
    assert shares == [5000, 5000]
    assert t == 5000


def test_im_is_not_the_mean():
    # Proportional but not the mean: the mean would be [4000, 6000].
    assert allocate(IM, {"a": [6000, 4000], "b": [2000, 8000]}, {"a": 1, "b": 1}, 2) == [5000, 5000]


def test_im_single_minded_three_way():
    ballots = {"a": [10_000, 0, 0], "b": [0, 10_000, 0], "c": [0, 0, 10_000]}
    assert allocate(IM, ballots, {"a": 1, "b": 1, "c": 2}, 3) == [2500, 2500, 5000]


def test_im_weightless_ballots_do_not_count():
    ballots = {"a": [10_000, 0], "b": [0, 10_000]}
    assert allocate(IM, ballots, {"a": 0, "b": 4}, 2) == [0, 10_000]


def test_im_huge_contribution_weights_are_exact():
    ballots = {"a": [7000, 3000], "b": [1000, 9000], "c": [5000, 5000]}
    weights = {"a": 10**15, "b": 10**15 + 1, "c": 3}
    shares = compute_shares(IM, ballots, weights, 2)
    assert sum(shares) == TOTAL
    assert allocate(IM, ballots, weights, 2) == compute_basis_points(shares)


# --- independent markets: properties ----------------------------------------------

@given(st.integers(1, 6).flatmap(lambda m: st.tuples(st.just(m), weighted_ballots(m))))
def test_im_matches_the_phantom_definition_literally(case):
    n_categories, rows = case
    shares, t = compute_independent_markets(rows, n_categories)
    assert phantom_medians(rows, n_categories, t) == shares
    assert sum(shares) == TOTAL


@given(st.integers(2, 6).flatmap(lambda m: st.tuples(st.just(m), weighted_ballots(m, max_voters=7, step=2500))))
def test_im_matches_the_phantom_definition_with_many_ties(case):
    # A coarse grid makes equal values and equal breakpoints across categories common.
    n_categories, rows = case
    shares, t = compute_independent_markets(rows, n_categories)
    assert phantom_medians(rows, n_categories, t) == shares


@given(st.integers(1, 10).flatmap(lambda m: st.tuples(st.just(m), weighted_ballots(m, max_voters=12,
                                                                                      max_weight=10**6))),
       st.sampled_from([IM, "mean"]))
def test_output_sums_to_10000_in_integer_bp(case, rule):
    n_categories, rows = case
    ballots, weights = as_inputs(rows)
    result = allocate(rule, ballots, weights, n_categories)
    assert sum(result) == TOTAL
    assert all(type(bp) is int and 0 <= bp <= TOTAL for bp in result)


@given(st.integers(2, 5).flatmap(lambda m: st.tuples(st.just(m), weighted_ballots(m, max_voters=4, max_weight=5))),
       st.sampled_from([IM, "mean"]))
def test_integer_weights_equal_replication(case, rule):
    n_categories, rows = case
    ballots, weights = as_inputs(rows)
    replicated = {f"v{i}-{k}": b for i, (b, w) in enumerate(rows) for k in range(w)}
    exact = compute_shares(rule, ballots, weights, n_categories)
    assert exact == compute_shares(rule, replicated, dict.fromkeys(replicated, 1), n_categories)
    assert allocate(rule, ballots, weights, n_categories) == allocate(
        rule, replicated, dict.fromkeys(replicated, 1), n_categories)


@given(st.integers(1, 8).flatmap(
    lambda m: st.tuples(st.just(m), st.lists(st.tuples(st.integers(0, m - 1), st.integers(1, 10**4)),
                                             min_size=1, max_size=20))))
def test_im_is_proportional_for_single_minded_voters(case):
    n_categories, picks = case
    ballots = {f"v{i}": [TOTAL if j == pick else 0 for j in range(n_categories)]
               for i, (pick, _) in enumerate(picks)}
    weights = {f"v{i}": w for i, (_, w) in enumerate(picks)}
    total = sum(weights.values())
    support = [sum(w for pick, w in picks if pick == j) for j in range(n_categories)]
    proportional = [Fraction(TOTAL * s, total) for s in support]
    assert compute_shares(IM, ballots, weights, n_categories) == proportional
    result = allocate(IM, ballots, weights, n_categories)
    assert result == compute_basis_points(proportional)
    assert all(abs(bp - share) < 1 for bp, share in zip(result, proportional))


@given(st.integers(2, 5).flatmap(lambda m: st.tuples(st.just(m), weighted_ballots(m))),
       st.randoms(use_true_random=False))
def test_result_does_not_depend_on_voter_names_or_order(case, rnd):
    n_categories, rows = case
    ballots, weights = as_inputs(rows)
    names = list(ballots)
    renamed = names[:]
    rnd.shuffle(renamed)
    mapping = dict(zip(names, renamed))
    for rule in (IM, "mean"):
        assert allocate(rule, {mapping[v]: b for v, b in ballots.items()},
                        {mapping[v]: w for v, w in weights.items()}, n_categories) == allocate(
            rule, ballots, weights, n_categories)


# --- invalid input -------------------------------------------------------------------

@pytest.mark.parametrize("bad, message", [
    ([5000, 5001], "sums to 10001"),
    ([10_000], "1 values for 2 categories"),
    ([10_000, 0, 0], "3 values for 2 categories"),
    ([12_000, -2000], "integers >= 0"),
    ([5000.0, 5000], "integers >= 0"),
])
def test_invalid_ballot(bad, message):
    with pytest.raises(GovernanceError, match=message):
        allocate(IM, {"a": bad}, {"a": 1}, 2)


def test_invalid_no_counted_ballot():
    with pytest.raises(NoCountedBallot):
        allocate(IM, {"a": [10_000]}, {"a": 0}, 1)
    with pytest.raises(NoCountedBallot):
        allocate("mean", {}, {}, 3)


@pytest.mark.parametrize("rule, ballots, weights, n_categories, message", [
    ("median", {"a": [10_000]}, {"a": 1}, 1, "unknown allocation rule 'median'"),
    (IM, {"a": [10_000]}, {}, 1, "has no weight"),
    (IM, {}, {}, 0, "n_categories"),
], ids=["rule", "ballot_without_weight", "number_of_categories"])
def test_invalid_allocation_input(rule, ballots, weights, n_categories, message):
    with pytest.raises(GovernanceError, match=message):
        allocate(rule, ballots, weights, n_categories)
