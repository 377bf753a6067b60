"""``voisinage localnet up``: one OS process per node on loopback, fed by simulated meters.

The launcher writes a development genesis (``time_scale`` = speed), starts every
node with ``voisinage node run``, drives one simulated meter per household that
posts signed cumulative readings to its own node every simulated minute, watches
commits to measure latency, and on ``--duration`` stops by itself and checks that
every node agrees: the same block id at every common height, and the same state
hash at the same height.

By default (``--seal``) the genesis seals household payloads (docs/privacy.md): household
nodes run ``--light`` and the meters seal their readings. A light node holds no block
(only verified headers and its own entries), so the watcher follows a validator, and
the agreement check compares blocks among the full nodes and holds each light node's
state hash to the one the validators' next header carries (node/e2e/checks.py).
"""

from __future__ import annotations

import json
import math
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx
import trio

from node.bench.stats import summarise_latencies
from node.home.homedir import GENESIS_FILE, KEY_FILE, load_genesis_file, load_home
from node.localnet.cluster import Cluster, NodeProc, build_network, load_nodes, node_names, open_client
from node.localnet.errors import LocalnetError
from node.localnet.meters import MeterFleet
from node.localnet.netns import Fabric, require_root
from node.localnet.ports import is_port_free

BLOCK_WAIT_S = 5          # long poll of the commit watcher (GET /blocks/{h}?wait=)


@dataclass
class LocalnetConfig:
    validators: int = 4
    households: int = 8
    speed: int = 60
    duration: float | None = None
    home: Path | None = None
    report: Path | None = None
    http_base: int = 8700
    p2p_base: int | None = None
    seed: int = 1
    netns: bool = False       # each node in its own network namespace (root only)
    # A genesis that seals household payloads (households run light); None: sealed for a
    # new home (the default), as it was made for an existing one.
    seal: bool | None = None


@dataclass
class Watch:
    """What the launcher saw commit, from one node's point of view."""

    seen_height: int = 0
    blocks: int = 0
    txs: int = 0
    readings: int = 0
    latencies: list[float] = field(default_factory=list)


def prepare_nodes(cfg: LocalnetConfig, fabric: Fabric | None) -> tuple[Path, list[NodeProc]]:
    """Reuse ``cfg.home`` if it holds a genesis, otherwise write a new network there.

    Node i serves HTTP on ``cfg.http_base + i`` on loopback, so the demo's URLs are
    the same every time; in namespaces each node has its own address."""
    names = node_names(cfg.validators, cfg.households)
    if cfg.home is not None and (cfg.home / GENESIS_FILE).exists():
        if fabric is not None:
            raise LocalnetError(f"{cfg.home} already holds a network; --netns needs an empty --home "
                                "(addresses are per run)")
        nodes = load_nodes(cfg.home, names)
        sealed = load_genesis_file(cfg.home / GENESIS_FILE).seals_payloads
        if cfg.seal is not None and cfg.seal != sealed:
            raise LocalnetError(f"{cfg.home} already holds a network that {'seals' if sealed else 'does not seal'} "
                                f"payloads; {'--seal' if cfg.seal else '--no-seal'} needs an empty --home (sealing "
                                "is a genesis choice)")
        return cfg.home, nodes
    home = cfg.home or Path(tempfile.mkdtemp(prefix="voisinage-localnet-"))
    if fabric is None:
        for i in range(len(names) + 1):
            if not is_port_free(cfg.http_base + i):
                raise LocalnetError(f"HTTP port {cfg.http_base + i} is in use; is another localnet running?")
    nodes = build_network(home, cfg.validators, cfg.households, cfg.speed, fabric, name="Localnet",
                          http_base=None if fabric else cfg.http_base, p2p_base=cfg.p2p_base,
                          seal=cfg.seal is not False)
    return home, nodes


async def watch_commits(client: httpx.AsyncClient, node: NodeProc, fleet: MeterFleet, watch: Watch) -> None:
    """Follow one node's chain, asking for its next block with a long poll (answered as
    soon as the block is stored); a tx's latency is from its 202 to the launcher seeing
    it committed."""
    while True:
        try:
            r = await client.get(f"{node.url}/blocks/{watch.seen_height + 1}", params={"wait": BLOCK_WAIT_S},
                                 timeout=BLOCK_WAIT_S + 30)
            if r.status_code != 200:
                await trio.sleep(0.05)
                continue
            block = r.json()
        except (httpx.HTTPError, ValueError):
            await trio.sleep(0.1)
            continue
        now = trio.current_time()
        watch.seen_height += 1
        watch.blocks += 1
        for tx in block.get("txs", []):
            watch.txs += 1
            watch.readings += tx.get("type") == "tx/reading"
            sent = fleet.sent_at.pop(tx.get("id"), None)
            # A sealed reading shows as an envelope: the fleet's own txs are all readings.
            watch.readings += tx.get("type") != "tx/reading" and sent is not None
            if sent is not None:
                watch.latencies.append(now - sent)


