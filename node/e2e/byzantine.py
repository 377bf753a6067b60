"""The test-only ``--byzantine double-sign`` behaviour of ``node run`` (e2e suite only).

The honest engine is untouched: the node's driver passes the engine's effects
through ``process_byzantine_effects``, which adds, after each broadcast of one of our
own prevotes or precommits, a second vote for the same (height, round, type) with a
conflicting block id, signed with the same key and gossiped to everyone. That is
exactly an equivocation (DESIGN §6 "Evidence"): honest validators must turn it into
evidence, commit it, and never fork.
"""

from __future__ import annotations

import hashlib

from consensus.events import Broadcast
from consensus.vote import Vote
from wire import Keypair, sign_message

BEHAVIOURS = ("double-sign",)


def make_conflicting_vote(vote: Vote, chain_id: bytes, key: Keypair) -> Vote:
    """Nil for a block vote; a made-up block id for a nil vote."""
    other = None if vote.block_id is not None else hashlib.sha256(b"twin" + vote.encode()).digest()
    twin = Vote(kind=vote.kind, height=vote.height, round=vote.round, block_id=other,
                validator=vote.validator, sig=bytes(64))
    return sign_message(twin, chain_id, key)


def process_byzantine_effects(behaviour: str, effects, chain_id: bytes, key: Keypair) -> list:
    """The engine's effects, with a conflicting twin after each of our own votes."""
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown byzantine behaviour {behaviour!r}")
    out = []
    for effect in effects:
        out.append(effect)
        message = getattr(effect, "message", None)
        if isinstance(effect, Broadcast) and isinstance(message, Vote) and message.validator == key.public:
            out.append(Broadcast(make_conflicting_vote(message, chain_id, key)))
    return out
