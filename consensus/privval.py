"""Double-sign protection (DESIGN §6): the height/round/step rule, pure.

Before a validator signs, it checks the rule against its last durable record and,
if allowed, persists the new record (with fsync, in node/) BEFORE the signature
leaves the process. The record also keeps the lock of Algorithm 1 (lockedRound and
the locked block id), so a validator restarted mid-height neither signs a
conflicting message nor forgets what it locked on.
"""

from __future__ import annotations

from dataclasses import dataclass

from wire import I64, OPT_HASH, U64, Message, field_of, register
from wire.message import Bytes
from wire.units import Height, Round

from consensus.messages import Proposal
from consensus.step import NOTHING_SIGNED, Step
from consensus.vote import PREVOTE, Vote


@register("cs/sign-state")
@dataclass(frozen=True)
class SignState(Message):
    """The last thing signed: (height, round, step), sha256 of the signed bytes, the lock."""

    height: Height = field_of(U64)
    round: Round = field_of(U64)
    step: int = field_of(U64)           # a signing Step, or NOTHING_SIGNED
    sign_hash: bytes = field_of(Bytes(max=32))   # b"" before anything was signed
    locked_round: int = field_of(I64)   # -1: not locked
    locked_id: bytes | None = field_of(OPT_HASH)


INITIAL_SIGN_STATE = SignState(height=Height(0), round=Round(0), step=NOTHING_SIGNED, sign_hash=b"",
                               locked_round=-1, locked_id=None)


@dataclass(frozen=True)
class SignVerdict:
    """Whether to sign: ``allow`` is False with a ``reason`` when signing would be unsafe."""

    allow: bool
    reason: str = ""


def get_sign_step(msg: Proposal | Vote) -> Step:
    """The step at which a validator signs ``msg``."""
    if isinstance(msg, Proposal):
        return Step.PROPOSE
    return Step.PREVOTE if msg.kind == PREVOTE else Step.PRECOMMIT


def check_hrs(last: SignState, height: Height, round: Round, step: Step, sign_hash: bytes) -> SignVerdict:
    """CometBFT privval rule: never sign below the last (h, r, s); at the same (h, r, s)
    re-sign only the exact same bytes."""
    new, old = (height, round, step), (last.height, last.round, last.step)
    if new < old:
        return SignVerdict(False, f"refusing to sign h/r/s {new} below last signed {old}")
    if new == old and sign_hash != last.sign_hash:
        return SignVerdict(False, f"refusing to sign different bytes at h/r/s {new}")
    return SignVerdict(True)


def check_record_fresh(last: SignState | None, signed_height: Height | None, is_validator: bool) -> SignVerdict:
    """Before a validator starts: its double-sign record exists and is not older than the
    chain it stores. ``last`` is the record (None: no file); ``signed_height`` the highest
    stored commit carrying this key's precommit (None: none). A record below that height
    was restored or copied from an earlier time, and signing with it could equivocate."""
    if last is None:
        if is_validator or signed_height is not None:
            return SignVerdict(False, "missing")
        return SignVerdict(True)
    if signed_height is not None and last.height < signed_height:
        return SignVerdict(False, "older")
    return SignVerdict(True)


def compute_reset_state(at_height: Height) -> SignState:
    """The record an operator sets explicitly after losing it: nothing below ``at_height``
    is ever signed again."""
    return SignState(height=at_height, round=Round(0), step=NOTHING_SIGNED, sign_hash=b"",
                     locked_round=-1, locked_id=None)
