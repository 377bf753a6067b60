"""``voisinage localnet up``: one OS process per node on loopback, fed by simulated meters.

The launcher writes a development genesis (``time_scale`` = speed), starts every
node with ``voisinage node run``, drives one simulated meter per household that
posts signed cumulative readings to its own node every simulated minute, watches
commits to measure latency, and on ``--duration`` stops by itself and checks that
every node agrees: the same block id at every common height, and the same state
hash at the same height.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx
import trio

from node.localnet.errors import LocalnetError
from node.home.homedir import GENESIS_FILE, create_network, load_home
from node.localnet.meters import MeterFleet
from node.localnet.ports import find_port_block, is_port_free

STARTUP_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15
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


@dataclass
class NodeProc:
    name: str
    role: str
    home: Path
    http: str
    proc: trio.Process | None = None
    log: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.http}"


@dataclass
class Watch:
    """What the launcher saw commit, from one node's point of view."""

    seen_height: int = 0
    blocks: int = 0
    txs: int = 0
    readings: int = 0
    latencies: list[float] = field(default_factory=list)


def prepare_home(cfg: LocalnetConfig) -> Path:
    """Reuse ``cfg.home`` if it holds a genesis, otherwise write a new network there."""
    if cfg.home is not None and (cfg.home / GENESIS_FILE).exists():
        return cfg.home
    home = cfg.home or Path(tempfile.mkdtemp(prefix="voisinage-localnet-"))
    total = cfg.validators + cfg.households + 1
    for i in range(total):
        if not is_port_free(cfg.http_base + i):
            raise LocalnetError(f"HTTP port {cfg.http_base + i} is in use; is another localnet running?")
    p2p = cfg.p2p_base or find_port_block(total)
    create_network(home, name="Localnet", insee="99999", validators=cfg.validators,
                   households=cfg.households, base_port=p2p, time_scale=cfg.speed,
                   http_base=cfg.http_base)
    return home


def node_list(home: Path, cfg: LocalnetConfig) -> list[NodeProc]:
    nodes = []
    names = [f"validator-{i}" for i in range(cfg.validators)] + [f"household-{i}" for i in range(cfg.households)]
    for name in names:
        config = load_home(home / name).config
        nodes.append(NodeProc(name, config.get("role", name.split("-")[0]), home / name, config["http"]))
    return nodes


async def start_node(node: NodeProc, peers: list[str]) -> None:
    node.log = open(node.home / "node.log", "ab")
    cmd = [sys.executable, "-m", "node.cli", "node", "run", "--home", str(node.home), "--http", node.http]
    for peer in peers:
        cmd += ["--peer", peer]
    node.proc = await trio.lowlevel.open_process(cmd, stdout=node.log, stderr=subprocess.STDOUT,
                                                 start_new_session=True)


async def wait_ready(client: httpx.AsyncClient, nodes: list[NodeProc]) -> None:
    deadline = trio.current_time() + STARTUP_TIMEOUT_S
    for node in nodes:
        while True:
            if node.proc is not None and node.proc.returncode is not None:
                tail = (node.home / "node.log").read_bytes()[-400:].decode(errors="replace").strip()
                raise LocalnetError(f"{node.name} exited with {node.proc.returncode}: {tail.splitlines()[-1] if tail else ''}")
            try:
                if (await client.get(f"{node.url}/status", timeout=2)).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if trio.current_time() > deadline:
                raise LocalnetError(f"{node.name} did not answer on {node.url} within {STARTUP_TIMEOUT_S} s")
            await trio.sleep(0.2)


async def stop_nodes(nodes: list[NodeProc]) -> None:
    for node in nodes:
        if node.proc is not None and node.proc.returncode is None:
            node.proc.send_signal(signal.SIGTERM)
    with trio.move_on_after(STOP_TIMEOUT_S):
        for node in nodes:
            if node.proc is not None:
                await node.proc.wait()
    for node in nodes:
        if node.proc is not None and node.proc.returncode is None:
            node.proc.kill()
            await node.proc.wait()
        if node.log is not None:
            node.log.close()


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
            if sent is not None:
                watch.latencies.append(now - sent)


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 3)


