"""Benchmark of the pure consensus engine (``voisinage bench consensus``).

Heights per wall-clock second for n validators with no faults, every signature
checked by every receiver, against a baseline measured in the same run: the raw
Ed25519 sign and verify work of one height ((2n+1) messages signed, each checked
by the n-1 others) done in a tight loop. The ratio says how much of the engine's
time is cryptography.
"""

from __future__ import annotations

import time

from wire import Keypair, verify_signature

from node.sim.consensus import SimConfig, run_simulation

DEFAULT_SIZES = (4, 7, 10, 31)
MESSAGE_BYTES = 180         # about the size of the signed bytes of a vote


def get_heights_for(n: int, seconds_hint: float) -> int:
    """Enough heights for a stable figure in about ``seconds_hint`` at small n."""
    per_height = 0.0003 * n * n + 0.002
    return max(5, min(1000, int(seconds_hint / per_height)))


def measure_engine(n: int, heights: int) -> float:
    """Heights per second of n engines joined by a lossless in-process router."""
    result = run_simulation(SimConfig(validators=n, heights=heights, seed=n, shared_verify=False,
                                      delay_ms=(1, 1)))
    if result.committed_heights < heights or result.safety_violations:
        raise RuntimeError(f"benchmark run for n={n} did not commit every height")
    return heights / result.wall_seconds


def measure_crypto_baseline(n: int, heights: int) -> float:
    """Heights per second if a height cost only its signatures and their checks."""
    key = Keypair(bytes(range(32)))
    data = bytes(MESSAGE_BYTES)
    messages = 2 * n + 1
    start = time.perf_counter()
    for _ in range(heights):
        for _ in range(messages):
            sig = key.sign(data)
            for _ in range(n - 1):
                verify_signature(key.public, data, sig)
    return heights / (time.perf_counter() - start)


def run_bench(sizes=DEFAULT_SIZES, seconds_hint: float = 2.0) -> list[dict]:
    rows = []
    for n in sizes:
        heights = get_heights_for(n, seconds_hint)
        engine = measure_engine(n, heights)
        baseline = measure_crypto_baseline(n, max(3, heights // 4))
        rows.append({"validators": n, "heights": heights, "heights_per_s": round(engine, 1),
                     "crypto_baseline_heights_per_s": round(baseline, 1),
                     "ratio_to_baseline": round(engine / baseline, 3)})
    return rows
