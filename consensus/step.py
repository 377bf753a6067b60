"""The steps of a height, defined once for the engine, the double-sign rule and the
sign record on disk (DESIGN §6).

A height runs IDLE → WAIT → PROPOSE → PREVOTE → PRECOMMIT → DECIDED, and the numbers
keep that order. PROPOSE, PREVOTE and PRECOMMIT are Algorithm 1's steps, the only ones
at which a validator signs: ``SignState.step`` stores them in sign_state.bin, where 0
(``NOTHING_SIGNED``) is below them all, and the double-sign rule orders (h, r, step)
by them (privval.py). Their numbers are part of that file format and never change.
"""

from __future__ import annotations

from enum import IntEnum


class Step(IntEnum):
    IDLE = -2       # before the first Start
    WAIT = -1       # before round 0, until a value is ready (DESIGN §6 heartbeat)
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3
    DECIDED = 4     # after a commit, until Start(height + 1)


NOTHING_SIGNED = 0
SIGNING_STEPS = (Step.PROPOSE, Step.PREVOTE, Step.PRECOMMIT)

__all__ = ["NOTHING_SIGNED", "SIGNING_STEPS", "Step"]
