"""Equivocation: conflicting signed votes become evidence, committed in blocks,
and only the equivocating validators are convicted."""

import pytest

from node.sim.consensus import Simulation, SimConfig


@pytest.mark.parametrize("n,f,drop,seed", [(4, 1, 0.0, 1), (4, 1, 0.3, 2), (7, 2, 0.1, 3),
                                           (7, 2, 0.4, 4), (10, 3, 0.2, 5), (13, 4, 0.1, 6)])
def test_equivocation_is_committed_as_evidence(n, f, drop, seed):
    sim = Simulation(SimConfig(validators=n, byzantine=f, drop=drop, heights=8, seed=seed))
    result = sim.run()
    assert result.evidence_committed >= 1
    byzantine = {node.key.public.hex() for node in sim.nodes if not node.honest}
    assert set(result.equivocators) <= byzantine
    assert result.equivocators
    assert result.safety_violations == 0


def test_each_equivocation_is_committed_once():
    sim = Simulation(SimConfig(validators=4, byzantine=1, heights=20, seed=9))
    sim.run()
    chain = max((n for n in sim.nodes if n.honest), key=lambda n: n.height).chain
    ids = [ev.id() for block, _ in chain for ev in block.evidence]
    assert ids
    assert len(ids) == len(set(ids))


def test_no_evidence_without_byzantine_validators():
    result = Simulation(SimConfig(validators=7, drop=0.3, heights=8, seed=3)).run()
    assert result.evidence_committed == 0
    assert result.equivocators == []
