"""``voisinage e2e run``: setup → start → load → perturb → wait → check → stop.

One run builds a fresh network from its manifest (in namespaces when ``netns``),
drives load and the perturbation schedule, waits for acknowledged txs to settle,
checks the invariants (checks.py), stops every node, checks each store, removes the
namespaces, and writes one JSON report. ``passed`` is true only if every check held.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import httpx
import trio

from node.e2e import checks
from node.localnet.cluster import Cluster, NodeProc, build_network, open_client
from node.e2e.hostile_run import HostileResult, run_hostile
from node.e2e.load import LoadGen
from node.e2e.manifest import Manifest
from node.e2e.membership import Membership
from node.localnet.netns import Fabric, require_root
from node.localnet.ports import find_listen_port_block
from node.e2e.perturb import PerturbResult, run_perturbation
from node.e2e.sealing import SealOps
from node.e2e.errors import E2EError
from node.e2e.validators import build_spares
from node.home.homedir import KEY_FILE, load_home
from node.home.keyfile import load_key

NETWORK_UP_TIMEOUT_S = 60
RUN_PORT_START = 20_000     # where a loopback run's nodes listen (p2p, then HTTP), below the ephemeral range


class Stages:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say, self.times, self.current, self.started = say, {}, None, time.monotonic()

    def enter(self, name: str) -> None:
        now = time.monotonic()
        if self.current is not None:
            self.times[self.current] = round(now - self.started, 1)
        self.current, self.started = name, now
        self.say(f"[{name}]")


async def hears_every_validator(cluster: Cluster, node: NodeProc) -> bool:
    """Whether ``node`` hears a live heartbeat from every other validator (GET /validators)."""
    try:
        response = await cluster.client.get(f"{node.url}/validators", timeout=5)
    except httpx.HTTPError:
        return False
    if response.status_code != 200:
        return False
    return all(v["self"] or v["live"] for v in response.json()["validators"])


async def wait_network_up(cluster: Cluster) -> None:
    """Until every node hears every validator's heartbeat: the gossip mesh is formed. A
    new chain makes no block before something is due (docs/cadence.md), so a first
    block is not the sign of a network that is up."""
    with trio.move_on_after(NETWORK_UP_TIMEOUT_S):
        while True:
            up = [await hears_every_validator(cluster, n) for n in cluster.nodes]
            if all(up):
                return
            await trio.sleep(0.5)
    deaf = [n.name for n, ok in zip(cluster.nodes, up) if not ok]
    raise E2EError(f"{', '.join(deaf)} still missing a validator's heartbeat {NETWORK_UP_TIMEOUT_S} s after start")


def is_caught_up(cluster: Cluster, heights: dict[str, int], light_target: int | None = None) -> bool:
    """Every node answers, the full nodes share a height, light nodes hold the state
    just below it (checks.LIGHT_BEHIND) or, on a chain that moves on, below
    ``light_target``: the full nodes' height checks.LIGHT_FOLLOW_S ago (a light node
    learns heights by polling its peers, so it trails a chain that never idles)."""
    if len(heights) != len(cluster.nodes):
        return False
    full = {heights[n.name] for n in cluster.full_nodes}
    if len(full) != 1:
        return False
    top = full.pop()
    target = top if light_target is None else min(top, light_target)
    return all(target - checks.LIGHT_BEHIND <= heights[n.name] <= top for n in cluster.nodes if n.light)


DATA_KEYS_TIMEOUT_S = 60


async def wait_data_keys(cluster: Cluster, households: list[NodeProc]) -> int:
    """On a sealing commune: until the data key of every household of the load is in a
    block (each light node publishes its own, docs/privacy.md "The keys"), so the load's
    sealed txs open at the validators from the first. Returns the height it was seen at."""
    want = {load_key(n.home / KEY_FILE).public.hex() for n in households}
    seen: set[str] = set()
    height = 0
    url = cluster.full_nodes[0].url
    with trio.move_on_after(DATA_KEYS_TIMEOUT_S):
        while not want <= seen:
            try:
                response = await cluster.client.get(f"{url}/blocks/{height + 1}", params={"wait": 2}, timeout=10)
            except httpx.HTTPError:
                await trio.sleep(0.5)
                continue
            if response.status_code != 200:
                await trio.sleep(0.2)
                continue
            height += 1
            seen |= {tx["signer"] for tx in response.json()["txs"] if tx["type"] == "tx/set-data-key"}
        return height
    raise E2EError(f"no data key in a block for {', '.join(sorted(want - seen))[:200]} "
                   f"{DATA_KEYS_TIMEOUT_S} s after start")


async def wait_settled(cluster: Cluster, load: LoadGen, timeout: float) -> float:
    """Until every acked tx is committed or superseded and all nodes share a height (a
    light node's is one below)."""
    start = trio.current_time()
    tops: list[tuple[float, int]] = []     # (when, the full nodes' lowest height)
    with trio.move_on_after(timeout):
        while True:
            heights = await cluster.heights()
            now = trio.current_time()
            full = [heights[n.name] for n in cluster.full_nodes if n.name in heights]
            if full:
                tops.append((now, min(full)))
            then = [h for t, h in tops if t <= now - checks.LIGHT_FOLLOW_S]
            light_target = then[-1] if then else None
            if (is_caught_up(cluster, heights, light_target) and not load.pending()
                    and load.follower.height >= max(heights.values())):
                break
            await trio.sleep(0.5)
    return round(trio.current_time() - start, 1)


def compute_throughput(follower, start: float, end: float) -> float | None:
    """Committed readings per second among blocks the follower saw in [start, end)."""
    if end <= start:
        return None
    readings = sum(r for t, _, r in follower.commit_times if start <= t < end)
    return round(readings / (end - start), 2)


def compute_max_gap(follower, start: float, end: float) -> float:
    """The longest wait between commits during the load (a chain stall)."""
    times = [start] + [t for t, _, _ in follower.commit_times if start <= t <= end] + [end]
    return round(max(b - a for a, b in zip(times, times[1:])), 2)


async def run_load_phase(m: Manifest, cluster: Cluster, load: LoadGen, perturbations: list[PerturbResult],
                         hostile: list[HostileResult], membership: Membership) -> tuple[float, float]:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(load.follower.run, cluster)
        async with trio.open_nursery() as loading:
            await loading.start(load.run)
            load_start = trio.current_time()
            for p in m.perturb:
                loading.start_soon(run_perturbation, cluster, p, load_start, m.check.max_recovery_s,
                                   m.seed, perturbations, membership)
            if m.hostile is not None:
                loading.start_soon(run_hostile, cluster, m.hostile, load_start, hostile)
            await trio.sleep(m.duration)
            # Perturbations end within the load; give their recovery measurement time to finish.
            with trio.move_on_after(m.check.max_recovery_s):
                while any(r.recovery_s is None and r.error is None for r in perturbations) or \
                        len(perturbations) < len(m.perturb) or (m.hostile and not hostile):
                    await trio.sleep(0.5)
            loading.cancel_scope.cancel()
        load_end = trio.current_time()
        await wait_settled(cluster, load, m.check.settle_timeout_s)
        nursery.cancel_scope.cancel()
    return load_start, load_end


def _byzantine_keys(m: Manifest, home: Path) -> dict[str, str]:
    genesis = load_home(home / "validator-0").genesis
    keys = {f"validator-{i}": v.key.hex() for i, v in enumerate(genesis.validators)}
    return {name: keys[name] for name in m.byzantine}


async def _metric_total(cluster: Cluster, name: str) -> float:
    total = 0.0
    for node in cluster.nodes:
        try:
            text = (await cluster.client.get(f"{node.url}/metrics", timeout=5)).text
        except httpx.HTTPError:
            continue
        total += sum(float(line.split()[-1]) for line in text.splitlines()
                     if line.startswith(name) and not line.startswith("#"))
    return total


def check_joins(perturbations: list[dict[str, Any]], interval: int, snapshots: int) -> list[str]:
    """A household node that joined must have state-synced from a snapshot taken after at
    least ``snapshots`` of them (snapshots are at multiples of ``interval``)."""
    problems = []
    for p in perturbations:
        if p["op"] != "register" or p["error"]:
            continue
        if p["joined_from"] is None:
            problems.append(f"register {p['node']}: its node replayed from genesis instead of state sync")
        elif p["joined_from"] < snapshots * interval:
            problems.append(f"register {p['node']}: state-synced from height {p['joined_from']}, before "
                            f"{snapshots} snapshots ({snapshots} x {interval} heights)")
    return problems


def judge(m: Manifest, report: dict[str, Any]) -> list[str]:
    """Every failed check, one line each; an empty list means the run passed."""
    problems = []
    ag, tx = report["agreement"], report["txs"]
    if ag["forks"]:
        problems.append(f"fork: nodes disagree on the block at heights {ag['forks'][:5]}")
    if ag["state_hash_mismatches"]:
        problems.append(f"state hashes differ at heights {ag['state_hash_mismatches'][:5]}")
    if ag["missing"]:
        problems.append(f"no block at the common height {ag['common_height']} on {', '.join(ag['missing'])}")
    for line in ag["light_mismatches"]:
        problems.append(f"light node: {line}")
    if ag["unreachable"]:
        problems.append(f"no status from {', '.join(ag['unreachable'])} at check time")
    if ag["lagging"]:
        problems.append(f"not caught up {m.check.settle_timeout_s:.0f} s after the load: {', '.join(ag['lagging'])}")
    for ban in report["honest_bans"]:
        problems.append(f"an honest peer was banned: {ban}")
    if tx["lost"]:
        problems.append(f"{tx['lost_count']} acknowledged txs never committed ({tx['lost_kinds']})")
    if tx["duplicates"]:
        problems.append(f"{tx['duplicate_count']} txs committed more than once")
    if report["blocks_during_load"] < 1:
        problems.append("no block committed during the load")
    for iv in report["intervals"]:
        problems += [f"{iv['node']}: {v}" for v in iv["violations"]]
        if not iv["settled"] and not iv["violations"]:
            problems.append(f"{iv['node']}: no settled interval in its store (the settlement check held of nothing)")
    for p in report["perturbations"]:
        if p["error"]:
            problems.append(f"{p['op']} {p['node'] or ''}: {p['error']}")
        elif p["recovery_s"] is None:
            problems.append(f"{p['op']} {p['node'] or ''}: no recovery within {m.check.max_recovery_s} s")
    if m.check.join_after_snapshots:
        problems += check_joins(report["perturbations"], m.snapshot_interval, m.check.join_after_snapshots)
    for name, count in report["evidence"].items():
        if count == 0:
            problems.append(f"no committed evidence against byzantine {name}")
    for h in report["hostile"]:
        problems += h.get("problems", [])
        ratio = h.get("throughput_ratio")
        if ratio is None or ratio < m.check.min_throughput_ratio:
            problems.append(f"honest throughput under the hostile peer: ratio {ratio} < {m.check.min_throughput_ratio}")
    return problems


async def run_checks(m: Manifest, cluster: Cluster, load: LoadGen, home: Path) -> dict[str, Any]:
    agreement = await checks.check_agreement(cluster)
    txs = checks.check_txs(load.log, load.follower)
    return {
        "agreement": asdict(agreement),
        "honest_bans": checks.find_honest_bans(cluster),
        "txs": dict(asdict(txs), lost=txs.lost[:20], duplicates=txs.duplicates[:20],
                    lost_count=len(txs.lost), duplicate_count=len(txs.duplicates),
                    resubmissions=load.resubmitted, refused=load.log.refused, unreachable=load.log.unreachable),
        "evidence": checks.check_evidence(load.follower, _byzantine_keys(m, home)),
        "equivocations_metric": await _metric_total(cluster, "voisinage_validator_equivocations_total"),
    }


async def run_manifest(m: Manifest, workdir: Path | None = None, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run one manifest end to end; returns the report (``passed`` and ``problems`` included)."""
    if m.netns:
        require_root(f"manifest {m.name} (netns = true)")
    home = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=f"voisinage-e2e-{m.name}-"))
    stages = Stages(say)
    fabric = Fabric(m.validators + m.households) if m.netns else None
    report: dict[str, Any] = {"manifest": m.name, "description": m.description, "path": str(m.path),
                              "netns": m.netns, "seal": m.seal, "home": str(home),
                              "validators": m.validators, "households": m.households}
    perturbations: list[PerturbResult] = []
    hostile: list[HostileResult] = []
    try:
        stages.enter("setup")
        if fabric is not None:
            await trio.to_thread.run_sync(fabric.setup)
        p2p = http = None
        if fabric is None:
            # Random free blocks, not the first ones from 27000: two runs at once (a
            # developer's and a test's) found the same block free while the other's nodes
            # were still starting, and one node could not listen.
            total = m.validators + m.households + 1
            p2p = find_listen_port_block(2 * total, RUN_PORT_START)
            http = p2p + total
        nodes = build_network(home, m.validators, m.households, m.speed, fabric, m.byzantine, params=m.genesis,
                              seal=m.seal, p2p_base=p2p, http_base=http)
        # Spare homes (no genesis role) run from the start as full nodes; validator ops promote
        # them. On a sealing commune a full node needs the commune key: a spare starts only
        # once a rotation sealed it a copy (node/e2e/sealing.py).
        spares = build_spares(home, m.spares, nodes)
        if not m.seal:
            nodes += spares.values()
        async with open_client() as client:
            run_args = () if m.snapshot_interval is None else ("--snapshot-interval", str(m.snapshot_interval))
            cluster = Cluster(nodes, fabric, client, run_args)
            if m.seal:
                cluster.standby.update(spares)
            try:
                stages.enter("start")
                await cluster.start_all()
                await cluster.record_peer_ids()
                await wait_network_up(cluster)
                if m.seal:
                    report["data_keys_height"] = await wait_data_keys(cluster, [n for n in nodes if n.light])
                stages.enter("load+perturb")
                load = LoadGen(cluster, [n for n in nodes if n.name.startswith("household-")], m.seed, m.load.readings_per_s,
                               m.load.transfer_every_s, m.load.resubmit_after_s)
                if m.seal:
                    await load.read_nonces(cluster.full_nodes[0])
                membership = Membership(cluster, load, home, m.check.max_recovery_s)
                if m.seal:
                    membership.sealing = SealOps(cluster, load, home, m.check.max_recovery_s)
                load_start, load_end = await run_load_phase(m, cluster, load, perturbations, hostile, membership)
                stages.enter("check")
                report.update(await run_checks(m, cluster, load, home))
                report["throughput_readings_per_s"] = compute_throughput(load.follower, load_start, load_end)
                report["max_commit_gap_s"] = compute_max_gap(load.follower, load_start, load_end)
                report["blocks_during_load"] = sum(1 for t, _, _ in load.follower.commit_times
                                                   if load_start <= t <= load_end)
                report["height"] = load.follower.height
                if membership.sealing is not None:
                    report["rotations"] = [asdict(r) for r in membership.sealing.rotations]
                for h in hostile:
                    h.finish(load.follower, load_start)
            finally:
                stages.enter("stop")
                with trio.CancelScope(shield=True):
                    await cluster.stop_all()
        report["intervals"] = [asdict(c) for c in checks.check_stores(cluster)]
    finally:
        if fabric is not None:
            leftovers = fabric.teardown()
            report["netns_leftovers"] = leftovers
        stages.enter("done")
    report["perturbations"] = [r.to_json() for r in perturbations]
    report["hostile"] = [h.to_json() for h in hostile]
    report["stages_s"] = stages.times
    report["problems"] = judge(m, report)
    report["passed"] = not report["problems"]
    return report


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
