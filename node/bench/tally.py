"""``voisinage bench tally``: liquid-democracy resolution and allocation at commune scale (DESIGN §5).

Delegation resolution and the independent markets allocation on one seeded workload,
against a baseline measured in the same run: one delegate lookup per voter.
"""

from __future__ import annotations

import dataclasses
import random
import time
from typing import Any

from governance.allocation import allocate
from governance.delegation import get_delegate, resolve_delegations
from governance.markets import TOTAL_BP


@dataclasses.dataclass
class TallyWorkload:
    weights: dict[bytes, int]
    delegations: dict[bytes, dict[str, bytes | None]]
    ballots: dict[bytes, tuple[int, ...]]
    longest_chain: int


def build_random_ballot(rng: random.Random, n_categories: int) -> tuple[int, ...]:
    bounds = [0, *sorted(rng.randint(0, TOTAL_BP) for _ in range(n_categories - 1)), TOTAL_BP]
    return tuple(bounds[i + 1] - bounds[i] for i in range(n_categories))


def build_tally_workload(voters: int, categories: int, chain: int, seed: int) -> TallyWorkload:
    """``voters`` households with contribution-like weights; 10 % vote directly; one
    delegation chain ``chain`` long ends at a direct voter, another (with a tail)
    ends in a loop; the rest delegate on '*' or 'allocation' to random households,
    some with an explicit none, which makes many more chains and loops."""
    rng = random.Random(seed)
    keys = [i.to_bytes(32, "big") for i in range(voters)]
    weights = {k: rng.randint(1, 1000) for k in keys}
    direct = max(1, voters // 10)
    ballots = {keys[i]: build_random_ballot(rng, categories) for i in range(direct)}
    delegations: dict[bytes, dict[str, bytes | None]] = {}
    start = direct
    chain_a = range(start, min(voters, start + chain))
    for i in chain_a:                      # chain A: a long line ending at voter 0
        delegations[keys[i]] = {"*": keys[i + 1] if i + 1 < chain_a.stop else keys[0]}
    chain_b = range(chain_a.stop, min(voters, chain_a.stop + chain))
    loop_start = chain_b.start + len(chain_b) // 10
    for i in chain_b:                      # chain B: a tail into a loop, abstains
        delegations[keys[i]] = {"*": keys[i + 1] if i + 1 < chain_b.stop else keys[loop_start]}
    for i in range(chain_b.stop, voters):
        target = keys[rng.randrange(voters)]
        roll = rng.random()
        entry: dict[str, bytes | None] = {"allocation": target} if roll < 0.5 else {"*": target}
        if roll > 0.95:
            entry = {"allocation": None, "*": target}
        delegations[keys[i]] = entry
    return TallyWorkload(weights, delegations, ballots, max(len(chain_a), len(chain_b)))


def run_tally_bench(voters: int = 100_000, categories: int = 10, chain: int = 10_000,
                    seed: int = 1) -> dict[str, Any]:
    """Time delegation resolution and the independent markets allocation on one
    workload, against a baseline measured in the same run: one pass over the
    delegation map looking up each voter's delegate, the least any resolution does."""
    work = build_tally_workload(voters, categories, chain, seed)
    began = time.perf_counter()
    for voter in work.weights:
        get_delegate(work.delegations, voter, "allocation")
    baseline = time.perf_counter() - began
    began = time.perf_counter()
    resolution = resolve_delegations(work.weights, work.delegations, work.ballots.keys(), "allocation")
    resolved = time.perf_counter()
    result = allocate("independent_markets", work.ballots, resolution.effective_weight, categories)
    allocated = time.perf_counter()
    total = allocated - began
    # Worst case for the allocation: every voter casts a ballot directly.
    rng = random.Random(seed)
    everyone = {voter: build_random_ballot(rng, categories) for voter in work.weights}
    began_all = time.perf_counter()
    allocate("independent_markets", everyone, work.weights, categories)
    all_direct = time.perf_counter() - began_all
    return {
        "voters": voters, "categories": categories, "direct_voters": len(work.ballots),
        "longest_chain": work.longest_chain, "seed": seed,
        "resolve_s": round(resolved - began, 4), "allocate_s": round(allocated - resolved, 4),
        "total_s": round(total, 4), "goal_s": 1.0, "within_goal": total < 1.0,
        "baseline": "one delegate lookup per voter", "baseline_s": round(baseline, 4),
        "ratio": round(total / baseline, 1) if baseline > 0 else None,
        "allocate_all_direct_s": round(all_direct, 4),
        "counted_weight": resolution.counted_weight, "abstained_weight": resolution.abstained_weight,
        "allocation_bp": result,
    }
