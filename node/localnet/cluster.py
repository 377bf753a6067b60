"""The node processes of a local network: homes, start, stop, signals, HTTP status.

The one process cluster of ``localnet up``, ``bench localnet`` and the e2e runner.

On loopback every node listens on 127.0.0.1 with its own ports. With a ``Fabric``
every node runs inside its own namespace (``ip netns exec``), listens on its
namespace address, and its genesis bootstrap address points there; the runner talks
to its HTTP API over the bridge. The process started is the node itself (``ip netns
exec`` execs it), so SIGSTOP, SIGKILL and SIGTERM reach the node directly.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from node.localnet.netns import Fabric
from node.localnet.errors import LocalnetError
from node.home.homedir import CONFIG_FILE, GENESIS_FILE, create_network, load_home
from node.localnet.ports import find_port_block
from node.home.sky import compute_sky, resolve_location

P2P_PORT = 26656
HTTP_PORT = 8700
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15


@dataclass
class NodeProc:
    index: int
    name: str
    home: Path
    http: str
    byzantine: bool = False
    # A household node of a sealing commune: ``node run --light`` (headers, commits and its
    # own entries; no block bodies, docs/privacy.md "Household nodes").
    light: bool = False
    proc: trio.Process | None = None
    paused: bool = False
    starts: int = 0
    peer_id: str | None = None
    # The ``voisinage`` arguments that start it, when not ``node run`` on its home
    # (a household that joined the running network with ``node join``).
    args: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://{self.http}"

    @property
    def is_validator(self) -> bool:
        return self.name.startswith("validator-")

    @property
    def role(self) -> str:
        return "validator" if self.is_validator else "household"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


def _rewrite_for_fabric(home: Path, names: list[str], fabric: Fabric) -> None:
    """Point genesis bootstrap addresses and every home's config at namespace addresses.

    The chain id is the hash of genesis.json, so it is rewritten before any node starts."""
    doc = json.loads((home / GENESIS_FILE).read_text())
    for i, v in enumerate(doc["validators"]):
        v["addr"] = f"/ip4/{fabric.ip(i)}/tcp/{P2P_PORT}"
    data = json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
    (home / GENESIS_FILE).write_bytes(data)
    for sub in sorted(p for p in home.iterdir() if p.is_dir()):
        (sub / GENESIS_FILE).write_bytes(data)
    for i, name in enumerate(names):
        config = json.loads((home / name / CONFIG_FILE).read_text())
        config["listen"] = f"/ip4/{fabric.ip(i)}/tcp/{P2P_PORT}"
        config["http"] = f"{fabric.ip(i)}:{HTTP_PORT}"
        (home / name / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def node_names(validators: int, households: int) -> list[str]:
    return [f"validator-{i}" for i in range(validators)] + [f"household-{i}" for i in range(households)]


def load_nodes(home: Path, names: list[str], byzantine: tuple[str, ...] = ()) -> list[NodeProc]:
    """Describe the nodes of the network written under ``home``. On a commune that seals
    payloads, household nodes run light (a full one could not open the blocks)."""
    nodes = []
    for i, name in enumerate(names):
        loaded = load_home(home / name)
        light = loaded.genesis.seals_payloads and name.startswith("household-")
        nodes.append(NodeProc(i, name, home / name, loaded.config["http"], byzantine=name in byzantine, light=light))
    return nodes


LOCALNET_INSEE = "84007"


def build_network(home: Path, validators: int, households: int, speed: int, fabric: Fabric | None,
                  byzantine: tuple[str, ...] = (), *, name: str = "E2E", http_base: int | None = None,
                  p2p_base: int | None = None, extra_households: list | None = None,
                  params: dict | None = None, seal: bool = False) -> list[NodeProc]:
    """Write genesis and homes under ``home`` (an empty directory) and describe the nodes.
    ``seal``: the genesis seals household payloads, and household nodes run light.

    On loopback, ports not given are free blocks found now; in namespaces every node
    has the same ports on its own address."""
    names = node_names(validators, households)
    total = len(names) + 1
    if fabric is None:
        p2p = p2p_base or find_port_block(total)
        http = http_base or find_port_block(total, start=p2p + total)
    else:
        p2p, http = P2P_PORT, HTTP_PORT
    # The localnet's commune sits at Avignon, where node/sim's sky is: one clear-sky table
    # caps the ledger and the simulated meters alike (docs/reconciliation.md).
    create_network(home, name=name, insee=LOCALNET_INSEE, validators=validators, households=households,
                   base_port=p2p, time_scale=speed, http_base=http, extra_households=extra_households or (),
                   sky=compute_sky(*resolve_location(LOCALNET_INSEE, None, None, None)), params=params,
                   seal_payloads=seal)
    if fabric is not None:
        _rewrite_for_fabric(home, names, fabric)
    return load_nodes(home, names, byzantine)


API_TOKEN = secrets.token_hex(16)   # POST /tx from the bridge is not loopback: node run --api-token


def open_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(headers={"authorization": f"Bearer {API_TOKEN}"})


class Cluster:
    def __init__(self, nodes: list[NodeProc], fabric: Fabric | None, client: httpx.AsyncClient,
                 run_args: tuple[str, ...] = ()) -> None:
        """``run_args``: more ``node run`` options for every node started from its own home
        (e.g. ``--snapshot-interval 40``)."""
        self.nodes, self.fabric, self.client, self.run_args = nodes, fabric, client, run_args
        self.by_name = {n.name: n for n in nodes}
        # Homes written but not started with the others (a spare that joins a sealing
        # commune later, node/e2e/sealing.py); ``add`` them once started.
        self.standby: dict[str, NodeProc] = {}

    def add(self, node: NodeProc) -> None:
        """A node that joins during the run: started, stopped and checked like the others."""
        self.nodes.append(node)
        self.by_name[node.name] = node

    def remove(self, node: NodeProc) -> None:
        """A node retired during the run (stopped first): no longer started, stopped nor checked."""
        self.nodes.remove(node)
        self.by_name.pop(node.name, None)

    def find(self, name: str) -> NodeProc | None:
        return self.by_name.get(name) or self.standby.get(name)

    def command(self, node: NodeProc) -> list[str]:
        # Nodes of a local network start from genesis together: no state sync (a node
        # that joins later, ``node.args``, says for itself how it starts).
        args = node.args or ("node", "run", "--home", str(node.home), "--http", node.http, "--no-state-sync",
                             *self.run_args)
        cmd = [sys.executable, "-m", "node.cli", *args]
        if node.byzantine:
            cmd += ["--byzantine", "double-sign"]
        if node.light and not node.args:
            cmd += ["--light"]
        return (self.fabric.exec_prefix(node.index) if self.fabric is not None else []) + cmd

    async def start(self, node: NodeProc) -> None:
        node.home.mkdir(parents=True, exist_ok=True)
        with open(node.home / "node.log", "ab") as log:
            node.proc = await trio.lowlevel.open_process(self.command(node), stdout=log, stderr=subprocess.STDOUT,
                                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                                         env=dict(os.environ, VOISINAGE_API_TOKEN=API_TOKEN))
        node.paused = False
        node.starts += 1

    async def start_all(self) -> None:
        for node in self.nodes:
            await self.start(node)
        for node in self.nodes:
            await self.wait_ready(node)

    async def wait_ready(self, node: NodeProc, timeout: float = READY_TIMEOUT_S) -> None:
        with trio.move_on_after(timeout):
            while True:
                if node.proc is not None and node.proc.returncode is not None:
                    raise LocalnetError(f"{node.name} exited with {node.proc.returncode}: {self.log_tail(node)}")
                if await self.status(node) is not None:
                    return
                await trio.sleep(0.2)
        raise LocalnetError(f"{node.name} did not answer on {node.url} within {timeout:.0f} s")

    async def record_peer_ids(self) -> None:
        for node in self.nodes:
            node.peer_id = (await self.status(node) or {}).get("peer_id")

    def log_tail(self, node: NodeProc) -> str:
        try:
            lines = (node.home / "node.log").read_bytes()[-2000:].decode(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    async def status(self, node: NodeProc, timeout: float = 2.0) -> dict[str, Any] | None:
        try:
            response = await self.client.get(f"{node.url}/status", timeout=timeout)
            return response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    @property
    def full_nodes(self) -> list[NodeProc]:
        """The nodes that hold every block (all but light household nodes)."""
        return [n for n in self.nodes if not n.light]

    async def heights(self) -> dict[str, int]:
        out = {}
        for node in self.nodes:
            if node.running and not node.paused:
                st = await self.status(node)
                if st is not None:
                    out[node.name] = st["height"]
        return out

    async def check_light_state_hashes(self, statuses: dict[str, dict[str, Any]], reference: NodeProc) -> list[str]:
        """Each light node's state hash at its height h (``statuses`` by name, from GET
        /status) against the one carried by the header of h+1 as ``reference``, a full
        node, holds it: a light node holds no block to compare. A light node at the
        reference's own height (nothing was due since) is held to the reference's state,
        but for height 0."""
        out = []
        ref = statuses.get(reference.name)
        for name, st in statuses.items():
            if not self.by_name[name].light:
                continue
            if ref is not None and ref["height"] == st["height"]:
                # At height 0 a light node of a genesis that seals its households holds
                # the public genesis entries only: no header carries the root yet.
                if st["height"] and ref["state_hash"] != st["state_hash"]:
                    out.append(f"{name}: state hash at {st['height']} is not {reference.name}'s at that height")
                continue
            above = st["height"] + 1
            try:
                response = await self.client.get(f"{reference.url}/blocks/{above}", timeout=10)
                carried = response.json()["header"]["state_hash"] if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError, KeyError):
                carried = None
            if carried is None:
                out.append(f"{name}: {reference.name} gave no block {above} above its height")
            elif carried != st["state_hash"]:
                out.append(f"{name}: state hash at {st['height']} is not the one {reference.name}'s header "
                           f"{above} carries")
        return out

    # ---- process perturbations ----

    def signal(self, node: NodeProc, signum: int) -> None:
        if node.running:
            node.proc.send_signal(signum)

    def pause(self, node: NodeProc) -> None:
        self.signal(node, signal.SIGSTOP)
        node.paused = True

    def resume(self, node: NodeProc) -> None:
        self.signal(node, signal.SIGCONT)
        node.paused = False

    async def kill(self, node: NodeProc) -> None:
        self.signal(node, signal.SIGKILL)
        if node.proc is not None:
            await node.proc.wait()

    async def stop(self, node: NodeProc) -> int | None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; returns the exit code."""
        if node.proc is None:
            return None
        if node.paused:
            self.resume(node)
        self.signal(node, signal.SIGTERM)
        with trio.move_on_after(STOP_TIMEOUT_S):
            await node.proc.wait()
        if node.proc.returncode is None:
            node.proc.kill()
            await node.proc.wait()
        return node.proc.returncode

    async def stop_all(self) -> None:
        async with trio.open_nursery() as nursery:
            for node in self.nodes:
                nursery.start_soon(self.stop, node)
