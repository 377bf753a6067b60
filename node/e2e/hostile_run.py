"""The runner's side of the hostile-peer scenario: launch it, then judge the target node.

The flood must be (1) rejected: the target's ``voisinage_gossip_rejected_total``
rises by reason; (2) scored down and disconnected: the target's log records a ban of
the hostile peer id and the hostile peer sees itself dropped; (3) harmless to honest
work: committed readings per second while it floods stay at or above
``min_throughput_ratio`` of the rate in the undisturbed window before it started.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import trio

from node.localnet.cluster import Cluster, NodeProc
from node.e2e.manifest import Hostile

BASELINE_SKIP_S = 3.0     # the first seconds of load warm up the mempools


@dataclass
class HostileResult:
    target: str
    at_s: float
    duration_s: float
    peer: dict[str, Any] = field(default_factory=dict)
    rejected_by_reason: dict[str, float] = field(default_factory=dict)
    banned_in_log: bool = False
    target_peers_before: int | None = None
    target_peers_after: int | None = None
    baseline_readings_per_s: float | None = None
    hostile_readings_per_s: float | None = None
    throughput_ratio: float | None = None
    problems: list[str] = field(default_factory=list)

    def finish(self, follower, load_start: float) -> None:
        """Throughput in the undisturbed window before the flood and during it."""
        def rate(start: float, end: float) -> float:
            return sum(r for t, _, r in follower.commit_times if start <= t < end) / (end - start)

        base_start = load_start + BASELINE_SKIP_S
        flood_start = load_start + self.at_s
        if flood_start - base_start < 1:
            self.problems.append("no undisturbed window before the hostile peer started")
            return
        self.baseline_readings_per_s = round(rate(base_start, flood_start), 2)
        self.hostile_readings_per_s = round(rate(flood_start, flood_start + self.duration_s), 2)
        if self.baseline_readings_per_s > 0:
            self.throughput_ratio = round(self.hostile_readings_per_s / self.baseline_readings_per_s, 3)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def _rejected(cluster: Cluster, node: NodeProc) -> dict[str, float]:
    text = (await cluster.client.get(f"{node.url}/metrics", timeout=5)).text
    out = {}
    for line in text.splitlines():
        if line.startswith("voisinage_gossip_rejected_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = float(line.split()[-1])
    return out


def _hostile_cmd(cluster: Cluster, cfg: Hostile, target_addr: str, node: NodeProc) -> list[str]:
    listen = f"/ip4/{cluster.fabric.gateway}/tcp/0" if cluster.fabric is not None else "/ip4/127.0.0.1/tcp/0"
    return [sys.executable, "-m", "node.e2e.hostile", "--target", target_addr,
            "--genesis", str(node.home / "genesis.json"), "--listen", listen,
            "--seconds", str(cfg.duration), "--rate", str(cfg.rate), "--seed", "7"]


async def run_hostile(cluster: Cluster, cfg: Hostile, load_start: float, results: list[HostileResult]) -> None:
    await trio.sleep_until(load_start + cfg.at)
    node = cluster.by_name[cfg.target]
    result = HostileResult(cfg.target, cfg.at, cfg.duration)
    try:
        status = await cluster.status(node, timeout=5)
        result.target_peers_before = status["peers"]
        before = await _rejected(cluster, node)
        done = await trio.run_process(_hostile_cmd(cluster, cfg, status["listen_addrs"][0], node),
                                      capture_stdout=True, capture_stderr=True, check=False)
        if done.returncode != 0:
            result.problems.append(f"hostile peer exited {done.returncode}: "
                                   f"{done.stderr.decode(errors='replace').strip()[-200:]}")
        else:
            result.peer = json.loads(done.stdout.decode().strip().splitlines()[-1])
        after = await _rejected(cluster, node)
        result.rejected_by_reason = {k: v - before.get(k, 0.0) for k, v in sorted(after.items())
                                     if v - before.get(k, 0.0) > 0}
        result.target_peers_after = (await cluster.status(node, timeout=5))["peers"]
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError, subprocess.SubprocessError) as exc:
        result.problems.append(f"hostile scenario failed: {type(exc).__name__}: {exc}")
    judge_hostile(result, node)
    results.append(result)


def judge_hostile(result: HostileResult, node: NodeProc) -> None:
    peer_id = result.peer.get("peer_id")
    if peer_id:
        log = (node.home / "node.log").read_text(errors="replace")
        result.banned_in_log = f"banned peer {peer_id}" in log
    if not result.rejected_by_reason:
        result.problems.append("the target rejected none of the hostile gossip")
    if not result.banned_in_log:
        result.problems.append("the target never banned the hostile peer")
    if result.peer and result.peer.get("first_disconnect_s") is None:
        result.problems.append("the hostile peer was never disconnected")
