"""node/bench/stats.py: the one percentile every benchmark and report uses (nearest rank)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.bench.stats import compute_percentile, summarise_latencies


def test_percentile_is_nearest_rank():
    assert compute_percentile([1.0], 0.99) == 1.0
    assert compute_percentile([float(i) for i in range(1, 101)], 0.99) == 99.0
    assert compute_percentile([float(i) for i in range(100, 0, -1)], 0.5) == 50.0    # order does not matter
    assert compute_percentile([float(i) for i in range(1, 201)], 0.99) == 198.0
    assert compute_percentile([], 0.99) is None


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1),
       st.floats(min_value=0.01, max_value=1.0))
def test_percentile_has_at_least_the_fraction_at_or_below_it(values, fraction):
    p = compute_percentile(values, fraction)
    assert p in values
    assert sum(v <= p for v in values) >= fraction * len(values)
    assert sum(v < p for v in values) < fraction * len(values)      # and it is the smallest such value


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_invalid_fraction_is_refused(fraction):
    with pytest.raises(ValueError):
        compute_percentile([1.0], fraction)


def test_latency_summary_rounds_and_says_none_when_empty():
    assert summarise_latencies([0.12345, 0.2, 5.0]) == {"p50": 0.2, "p99": 5.0}
    assert summarise_latencies([]) == {"p50": None, "p99": None}
