"""The statistics every benchmark and report uses: one percentile, one latency summary."""

from __future__ import annotations

import math
from collections.abc import Iterable


def compute_percentile(values: Iterable[float], fraction: float) -> float | None:
    """Nearest rank: the smallest value with at least ``fraction`` of all values at or
    below it (p99 of 1..100 is 99, p50 is 50). None when there are no values."""
    if not 0 < fraction <= 1:
        raise ValueError(f"a percentile's fraction is in (0, 1], not {fraction}")
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summarise_latencies(values: Iterable[float], digits: int = 3) -> dict[str, float | None]:
    """p50 and p99, rounded; None where nothing was measured."""
    values = list(values)
    out = {}
    for name, fraction in (("p50", 0.5), ("p99", 0.99)):
        value = compute_percentile(values, fraction)
        out[name] = None if value is None else round(value, digits)
    return out
