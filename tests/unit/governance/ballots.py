"""Shared helpers for the allocation tests: ballot strategies and a brute-force reference."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import strategies as st

TOTAL = 10_000


@st.composite
def ballot(draw, n_categories: int, step: int = 1):
    """A ballot of ``n_categories`` integers >= 0 summing to 10 000, on a grid of ``step``."""
    units = TOTAL // step
    cuts = sorted(draw(st.lists(st.integers(0, units), min_size=n_categories - 1, max_size=n_categories - 1)))
    bounds = [0, *cuts, units]
    return [(bounds[i + 1] - bounds[i]) * step for i in range(n_categories)]


def random_ballot(rng, n_categories: int, step: int = 1) -> list[int]:
    units = TOTAL // step
    bounds = [0, *sorted(rng.randint(0, units) for _ in range(n_categories - 1)), units]
    return [(bounds[i + 1] - bounds[i]) * step for i in range(n_categories)]


def replicate(rows):
    """Each (ballot, weight) row as ``weight`` unit voters."""
    return [ballot for ballot, weight in rows for _ in range(weight)]


def phantom_medians(rows, n_categories: int, t: Fraction) -> list[Fraction]:
    """Freeman et al.'s definition, literally: replicate the voters (n of them), put
    n+1 phantoms at min(1, t·(n−k)) (in basis points), take each category's median."""
    voters = replicate(rows)
    n = len(voters)
    phantoms = [min(Fraction(TOTAL), t * (n - k)) for k in range(n + 1)]
    medians = []
    for j in range(n_categories):
        values = sorted([Fraction(b[j]) for b in voters] + phantoms)
        medians.append(values[n])          # the middle of 2n+1 values
    return medians
