"""governance/rounding.py: the one largest-remainder rounding of settlement (DESIGN §4
step 3), the treasury epoch and the standing allocation (DESIGN §5)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance import compute_largest_remainder
from governance.allocation import compute_basis_points

from .ballots import TOTAL


def settlement_reference(amount, weights):
    """The settlement rule as DESIGN §4 states it, with exact fractions: floor of each
    consumer's exact share, then one unit each to the largest fractional parts, ties to
    the smallest address."""
    total = sum(w for _, w in weights)
    if total <= 0:
        return [0] * len(weights)
    exact = [Fraction(amount * w, total) for _, w in weights]
    parts = [math.floor(x) for x in exact]
    ranked = sorted(range(len(weights)), key=lambda i: (parts[i] - exact[i], weights[i][0]))
    for i in ranked[:amount - sum(parts)]:
        parts[i] += 1
    return parts


def allocation_reference(shares):
    """The allocation rule of DESIGN §5: floors of exact shares summing to 10 000, the
    leftover basis points to the largest fractional parts, ties to the lower index."""
    floors = [s.numerator // s.denominator for s in shares]
    for j in sorted(range(len(shares)), key=lambda j: (floors[j] - shares[j], j))[:TOTAL - sum(floors)]:
        floors[j] += 1
    return floors


weights_by_address = st.lists(st.tuples(st.binary(min_size=1, max_size=3), st.integers(0, 10**6)),
                              max_size=12, unique_by=lambda row: row[0])


@st.composite
def exact_shares(draw):
    """Fractions of basis points summing to exactly 10 000, as the allocation rules give."""
    raw = draw(st.lists(st.integers(0, 10**9), min_size=1, max_size=8).filter(any))
    return [Fraction(TOTAL * r, sum(raw)) for r in raw]


def test_largest_remainder_is_exact_and_ties_go_to_the_smallest_tiebreak():
    assert compute_largest_remainder(10, [(b"b", 1), (b"a", 1), (b"c", 1)]) == [3, 4, 3]
    assert compute_largest_remainder(7, [(b"x", 2), (b"y", 5)]) == [2, 5]
    assert compute_largest_remainder(0, [(b"x", 2)]) == [0]
    assert compute_largest_remainder(5, []) == []
    shares = compute_largest_remainder(1000, [(bytes([i]), i * 7 + 1) for i in range(13)])
    assert sum(shares) == 1000


def test_largest_remainder_prefers_a_larger_remainder_over_the_tiebreak():
    # 10·1/7 = 1.43 and 10·6/7 = 8.57: the unit left goes to "z", whose remainder is larger.
    assert compute_largest_remainder(10, [(b"a", 1), (b"z", 6)]) == [1, 9]


def test_largest_remainder_of_zero_weights_is_all_zero():
    assert compute_largest_remainder(9, [(b"a", 0), (b"b", 0)]) == [0, 0]


def test_largest_remainder_takes_fractional_weights():
    assert compute_largest_remainder(TOTAL, list(enumerate([Fraction(TOTAL, 3)] * 3))) == [3334, 3333, 3333]


@given(st.integers(0, 10**7), weights_by_address)
def test_largest_remainder_matches_the_settlement_rule(amount, weights):
    parts = compute_largest_remainder(amount, weights)
    assert parts == settlement_reference(amount, weights)
    assert sum(parts) == (amount if any(w for _, w in weights) else 0)


@given(exact_shares())
def test_largest_remainder_matches_the_allocation_rule(shares):
    assert compute_basis_points(shares) == allocation_reference(shares)
    assert sum(compute_basis_points(shares)) == TOTAL


@pytest.mark.parametrize("tiebreaks", [[0, 1, 2, 3], [3, 2, 1, 0], [b"\x02", b"\x00", b"\x03", b"\x01"]])
def test_largest_remainder_ties_follow_the_tiebreak_not_the_position(tiebreaks):
    # All four remainders are 1/2 and two units are left: the two smallest tiebreaks get them.
    parts = compute_largest_remainder(10_002, list(zip(tiebreaks, [1, 1, 1, 1])))
    winners = sorted(range(4), key=lambda i: tiebreaks[i])[:2]
    assert parts == [2501 if i in winners else 2500 for i in range(4)]
