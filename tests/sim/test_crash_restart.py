"""Crash-restart: engines rebuilt from the persisted sign-state record and their stored blocks.

- f >= n/3 crashed: the chain halts, then resumes once they restart;
- a validator restarted mid-round never signs two messages for one (h, r, step);
- a validator that restarts far behind catches up through verified block sync.
"""

import pytest

from node.sim.consensus import Crash, SimConfig, make_crash_plan, run_simulation

DOWN_MS, UP_MS = 3_000, 15_000


@pytest.mark.parametrize("n,crashed,seed", [(4, 2, s) for s in range(6)] + [(7, 3, s) for s in range(6)]
                         + [(10, 4, s) for s in range(4)])
def test_third_or_more_crashed_halts_then_resumes(n, crashed, seed):
    crashes = tuple(Crash(i, DOWN_MS, UP_MS) for i in range(crashed))
    result = run_simulation(SimConfig(validators=n, crashes=crashes, drop=0.1, heights=40, seed=seed,
                                      always_ready=True))
    times = result.commit_times_ms
    # A height whose precommits were signed before the crash may still complete just after it.
    during = [h for h, t in times.items() if DOWN_MS + 1_000 < t < UP_MS]
    assert during == []
    after = [h for h, t in times.items() if t >= UP_MS]
    assert after, "the chain did not resume after the restart"
    assert result.committed_heights >= 40
    assert result.safety_violations == 0 and result.double_signs == 0


@pytest.mark.parametrize("seed", range(40))
def test_restart_mid_round_never_double_signs(seed):
    """Crashes at random moments (often mid-round, lossy links, byzantine peers too)."""
    n, f = (4, 1) if seed % 2 else (7, 2)
    crashes = make_crash_plan(n - f, 2 if n == 7 else 1, seed)
    result = run_simulation(SimConfig(validators=n, byzantine=f, drop=0.3, crashes=crashes,
                                      heights=8, seed=seed))
    assert result.double_signs == 0
    assert result.safety_violations == 0
    assert result.committed_heights >= 8


@pytest.mark.parametrize("seed", range(4))
def test_restart_far_behind_syncs(seed):
    """Down while the others commit dozens of heights: back up, it syncs and rejoins."""
    result = run_simulation(SimConfig(validators=4, crashes=(Crash(0, 500, 20_000),), heights=120,
                                      seed=seed))
    assert result.committed_heights >= 120
    assert result.synced_blocks > 0
    assert result.safety_violations == 0


def test_restarts_exercise_double_sign_protection():
    """The runs above are not vacuous: restarted validators do meet signatures they must refuse."""
    refused = double = 0
    for seed in range(12):
        crashes = make_crash_plan(5, 2, seed)
        result = run_simulation(SimConfig(validators=7, byzantine=2, drop=0.3, crashes=crashes,
                                          heights=8, seed=seed))
        refused += result.refused_signs
        double += result.double_signs
    assert refused > 0
    assert double == 0
