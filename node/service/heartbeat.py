"""Validators' liveness by gossip heartbeats, not blocks (docs/cadence.md).

Each validator signs and gossips a ``Heartbeat`` (height, chain time) every
HEARTBEAT_S seconds on the heartbeat topic. Every node checks them as the other topics
are checked (DESIGN §7): REJECT (the forwarder is scored down) a malformed or
oversize message, a bad signature or a key that was never a validator; IGNORE a stale,
future, duplicate or older one, or one from a validator no longer in the set. The
book keeps, per validator, when its last heartbeat arrived, for GET /validators and
/metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from node.net import ACCEPT, Verdict, ignore, reject
from node.net.messages import MAX_HEARTBEAT_BYTES, Heartbeat
from wire import DecodeError, Keypair, decode, sign_message, verify_message

HEARTBEAT_S = 5.0           # wall seconds between two heartbeats of a validator
LIVE_S = 3 * HEARTBEAT_S    # a validator heard within this is live (two may be lost)
FRESH_S = 30.0              # a heartbeat's time may differ from ours by this much (wall s)


@dataclass
class Heard:
    height: int
    time_ms: int
    at: float               # monotonic seconds when it arrived


class HeartbeatBook:
    """The last heartbeat heard from each validator, and the check of a new one."""

    def __init__(self, chain_id: bytes, now_ms: Callable[[], int], time_scale: int,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.chain_id, self.now_ms, self.time_scale, self.monotonic = chain_id, now_ms, time_scale, monotonic
        self.heard: dict[bytes, Heard] = {}

    def build(self, key: Keypair, height: int) -> bytes:
        """This validator's signed heartbeat now; recorded as heard (gossip does not
        hand a node its own messages to validate)."""
        hb = sign_message(Heartbeat(validator=key.public, height=height, time_ms=self.now_ms(), sig=b""),
                          self.chain_id, key)
        self.heard[key.public] = Heard(hb.height, hb.time_ms, self.monotonic())
        return hb.encode()

    def check(self, data: bytes, validators: Sequence[bytes], was_validator: Callable[[bytes], bool]) -> Verdict:
        """The gossip verdict on ``data``; an accepted heartbeat is recorded."""
        try:
            hb = decode(data, Heartbeat, MAX_HEARTBEAT_BYTES)
        except DecodeError:
            return reject("malformed")
        if hb.validator not in validators:
            # A validator removed a block ago was one: relaying its heartbeat is honest.
            return ignore("not_validator") if was_validator(hb.validator) else reject("unknown_signer")
        if not verify_message(hb, self.chain_id):
            return reject("bad_signature")
        fresh_ms = FRESH_S * 1000 * self.time_scale
        now = self.now_ms()
        if hb.time_ms > now + fresh_ms:
            return ignore("too_far_ahead")
        if hb.time_ms < now - fresh_ms:
            return ignore("stale")
        last = self.heard.get(hb.validator)
        if last is not None and hb.time_ms <= last.time_ms:
            return ignore("duplicate")
        self.heard[hb.validator] = Heard(hb.height, hb.time_ms, self.monotonic())
        return ACCEPT

    def get_age_s(self, validator: bytes) -> float | None:
        """Wall seconds since ``validator``'s last heartbeat arrived; None if never."""
        heard = self.heard.get(validator)
        return None if heard is None else max(0.0, self.monotonic() - heard.at)

    def is_live(self, validator: bytes) -> bool:
        age = self.get_age_s(validator)
        return age is not None and age <= LIVE_S
