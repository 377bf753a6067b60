"""The chain clock: wall time, optionally accelerated from genesis time (dev ``time_scale``);
and French legal time, which the meters' days and the grid operator's curves follow."""

from __future__ import annotations

import datetime as dt
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


# --- French legal time (EU Directive 2000/84/EC) ---------------------------------------

def _last_sunday_utc(year: int, month: int) -> int:
    last = dt.date(year, month, 31)
    day = last - dt.timedelta(days=(last.weekday() + 1) % 7)
    return int(dt.datetime(day.year, day.month, day.day, 1, tzinfo=dt.timezone.utc).timestamp())


def compute_paris_offset_s(t: float) -> int:
    """French legal time offset from UTC at unix time t (EU Directive 2000/84/EC)."""
    year = dt.datetime.fromtimestamp(t, dt.timezone.utc).year
    summer = _last_sunday_utc(year, 3) <= t < _last_sunday_utc(year, 10)
    return 7200 if summer else 3600


def compute_local_day_start(day: dt.date) -> int:
    """Unix time of local midnight starting ``day`` in France."""
    naive = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())
    return naive - compute_paris_offset_s(naive - 3600)
