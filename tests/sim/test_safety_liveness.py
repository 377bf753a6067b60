"""Seeded fault scenarios: f < n/3 byzantine validators, 10–50 % drops, partitions.

Invariant: no two honest validators commit different blocks at one height, and no
honest validator signs twice for one (h, r, step). Liveness: once partitions stop
(and heal), every height commits.
"""

import pytest

from node.sim.consensus import SimConfig, run_simulation

HEIGHTS = 5
SIZES = [(4, 1), (5, 1), (7, 2), (10, 3)]
DROPS = [0.1, 0.3, 0.5]
SEEDS = range(12)


def _scenarios():
    for n, f in SIZES:
        for drop in DROPS:
            for seed in SEEDS:
                partition = 4.0 if seed % 2 else 0.0
                yield pytest.param(n, f, drop, partition, seed, id=f"n{n}-f{f}-drop{drop}-part{partition}-s{seed}")


@pytest.mark.parametrize("n,f,drop,partition,seed", list(_scenarios()))
def test_byzantine_minority_is_safe_and_live(n, f, drop, partition, seed):
    config = SimConfig(validators=n, byzantine=f, drop=drop, partition_every_s=partition,
                       partition_until_s=20.0 if partition else 0.0, heights=HEIGHTS,
                       seed=1000 * n + seed, max_virtual_s=900)
    result = run_simulation(config)
    assert result.safety_violations == 0
    assert result.double_signs == 0
    assert result.committed_heights >= HEIGHTS


@pytest.mark.parametrize("seed", range(6))
def test_honest_network_with_partitions_commits_every_height(seed):
    result = run_simulation(SimConfig(validators=7, drop=0.2, partition_every_s=3.0,
                                      partition_until_s=15.0, heights=15, seed=seed))
    assert result.safety_violations == 0
    assert result.committed_heights >= 15


def test_messages_through_the_strict_decoder():
    """Every message crosses the router as bytes and goes through decode_consensus."""
    result = run_simulation(SimConfig(validators=4, byzantine=1, drop=0.2, heights=5, seed=7, encode=True))
    assert result.safety_violations == 0
    assert result.committed_heights >= 5
    assert result.evidence_committed >= 1


def test_same_seed_same_run():
    config = SimConfig(validators=5, byzantine=1, drop=0.3, partition_every_s=3.0,
                       partition_until_s=10.0, heights=4, seed=42)
    a, b = run_simulation(config), run_simulation(config)
    assert (a.virtual_seconds, a.messages, a.dropped, a.commit_times_ms) == \
           (b.virtual_seconds, b.messages, b.dropped, b.commit_times_ms)
