"""The standing allocation of the surplus: ballots in, basis points out (DESIGN §5).

Two rules aggregate the counted ballots, each voter weighted by the weight its
ballot received through delegation:

- ``independent_markets`` (the default, governance/markets.py): incentive
  compatible under ℓ1 disutility (no voter can bring the outcome closer to their
  true split by reporting another one) and proportional (single-minded voters get
  their categories in proportion to their weight).
- ``mean``: the weighted average, for comparison. It is NOT incentive compatible,
  which is why it is not the default. Example, tested in
  tests/unit/governance/test_gov_manipulation.py: two equal voters on two
  categories; A truly wants [2000, 8000], B reports [0, 10 000]. Truthful A gets
  the mean [1000, 9000], at ℓ1 distance 2000 from what A wants; A reporting
  [4000, 6000] instead makes the mean exactly [2000, 8000]. Under the mean, a voter
  with a minority view gains by exaggerating it, so every voter is pushed to.

Either way the exact shares (fractions.Fraction) are rounded to integer basis
points summing to exactly 10 000 by the largest remainder, ties broken by
category index (the lower index first).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from fractions import Fraction
from typing import TypeVar

from governance.errors import GovernanceError, NoCountedBallot
from governance.markets import TOTAL_BP, compute_independent_markets
from governance.rounding import compute_largest_remainder
from wire.units import BasisPoints

V = TypeVar("V", bound=Hashable)

RULES = ("independent_markets", "mean")


def check_ballot(voter: V, ballot: Sequence[int], n_categories: int) -> None:
    """DESIGN §5 AllocationBallot: one integer >= 0 per category, summing to 10 000."""
    if len(ballot) != n_categories:
        raise GovernanceError(f"ballot of {voter!r} has {len(ballot)} values for {n_categories} categories")
    for value in ballot:
        if type(value) is not int or value < 0:
            raise GovernanceError(f"ballot of {voter!r} has {value!r}; expected integers >= 0")
    total = sum(ballot)
    if total != TOTAL_BP:
        raise GovernanceError(f"ballot of {voter!r} sums to {total}, not {TOTAL_BP}")


def compute_rows(ballots: Mapping[V, Sequence[int]], weights: Mapping[V, int],
                 n_categories: int) -> list[tuple[Sequence[int], int]]:
    """Checked (ballot, weight) rows in voter order, without weightless ballots."""
    if type(n_categories) is not int or n_categories < 1:
        raise GovernanceError(f"n_categories must be an integer >= 1, got {n_categories!r}")
    rows = []
    for voter in sorted(ballots):
        ballot = ballots[voter]
        check_ballot(voter, ballot, n_categories)
        if voter not in weights:
            raise GovernanceError(f"ballot of {voter!r} has no weight")
        weight = weights[voter]
        if type(weight) is not int or weight < 0:
            raise GovernanceError(f"weight of {voter!r} must be an integer >= 0, got {weight!r}")
        if weight:
            rows.append((ballot, weight))
    if not rows:
        raise NoCountedBallot("no ballot carries any weight")
    return rows


def compute_mean_shares(rows: Sequence[tuple[Sequence[int], int]], n_categories: int) -> list[Fraction]:
    """The weighted mean of the ballots, exactly."""
    total = sum(weight for _, weight in rows)
    return [Fraction(sum(ballot[j] * weight for ballot, weight in rows), total) for j in range(n_categories)]


def compute_shares(rule: str, ballots: Mapping[V, Sequence[int]], weights: Mapping[V, int],
                   n_categories: int) -> list[Fraction]:
    """The exact allocation (Fractions of basis points summing to 10 000), before rounding."""
    if rule not in RULES:
        raise GovernanceError(f"unknown allocation rule {rule!r}; expected one of {', '.join(RULES)}")
    rows = compute_rows(ballots, weights, n_categories)
    if rule == "mean":
        return compute_mean_shares(rows, n_categories)
    return compute_independent_markets(rows, n_categories)[0]


def compute_basis_points(shares: Sequence[Fraction]) -> list[BasisPoints]:
    """Round exact shares summing to 10 000 to integer basis points summing to 10 000:
    the largest remainder, ties to the lower category index (DESIGN §5)."""
    if sum(shares) != TOTAL_BP:
        raise RuntimeError(f"allocation shares sum to {sum(shares)}, not {TOTAL_BP}")
    return [BasisPoints(bp) for bp in compute_largest_remainder(TOTAL_BP, list(enumerate(shares)))]


def allocate(rule: str, ballots: Mapping[V, Sequence[int]], weights: Mapping[V, int],
             n_categories: int) -> list[BasisPoints]:
    """The standing allocation: integer basis points per category, summing to 10 000.

    ``weights`` is the weight each ballot carries (Resolution.effective_weight);
    voters in ``weights`` without a ballot are ignored. Raises NoCountedBallot when
    no ballot carries weight (the caller keeps the previous allocation).
    """
    shares = compute_shares(rule, ballots, weights, n_categories)
    return compute_basis_points(shares)
