"""DESIGN §6 block time, lower bound: a fresh proposal more than 30 s behind a validator's
clock gets its nil prevote (consensus/block.py check_block_lag), so a proposer whose clock
is behind cannot hold the chain's time back; after a network-wide halt the first block,
stamped with its proposer's now, is still accepted."""

from __future__ import annotations

import pytest

from consensus.block import MAX_BLOCK_LAG_MS
from consensus.events import EngineConfig
from node.sim.consensus import GENESIS_TIME_MS, Crash, SimConfig, Simulation

HOUR_MS = 3_600_000


def run(config: SimConfig) -> Simulation:
    sim = Simulation(config)
    sim.result = sim.run()
    return sim


def get_lags_ms(sim: Simulation, observer: int) -> dict[int, int]:
    """How far each committed block's time is behind the virtual time it was first committed at."""
    times = sim.result.commit_times_ms
    return {h + 1: GENESIS_TIME_MS + times[h + 1] - block.header.time_ms
            for h, (block, _) in enumerate(sim.nodes[observer].chain)}


@pytest.mark.parametrize("seed", range(3))
def test_a_proposer_whose_clock_is_behind_cannot_hold_time_back(seed):
    # Blocks only on the 60 s heartbeat: validator 0, an hour behind, stamps parent + 1 ms,
    # a minute old; the others prevote nil and the next round's proposer stamps now.
    sim = run(SimConfig(validators=4, heights=12, seed=seed, always_ready=False, max_virtual_s=3_600,
                        engine=EngineConfig(idle_ms=60_000), clock_skew_ms=(-HOUR_MS,)))
    assert sim.result.committed_heights >= 12 and sim.result.safety_violations == 0
    lags = get_lags_ms(sim, observer=1)
    assert max(lags.values()) <= MAX_BLOCK_LAG_MS
    assert all(block.header.proposer != sim.validators[0] for block, _ in sim.nodes[1].chain)


@pytest.mark.parametrize("seed", range(3))
def test_the_first_block_after_a_network_wide_halt_is_accepted(seed):
    # Every validator is down for ten minutes: the parent is then far older than the lag,
    # and the chain resumes at once with blocks stamped with the proposers' clocks.
    halt = tuple(Crash(i, 30_000, 630_000) for i in range(4))
    sim = run(SimConfig(validators=4, heights=12, seed=seed, crashes=halt, always_ready=False,
                        max_virtual_s=3_600))
    times = sim.result.commit_times_ms
    after = sorted(h for h, t in times.items() if t >= 630_000)
    assert after and sim.result.committed_heights >= 12
    # Resumed within one heartbeat and a few rounds, not after the proposers' clocks
    # had somehow to come back within 30 s of a ten-minute-old parent.
    assert times[after[0]] < 630_000 + 20_000
    assert GENESIS_TIME_MS + 630_000 - sim.nodes[0].chain[after[0] - 2][0].header.time_ms > MAX_BLOCK_LAG_MS
    lags = get_lags_ms(sim, observer=0)
    assert all(lags[h] <= MAX_BLOCK_LAG_MS for h in after)
