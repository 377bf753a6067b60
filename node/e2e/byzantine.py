"""The test-only ``--byzantine double-sign`` behaviour of ``node run`` (e2e suite only).

The honest engine is untouched: ``node run --byzantine`` hands the service a rewrite of
the engine's effects that adds, after each broadcast of one of our own prevotes or
precommits, a second vote for the same (height, round, type) with a conflicting block
id, signed with the same key and gossiped to everyone. That is exactly an equivocation
(DESIGN §6 "Evidence"): honest validators must turn it into evidence, commit it, and
never fork.
"""

from __future__ import annotations

from consensus.events import Broadcast
from consensus.vote import Vote
from node.sim.actors import make_vote_twin
from wire import Keypair

BEHAVIOURS = ("double-sign",)


def add_vote_twins(effects: list, chain_id: bytes, key: Keypair) -> list:
    """The engine's effects, with a conflicting twin after each of our own votes."""
    out = []
    for effect in effects:
        out.append(effect)
        message = getattr(effect, "message", None)
        if isinstance(effect, Broadcast) and isinstance(message, Vote) and message.validator == key.public:
            out.append(Broadcast(make_vote_twin(message, chain_id, key)))
    return out


def make_effects_rewrite(behaviour: str):
    """The effects rewrite of one behaviour, for ``node.service`` (it knows none itself)."""
    rewrites = {"double-sign": add_vote_twins}
    if behaviour not in rewrites:
        raise ValueError(f"unknown byzantine behaviour {behaviour!r}")
    return rewrites[behaviour]
