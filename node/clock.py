"""The chain clock: wall time, optionally accelerated from genesis time (dev ``time_scale``)."""

from __future__ import annotations

import time


class ChainClock:
    """chain_now = genesis_time + (wall_now − genesis_time) × time_scale, in milliseconds.

    With time_scale = 1 (every real genesis) this is plain wall time. A development
    genesis may set time_scale = K so half-hour settlement intervals pass K times
    faster (DESIGN §9, localnet --speed).
    """

    def __init__(self, genesis_time_s: int, time_scale: int = 1, wall=time.time) -> None:
        self.origin_ms = genesis_time_s * 1000
        self.scale = time_scale
        self._wall = wall

    def now_ms(self) -> int:
        wall_ms = int(self._wall() * 1000)
        return self.origin_ms + (wall_ms - self.origin_ms) * self.scale

    def chain_to_wall_s(self, chain_ms: int) -> float:
        """Seconds of wall time that correspond to ``chain_ms`` of chain time."""
        return chain_ms / 1000 / self.scale
