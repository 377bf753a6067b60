"""The independent markets rule, computed exactly (DESIGN §5 ``allocation_rule``).

Freeman, Pennock, Peters, Wortman Vaughan, "Truthful aggregation of budget
proposals" (EC 2019 / JET 2021, arXiv 1905.00457). With n voters, the moving
phantom mechanism places n+1 phantoms at ``f_k(t) = min(1, t·(n−k))`` for
k = 0..n and gives each category the median of the n ballot values and the n+1
phantoms, with t chosen so that the medians sum to the whole budget.

Here the budget is 10 000 basis points and t is in basis points too. A voter of
integer weight w counts as w identical voters (n is the total weight), so that the
result equals replication by construction. The median has a closed form: with the
replicated values of a category sorted highest first, p_(1) >= ... >= p_(n), the
median is ``max_k min(p_(k), k·t)``. Grouping equal values, with W(v) the weight of
voters whose value is >= v, this is ``g(t) = max_v min(v, W(v)·t)``: each supporter
spends t on the category until their own value caps it, hence "independent
markets". Each g is continuous, non-decreasing and piecewise linear in t, with
breakpoints ``v_i/W_i`` (a linear piece ends) and ``v_i/W_(i−1)`` (a flat piece
ends). The sum of the g's reaches 10 000 on one linear segment between two
consecutive breakpoints; we find that segment by an exact selection over the
per-category sorted breakpoint lists (O(m log² L) rational comparisons) and solve
the linear equation on it with fractions.Fraction. No floats anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import accumulate

TOTAL_BP = 10_000


@dataclass(frozen=True)
class Market:
    """One category: distinct positive ballot values, highest first, with
    ``cumulative[i]`` the total weight of voters whose value is >= ``values[i]``."""

    values: tuple[int, ...]
    cumulative: tuple[int, ...]

    @property
    def n_breakpoints(self) -> int:
        return 2 * len(self.values) - 1 if self.values else 0


def compute_markets(rows: Sequence[tuple[Sequence[int], int]], n_categories: int) -> list[Market]:
    """Group the weighted ballots by value, per category (zero values and weights never
    reach a median above zero, so they are left out)."""
    markets = []
    for j in range(n_categories):
        by_value: dict[int, int] = {}
        for ballot, weight in rows:
            value = ballot[j]
            if value and weight:
                by_value[value] = by_value.get(value, 0) + weight
        values = tuple(sorted(by_value, reverse=True))
        markets.append(Market(values, tuple(accumulate(by_value[v] for v in values))))
    return markets


def compute_median_scaled(market: Market, p: int, q: int) -> int:
    """q · g(t) at t = p/q, where g(t) = max_i min(v_i, W_i·t) (an exact integer).

    min(v_i, W_i·t) rises while W_i·t <= v_i (a prefix of i, since v_i/W_i falls)
    and then follows v_i downwards, so the maximum is at the crossing.
    """
    values, cumulative = market.values, market.cumulative
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if p * cumulative[mid] <= q * values[mid]:
            lo = mid + 1
        else:
            hi = mid
    funded = p * cumulative[lo - 1] if lo else 0
    capped = q * values[lo] if lo < len(values) else 0
    return max(funded, capped)


def get_breakpoint(market: Market, b: int) -> tuple[int, int]:
    """The b-th breakpoint of g, ascending, as (numerator, denominator).

    From t = 0 upwards: v_L/W_L, v_L/W_(L−1), v_(L−1)/W_(L−1), ..., v_1/W_1.
    """
    i = len(market.values) - 1 - b // 2
    return market.values[i], market.cumulative[i] if b % 2 == 0 else market.cumulative[i - 1]


def compute_first_index(market: Market, p: int, q: int, lo: int, hi: int, past_equal: bool) -> int:
    """First index in [lo, hi) whose breakpoint is > p/q (past_equal) or >= p/q."""
    while lo < hi:
        mid = (lo + hi) // 2
        num, den = get_breakpoint(market, mid)
        before = num * q <= p * den if past_equal else num * q < p * den
        if before:
            lo = mid + 1
        else:
            hi = mid
    return lo


def compute_pivot(markets: list[Market], ranges: list[list[int]]) -> Fraction:
    """Weighted median of the middle breakpoints of the live ranges: each step of
    the selection then discards at least a quarter of the remaining breakpoints."""
    mids = []
    for market, (lo, hi) in zip(markets, ranges):
        if lo < hi:
            num, den = get_breakpoint(market, (lo + hi) // 2)
            mids.append((Fraction(num, den), hi - lo))
    mids.sort()
    half, seen = sum(size for _, size in mids), 0
    for value, size in mids:
        seen += size
        if 2 * seen >= half:
            return value
    raise RuntimeError("independent markets: pivot search found no live breakpoint")


def compute_bracket(markets: list[Market], target: int) -> tuple[Fraction, Fraction]:
    """The consecutive breakpoints lo < hi (lo may be 0) with sum g(lo) < target <= sum g(hi)."""
    ranges = [[0, market.n_breakpoints] for market in markets]
    lo_t, hi_t = Fraction(0), None
    while any(lo < hi for lo, hi in ranges):
        pivot = compute_pivot(markets, ranges)
        p, q = pivot.numerator, pivot.denominator
        below = sum(compute_median_scaled(market, p, q) for market in markets) < target * q
        # Below the target: drop breakpoints <= pivot; at or above it: drop those >= pivot.
        for market, bounds in zip(markets, ranges):
            bounds[0 if below else 1] = compute_first_index(market, p, q, bounds[0], bounds[1], past_equal=below)
        if below:
            lo_t = pivot
        else:
            hi_t = pivot
    if hi_t is None:
        raise RuntimeError("independent markets: the medians never reach the budget")
    return lo_t, hi_t


def compute_medians(markets: list[Market], t: Fraction) -> list[Fraction]:
    p, q = t.numerator, t.denominator
    return [Fraction(compute_median_scaled(market, p, q), q) for market in markets]


def compute_independent_markets(rows: Sequence[tuple[Sequence[int], int]],
                                n_categories: int) -> tuple[list[Fraction], Fraction]:
    """Exact shares (Fractions of basis points summing to 10 000) and the phantom
    parameter t, for ballots in basis points with integer weights, total weight > 0."""
    markets = compute_markets(rows, n_categories)
    lo, hi = compute_bracket(markets, TOTAL_BP)
    at_lo, at_hi = compute_medians(markets, lo), compute_medians(markets, hi)
    # Every g is linear on [lo, hi]: solve sum g(t) = 10 000 on that segment.
    sum_lo, sum_hi = sum(at_lo), sum(at_hi)
    share = (TOTAL_BP - sum_lo) / (sum_hi - sum_lo)
    shares = [a + share * (b - a) for a, b in zip(at_lo, at_hi)]
    if sum(shares) != TOTAL_BP:
        raise RuntimeError("independent markets: shares do not sum to the budget")
    return shares, lo + share * (hi - lo)
