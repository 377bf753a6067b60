"""Incentive compatibility under ℓ1 disutility (DESIGN §5), by randomised search.

Freeman et al. prove that independent markets is incentive compatible: no voter
brings the outcome closer (in ℓ1 distance, on the exact shares before rounding)
to their true ballot by reporting another one. The same search, pointed at the
mean, finds manipulations at once: that is why independent_markets is the default
(see governance/allocation.py).
"""

from __future__ import annotations

import random
from fractions import Fraction

from governance import compute_shares

from .ballots import TOTAL, random_ballot

IM = "independent_markets"


def l1(shares, ballot) -> Fraction:
    return sum(abs(Fraction(s) - b) for s, b in zip(shares, ballot))


def misreports(rng: random.Random, truth: list[int], step: int) -> list[list[int]]:
    """Random ballots, all-in-one ballots, and small shifts of the truth."""
    m = len(truth)
    out = [random_ballot(rng, m, step) for _ in range(12)]
    out += [[TOTAL if j == k else 0 for j in range(m)] for k in range(m)]
    for _ in range(8):
        a, b = rng.sample(range(m), 2)
        delta = min(truth[a], rng.choice([step, 5 * step, truth[a]]))
        shifted = truth[:]
        shifted[a] -= delta
        shifted[b] += delta
        out.append(shifted)
    return out


def find_manipulation(rule: str, seed: int, instances: int, max_weight: int):
    """Search small random instances for a voter who gains by misreporting."""
    rng = random.Random(seed)
    for _ in range(instances):
        m, n = rng.randint(2, 4), rng.randint(2, 4)
        step = rng.choice([1, 500, 1000, 2500])
        truths = {f"v{i}": random_ballot(rng, m, step) for i in range(n)}
        weights = {v: rng.randint(1, max_weight) for v in truths}
        honest = compute_shares(rule, truths, weights, m)
        for voter, truth in truths.items():
            for lie in misreports(rng, truth, step):
                outcome = compute_shares(rule, {**truths, voter: lie}, weights, m)
                if l1(outcome, truth) < l1(honest, truth):
                    return truths, weights, voter, lie
    return None


def test_independent_markets_resists_manipulation_by_unit_voters():
    assert find_manipulation(IM, seed=1, instances=250, max_weight=1) is None


def test_independent_markets_resists_manipulation_by_weighted_voters():
    assert find_manipulation(IM, seed=2, instances=250, max_weight=5) is None


def test_mean_is_manipulable_and_the_search_finds_it():
    found = find_manipulation("mean", seed=1, instances=150, max_weight=1)
    assert found is not None
    truths, weights, voter, lie = found
    honest = compute_shares("mean", truths, weights, len(lie))
    lied = compute_shares("mean", {**truths, voter: lie}, weights, len(lie))
    assert l1(lied, truths[voter]) < l1(honest, truths[voter])


def test_the_documented_mean_manipulation():
    # governance/allocation.py: A wants [2000, 8000], B reports [0, 10000].
    truth = {"a": [2000, 8000], "b": [0, 10_000]}
    weights = {"a": 1, "b": 1}
    assert compute_shares("mean", truth, weights, 2) == [1000, 9000]
    assert compute_shares("mean", {**truth, "a": [4000, 6000]}, weights, 2) == [2000, 8000]
    # Independent markets gives A no such lever: the same lie does not help.
    honest = compute_shares(IM, truth, weights, 2)
    lied = compute_shares(IM, {**truth, "a": [4000, 6000]}, weights, 2)
    assert l1(lied, truth["a"]) >= l1(honest, truth["a"])
