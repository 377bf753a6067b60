"""The test-only ``--byzantine`` behaviours of ``node run`` (e2e and live tests only).

``lie-proofs``: the node answers household nodes' entry requests with a forged value
(an account credited with a million Wh) under the honest proof, which then no longer
reaches the state root: a household node in light mode must refuse it and ban the
node (docs/privacy.md "Household nodes").

``double-sign``:
The honest engine is untouched: ``node run --byzantine`` hands the service a rewrite of
the engine's effects that adds, after each broadcast of one of our own prevotes or
precommits, a second vote for the same (height, round, type) with a conflicting block
id, signed with the same key and gossiped to everyone. That is exactly an equivocation
(DESIGN §6 "Evidence"): honest validators must turn it into evidence, commit it, and
never fork.
"""

from __future__ import annotations

import dataclasses

from consensus.events import Broadcast
from consensus.vote import Vote
from node.sim.actors import make_vote_twin
from tokens.kv import encode_value
from tokens.layout import ACCOUNT
from tokens.lightstate import ProvenEntries
from wire import Keypair, decode

BEHAVIOURS = ("double-sign", "lie-proofs")


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
    """The effects rewrite of one behaviour, for ``node.service`` (it knows none itself);
    None for a behaviour that leaves consensus honest."""
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown byzantine behaviour {behaviour!r}")
    return {"double-sign": add_vote_twins}.get(behaviour)


def forge_entries_answer(data: bytes) -> bytes:
    """An entries answer whose account values are replaced by a rich one, proofs kept."""
    answer = decode(data, ProvenEntries, len(data))
    rich = encode_value([1_000_000, 0, 0])
    entries = tuple(dataclasses.replace(e, value=rich) if e.key.startswith(ACCOUNT) else e for e in answer.entries)
    return dataclasses.replace(answer, entries=entries).encode()


def make_answer_rewrite(behaviour: str):
    """The rewrite of entries answers of one behaviour, or None."""
    return {"lie-proofs": forge_entries_answer}.get(behaviour)
