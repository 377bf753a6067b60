"""The gossip micro-benchmark runs and reports a consistent result."""

from __future__ import annotations

import pytest

from node.bench.gossip import measure_gossip_rate

pytestmark = pytest.mark.integration


async def test_measure_gossip_rate_delivers_everything_it_sent():
    result = await measure_gossip_rate(1.0, 200)
    assert result["hosts"] == 3 and result["muxer"] == "YAMUX"
    assert result["sent"] > 0
    assert result["delivered"] == result["sent"] and result["lost"] == 0
    assert result["msgs_per_s"] > 0
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]


async def test_invalid_benchmark_parameters_are_refused():
    with pytest.raises(ValueError):
        await measure_gossip_rate(0, 200)
    with pytest.raises(ValueError):
        await measure_gossip_rate(1.0, 4)
    with pytest.raises(ValueError):
        await measure_gossip_rate(1.0, 200, hosts=1)
