"""Largest-remainder rounding, the one integer rounding of the ledger.

DESIGN §4 settlement step 3 rounds each consumer's allocated energy with it, ties
broken by address; the treasury epoch (§4) and the standing allocation (§5) use the
same rounding, ties broken by category index.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from numbers import Rational
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def compute_largest_remainder(amount: int, weights: Sequence[tuple[K, Rational]]) -> list[int]:
    """Split ``amount`` in proportion to ``weights`` [(tiebreak, weight)] into integers
    summing exactly to ``amount``.

    Each part is first floor(amount · w / Σw); the units left over go one each to the
    largest remainders, ties to the smallest tiebreak. Weights are integers or
    Fractions >= 0; when they sum to zero every part is 0.
    """
    total = sum(w for _, w in weights)
    if total <= 0 or amount == 0:
        return [0] * len(weights)
    parts = [amount * w // total for _, w in weights]
    left = amount - sum(parts)
    if left:
        order = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i][1] % total), weights[i][0]))
        for i in order[:left]:
            parts[i] += 1
    return parts
