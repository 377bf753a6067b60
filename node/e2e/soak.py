"""``voisinage e2e soak``: steady load for a long time, memory growth per node from /proc.

RSS (VmRSS of /proc/<pid>/status) of every node is sampled every ``sample_s``.
Growth is the last sample minus the median of the first minute's samples (start-up
allocations settle in that minute), also given per hour. A leak shows as growth that
keeps its slope over the whole run; the agreement and tx checks run at the end too.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any, Callable

import trio

from node.e2e import checks
from node.localnet.cluster import Cluster, NodeProc, build_network, open_client
from node.e2e.load import LoadGen
from node.localnet.netns import Fabric, require_root

WARMUP_S = 60.0


def read_rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def compute_growth(samples: list[tuple[float, int]]) -> dict[str, Any]:
    """Start (median of the warm-up minute), end, max and growth of one node's RSS, in MiB."""
    if not samples:
        return {"samples": 0}
    t0 = samples[0][0]
    warm = [kib for t, kib in samples if t - t0 <= WARMUP_S] or [samples[0][1]]
    start, end = statistics.median(warm), samples[-1][1]
    hours = max((samples[-1][0] - t0) / 3600, 1e-9)
    return {"samples": len(samples), "start_mib": round(start / 1024, 1), "end_mib": round(end / 1024, 1),
            "max_mib": round(max(k for _, k in samples) / 1024, 1),
            "growth_mib": round((end - start) / 1024, 1),
            "growth_mib_per_h": round((end - start) / 1024 / hours, 1)}


async def sample_rss(nodes: list[NodeProc], every_s: float, out: dict[str, list[tuple[float, int]]]) -> None:
    while True:
        now = trio.current_time()
        for node in nodes:
            if node.running:
                kib = read_rss_kib(node.proc.pid)
                if kib is not None:
                    out.setdefault(node.name, []).append((now, kib))
        await trio.sleep(every_s)


async def run_soak(minutes: float, validators: int, households: int, netns: bool, readings_per_s: float,
                   sample_s: float = 10.0, workdir: Path | None = None,
                   say: Callable[[str], None] = print) -> dict[str, Any]:
    if netns:
        require_root("e2e soak --netns")
    home = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="voisinage-soak-"))
    fabric = Fabric(validators + households) if netns else None
    samples: dict[str, list[tuple[float, int]]] = {}
    try:
        if fabric is not None:
            await trio.to_thread.run_sync(fabric.setup)
        nodes = build_network(home, validators, households, 120, fabric)
        async with open_client() as client:
            cluster = Cluster(nodes, fabric, client)
            try:
                await cluster.start_all()
                load = LoadGen(cluster, [n for n in nodes if not n.is_validator], 1, readings_per_s, 5.0, 15.0)
                say(f"soak: {validators} validators, {households} households, {minutes} min, home {home}")
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(load.follower.run, cluster)
                    nursery.start_soon(load.run)
                    nursery.start_soon(sample_rss, nodes, sample_s, samples)
                    await trio.sleep(minutes * 60)
                    nursery.cancel_scope.cancel()
                agreement = await checks.check_agreement(cluster)
                txs = checks.check_txs(load.log, load.follower)
            finally:
                with trio.CancelScope(shield=True):
                    await cluster.stop_all()
    finally:
        if fabric is not None:
            fabric.teardown()
    memory = {name: compute_growth(s) for name, s in sorted(samples.items())}
    return {"minutes": minutes, "home": str(home), "height": load.follower.height,
            "txs_acked": txs.acked, "txs_lost": len(txs.lost), "duplicates": len(txs.duplicates),
            "forks": agreement.forks, "memory": memory,
            "passed": not (agreement.forks or txs.lost or txs.duplicates)}
