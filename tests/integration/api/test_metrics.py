"""GET /metrics on running nodes, parsed with prometheus_client's own parser (DESIGN §9)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.support.livenet import LiveNet
from tests.support.wait import wait_for

# DESIGN §9's metrics and the type Prometheus conventions call for. The parser names
# a counter's family without its "_total" suffix; its samples carry it.
EXPECTED = {
    "voisinage_height": "gauge",
    "voisinage_peers": "gauge",
    "voisinage_mempool_txs": "gauge",
    "voisinage_block_interval_seconds": "histogram",
    "voisinage_consensus_round": "gauge",
    "voisinage_txs": "counter",
    "voisinage_gossip_rejected": "counter",
    "voisinage_commit_latency_seconds": "histogram",
    "voisinage_validator_equivocations": "counter",
}


def scrape(livenet: LiveNet, name: str) -> dict:
    resp = livenet.get(name, "/metrics")
    assert resp is not None and resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(resp.text)}


def sample(families: dict, family: str, sample_name: str, **labels: str) -> float:
    return sum(s.value for s in families[family].samples
               if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_every_metric_is_there_with_its_type(livenet: LiveNet):
    for name in ("validator-0", "household-0"):
        families = scrape(livenet, name)
        assert {n: families[n].type for n in EXPECTED if n in families} == EXPECTED


def test_counters_end_in_total_and_histograms_have_buckets(livenet: LiveNet):
    wait_for(lambda: livenet.height("validator-0") >= 3, 60, "three blocks", livenet.logs)
    families = scrape(livenet, "validator-0")
    for name, kind in EXPECTED.items():
        names = {s.name for s in families[name].samples}
        if kind == "counter" and names:
            assert names <= {f"{name}_total", f"{name}_created"}
        if kind == "histogram":
            assert {f"{name}_bucket", f"{name}_count", f"{name}_sum"} <= names


def test_height_and_tx_counters_move(livenet: LiveNet):
    before = scrape(livenet, "validator-0")
    h0 = sample(before, "voisinage_height", "voisinage_height")
    readings0 = sample(before, "voisinage_txs", "voisinage_txs_total", type="tx/reading")

    def moved():
        after = scrape(livenet, "validator-0")
        return after if (sample(after, "voisinage_height", "voisinage_height") > h0
                         and sample(after, "voisinage_txs", "voisinage_txs_total", type="tx/reading") > readings0) \
            else None
    after = wait_for(moved, 60, "height and voisinage_txs_total to rise", livenet.logs)
    assert sample(after, "voisinage_block_interval_seconds", "voisinage_block_interval_seconds_count") >= 1
    assert sample(after, "voisinage_peers", "voisinage_peers") >= 1
    assert sample(after, "voisinage_validator_equivocations", "voisinage_validator_equivocations_total") == 0
    # The height metric is the node's committed height, as /status says.
    status_height = livenet.get_json("validator-0", "/status")["height"]
    assert abs(sample(after, "voisinage_height", "voisinage_height") - status_height) <= 2


def test_commit_latency_is_observed_where_txs_arrive(livenet: LiveNet):
    def observed():
        families = scrape(livenet, "household-0")
        return sample(families, "voisinage_commit_latency_seconds", "voisinage_commit_latency_seconds_count")
    assert wait_for(observed, 60, "a commit latency observation on household-0", livenet.logs) >= 1