async def check_agreement(client: httpx.AsyncClient, nodes: list[NodeProc]) -> tuple[bool, list[dict], list[str]]:
    """Same block id at every common height; same state hash at the same height."""
    statuses, problems = [], []
    for node in nodes:
        try:
            statuses.append((node, (await client.get(f"{node.url}/status", timeout=5)).json()))
        except (httpx.HTTPError, ValueError) as exc:
            problems.append(f"{node.name}: no status ({exc})")
    common = min((s["height"] for _, s in statuses), default=0)
    for h in range(1, common + 1):
        ids = set()
        for node, _ in statuses:
            block = (await client.get(f"{node.url}/blocks/{h}", timeout=30)).json()
            ids.add((block.get("id"), block.get("header", {}).get("state_hash")))
        if len(ids) != 1:
            problems.append(f"height {h}: nodes disagree on the block ({len(ids)} versions)")
    by_height: dict[int, set[str]] = {}
    for _, s in statuses:
        by_height.setdefault(s["height"], set()).add(s["state_hash"])
    problems += [f"height {h}: {len(v)} different state hashes" for h, v in by_height.items() if len(v) > 1]
    rows = [{"name": n.name, "role": n.role, "height": s["height"], "state_hash": s["state_hash"],
             "peers": s["peers"], "settled_intervals": s.get("settled_intervals", 0)} for n, s in statuses]
    return not problems and len(statuses) == len(nodes), rows, problems


async def run_localnet(cfg: LocalnetConfig, say: Callable[[str], None] = print) -> int:
    home = prepare_home(cfg)
    nodes = node_list(home, cfg)
    genesis = load_home(nodes[0].home).genesis
    say(f"localnet in {home}: {cfg.validators} validators, {cfg.households} households, speed x{cfg.speed}")
    started = time.monotonic()
    # Ctrl-C (or SIGTERM) stops every node cleanly instead of unwinding as KeyboardInterrupt.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as stop_signals:
        return await _run(cfg, home, nodes, genesis, started, stop_signals, say)


async def _until_stopped(cfg: LocalnetConfig, stop_signals, say: Callable[[str], None]) -> None:
    """Until --duration has passed, or Ctrl-C / SIGTERM arrives."""
    with trio.move_on_after(cfg.duration if cfg.duration is not None else math.inf):
        async for signum in stop_signals:
            say(f"{signal.Signals(signum).name}: stopping every node")
            return


async def _run(cfg: LocalnetConfig, home: Path, nodes: list[NodeProc], genesis, started: float, stop_signals,
               say: Callable[[str], None]) -> int:
    async with httpx.AsyncClient() as client:
        try:
            for node in nodes:
                await start_node(node, [])
            await wait_ready(client, nodes)
            for node in nodes:
                say(f"  {node.name:<14} {node.url}/")
            say(f"dashboard: {nodes[cfg.validators].url if cfg.households else nodes[0].url}/")
            fleet = MeterFleet(home, genesis, [n for n in nodes if n.role == "household"], seed=cfg.seed)
            watch = Watch()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(fleet.run, client)
                nursery.start_soon(watch_commits, client, nodes[0], fleet, watch)
                await _until_stopped(cfg, stop_signals, say)
                nursery.cancel_scope.cancel()
            agree, rows, problems = await check_agreement(client, nodes)
        finally:
            with trio.CancelScope(shield=True):
                await stop_nodes(nodes)
    report = {
        "agree": agree,
        "nodes": rows,
        "blocks": watch.blocks,
        "txs": watch.txs,
        "readings_committed": watch.readings,
        "readings_submitted": fleet.submitted,
        "settled_intervals": max((r["settled_intervals"] for r in rows), default=0),
        "commit_latency_s": {"p50": quantile(watch.latencies, 0.5), "p99": quantile(watch.latencies, 0.99)},
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
