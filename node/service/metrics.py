"""Prometheus metrics of DESIGN §9, one registry per node (several nodes may share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.height = Gauge("voisinage_height", "Height of the last committed block.", registry=r)
        self.peers = Gauge("voisinage_peers", "Connected libp2p peers.", registry=r)
        self.mempool_txs = Gauge("voisinage_mempool_txs", "Transactions waiting in the mempool.", registry=r)
        self.block_interval = Histogram("voisinage_block_interval_seconds",
                                        "Wall-clock time between consecutive commits.",
                                        buckets=_LATENCY_BUCKETS, registry=r)
        self.consensus_round = Gauge("voisinage_consensus_round", "Round of the height being decided.",
                                     registry=r)
        self.txs = Counter("voisinage_txs", "Committed transactions by type.", ["type"], registry=r)
        self.gossip_rejected = Counter("voisinage_gossip_rejected", "Gossip messages rejected, by reason.",
                                       ["reason"], registry=r)
        self.commit_latency = Histogram("voisinage_commit_latency_seconds",
                                        "Time from a transaction's arrival at this node to its commit.",
                                        buckets=_LATENCY_BUCKETS, registry=r)
        self.validator = Gauge("voisinage_validator",
                               "1 when this node's key is in the validator set of the next two heights.",
                               registry=r)
        self.equivocations = Counter("voisinage_validator_equivocations",
                                     "Equivocation evidence committed against validators.", registry=r)

        self.heartbeat_age = Gauge("voisinage_validator_heartbeat_age_seconds",
                                   "Seconds since each validator's last gossip heartbeat (-1: never heard).",
                                   ["validator"], registry=r)
        # docs/privacy.md "The cut is forced": an erasure waiting for its cut, and for how long.
        self.cut_pending = Gauge("voisinage_cut_pending_seconds",
                                 "Chain seconds since the oldest erasure not yet followed by a cut of the commune "
                                 "data key (-1: none pending).", registry=r)
        self.cut_overdue = Gauge("voisinage_cut_overdue",
                                 "1 when an erasure has waited for its cut longer than the node's --cut-overdue-s.",
                                 registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