async def check_agreement(cluster: Cluster) -> tuple[bool, list[dict], list[str]]:
    """Same block id at every common height of the full nodes; same state hash at the
    same height; a light node's state hash is the one the next header carries."""
    client, nodes = cluster.client, cluster.nodes
    statuses, problems = [], []
    for node in nodes:
        try:
            statuses.append((node, (await client.get(f"{node.url}/status", timeout=5)).json()))
        except (httpx.HTTPError, ValueError) as exc:
            problems.append(f"{node.name}: no status ({exc})")
    full = [(node, s) for node, s in statuses if not node.light]
    common = min((s["height"] for _, s in full), default=0)
    for h in range(1, common + 1):
        ids = set()
        for node, _ in full:
            block = (await client.get(f"{node.url}/blocks/{h}", timeout=30)).json()
            ids.add((block.get("id"), block.get("header", {}).get("state_hash")))
        if len(ids) != 1:
            problems.append(f"height {h}: nodes disagree on the block ({len(ids)} versions)")
    by_height: dict[int, set[str]] = {}
    for _, s in full:       # a light node is held to the headers below
        by_height.setdefault(s["height"], set()).add(s["state_hash"])
    problems += [f"height {h}: {len(v)} different state hashes" for h, v in by_height.items() if len(v) > 1]
    if full:
        problems += await cluster.check_light_state_hashes({n.name: s for n, s in statuses}, full[0][0])
    rows = [{"name": n.name, "role": n.role, "light": n.light, "height": s["height"], "state_hash": s["state_hash"],
             "peers": s["peers"], "settled_intervals": s.get("settled_intervals", 0)} for n, s in statuses]
    return not problems and len(statuses) == len(nodes), rows, problems


async def run_localnet(cfg: LocalnetConfig, say: Callable[[str], None] = print) -> int:
    if cfg.netns:
        require_root("localnet up --netns")
    fabric = Fabric(cfg.validators + cfg.households) if cfg.netns else None
    try:
        if fabric is not None:
            await trio.to_thread.run_sync(fabric.setup)
        home, nodes = prepare_nodes(cfg, fabric)
        where = "" if fabric is None else f", namespaces {fabric.ns(0)}..{fabric.ns(len(nodes) - 1)}"
        sealed = ", payloads sealed (households --light)" if any(n.light for n in nodes) else ""
        say(f"localnet in {home}: {cfg.validators} validators, {cfg.households} households, "
            f"speed x{cfg.speed}{where}{sealed}")
        # Ctrl-C (or SIGTERM) stops every node cleanly instead of unwinding as KeyboardInterrupt.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as stop_signals:
            async with open_client() as client:
                return await _run(cfg, Cluster(nodes, fabric, client), stop_signals, say)
    finally:
        if fabric is not None and (leftovers := fabric.teardown()):
            say(f"could not remove: {', '.join(leftovers)}")


async def _until_stopped(cfg: LocalnetConfig, stop_signals, say: Callable[[str], None]) -> None:
    """Until --duration has passed, or Ctrl-C / SIGTERM arrives."""
    with trio.move_on_after(cfg.duration if cfg.duration is not None else math.inf):
        async for signum in stop_signals:
            say(f"{signal.Signals(signum).name}: stopping every node")
            return


async def _run(cfg: LocalnetConfig, cluster: Cluster, stop_signals, say: Callable[[str], None]) -> int:
    nodes, client, started = cluster.nodes, cluster.client, time.monotonic()
    genesis = load_home(nodes[0].home).genesis
    try:
        await cluster.start_all()
        for node in nodes:
            say(f"  {node.name:<14} {node.url}/")
        shown = nodes[cfg.validators] if cfg.households else nodes[0]
        say(f"dashboard: {shown.url}/")
        if cfg.households:
            # docs/privacy.md: the page shows a household's own data once it holds its key file.
            say(f"  its household's key file, to load into the page: {shown.home / KEY_FILE}")
        fleet = MeterFleet(genesis, [n for n in nodes if n.role == "household"], seed=cfg.seed)
        watch = Watch()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fleet.run, client)
            nursery.start_soon(watch_commits, client, nodes[0], fleet, watch)
            await _until_stopped(cfg, stop_signals, say)
            nursery.cancel_scope.cancel()
        agree, rows, problems = await check_agreement(cluster)
    finally:
        with trio.CancelScope(shield=True):
            await cluster.stop_all()
    report = {
        "agree": agree,
        "nodes": rows,
        "blocks": watch.blocks,
        "txs": watch.txs,
        "readings_committed": watch.readings,
        "readings_submitted": fleet.submitted,
        "settled_intervals": max((r["settled_intervals"] for r in rows), default=0),
        "commit_latency_s": summarise_latencies(watch.latencies),
        "duration_s": round(time.monotonic() - started, 1),
        "problems": problems,
    }
    if cfg.report is not None:
        cfg.report.write_text(json.dumps(report, indent=2) + "\n")
    say(json.dumps({k: report[k] for k in ("agree", "blocks", "txs", "readings_committed",
                                            "settled_intervals", "commit_latency_s")}))
    for problem in problems:
        say(f"disagreement: {problem}")
    return 0 if agree else 1
