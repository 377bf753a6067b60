"""Real ``voisinage node run`` processes on loopback, and the communes they run.

A ``Commune`` is ``voisinage genesis new`` output; a ``NodeProc`` is one node process
(its output in ``<home>/node.log``, spoken to over HTTP only); a ``Cluster`` is the
processes of one commune. Waits poll with deadlines and fail with the nodes' log
tails; nothing asserts how long anything took.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port, free_port_block
from tests.support.wait import wait_for

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "node.cli"]
STARTUP_S = 60.0        # a loaded 2-core machine takes seconds just to import libp2p
CONVERGE_S = 60.0
STOP_S = 20.0
TEST_INSEE = "84007"    # in the shipped table, so genesis new finds its clear sky (Avignon)
FAST_IDLE_S = 1         # genesis max_idle_s for tests: an empty block every second
# One client for every request: httpx.get() builds a new client (and TLS context) per
# call, which costs more than the request itself on a loaded machine.
HTTP = httpx.Client(timeout=5)


def run_cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def terminate_all(procs: Iterable[subprocess.Popen], timeout: float = STOP_S) -> None:
    """SIGTERM every process still running, then wait for all of them; SIGKILL whichever
    has not exited by the shared deadline (a teardown must not hang or leak)."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Commune:
    """``voisinage genesis new`` output: genesis.json and one home per node."""

    root: Path
    validators: int
    households: int

    def home(self, name: str) -> Path:
        return self.root / name

    @property
    def genesis(self) -> dict[str, Any]:
        return json.loads((self.root / "genesis.json").read_text())

    def set_params(self, **params: Any) -> None:
        """Edit the draft genesis before launch and give every home the same copy
        (the chain id is the hash of the file, so all homes must hold equal bytes)."""
        doc = self.genesis
        doc["params"].update(params)
        data = json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
        for path in [self.root / "genesis.json", *self.root.glob("*/genesis.json")]:
            path.write_bytes(data)


def make_commune(root: Path, validators: int, households: int = 0, genesis_args: tuple[str, ...] = (),
                 **params: Any) -> Commune:
    """``genesis_args``: more ``genesis new`` options (``--seal-payloads``, ``--time-scale N``);
    without ``--seal-payloads`` the commune is made ``--clear-payloads``."""
    base = free_port_block(validators + households + 1)
    if "--seal-payloads" not in genesis_args:
        genesis_args = ("--clear-payloads", *genesis_args)    # full household nodes (the default seals)
    done = run_cli("genesis", "new", "--name", "Testville", "--insee", TEST_INSEE,
                   "--validators", str(validators), "--households", str(households),
                   "--base-port", str(base), "--out", str(root), *genesis_args)
    if done.returncode != 0:
        raise AssertionError(f"genesis new failed: {done.stderr}")
    commune = Commune(root, validators, households)
    commune.set_params(**{"max_idle_s": FAST_IDLE_S, **params})
    return commune


@dataclass
class NodeProc:
    """One ``voisinage node run`` process; its output goes to ``<home>/node.log``."""

    name: str
    home: Path
    http_port: int
    extra: tuple[str, ...] = ()
    proc: subprocess.Popen | None = None
    exit_codes: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.home / "node.log"

    def start(self) -> NodeProc:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"{self.name} is already running")
        with open(self.log_path, "ab") as log:
            log.write(f"==== start {self.name}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [*CLI, "node", "run", "--home", str(self.home), "--http", f"127.0.0.1:{self.http_port}",
                 *self.extra],
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        return self

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.is_running():
            self.proc.send_signal(signum)

    def kill(self) -> int:
        """SIGKILL, as a power cut would."""
        self.signal(signal.SIGKILL)
        return self.wait()

    def stop(self) -> int:
        """SIGTERM and wait for a clean exit."""
        self.signal(signal.SIGTERM)
        return self.wait()

    def wait(self, timeout: float = STOP_S) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit within {timeout} s\n{self.tail()}") from None
        self.exit_codes.append(code)
        return code

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"--- {self.name}: no log"
        return f"--- {self.name} log:\n" + "\n".join(text.splitlines()[-lines:])

    def get(self, path: str) -> httpx.Response | None:
        try:
            return HTTP.get(self.url + path)
        except httpx.HTTPError:
            return None

    def get_json(self, path: str) -> Any:
        """The JSON of a 200 answer; None for any other answer or none at all."""
        response = self.get(path)
        return response.json() if response is not None and response.status_code == 200 else None

    def status(self) -> dict[str, Any] | None:
        return self.get_json("/status")

    def height(self) -> int:
        status = self.status()
        return status["height"] if status else -1

    def block(self, height: int) -> dict[str, Any] | None:
        return self.get_json(f"/blocks/{height}")

    def metric(self, name: str) -> float:
        """Sum of every sample of ``name`` (all label sets) in /metrics."""
        response = self.get("/metrics")
        if response is None:
            return -1.0
        pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", re.M)
        return sum(float(m.group(2)) for m in pattern.finditer(response.text))

    def wait_ready(self, timeout: float = STARTUP_S) -> dict[str, Any]:
        def ready():
            if not self.is_running():
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}\n{self.tail()}")
            return self.status()
        return wait_for(ready, timeout, f"{self.name} to answer /status", self.tail)


class Cluster:
    """The processes of one commune; every one still running is killed at teardown."""

    def __init__(self, commune: Commune) -> None:
        self.commune = commune
        self.nodes: dict[str, NodeProc] = {}
        self.allow_bans = False     # only a test with a rogue peer expects a ban

    def get_bans(self) -> list[str]:
        """Ban lines in the nodes' logs: honest nodes must never ban one another."""
        lines = []
        for node in self.nodes.values():
            if node.log_path.exists():
                lines += [f"{node.name}: {line}" for line in node.log_path.read_text(errors="replace").splitlines()
                          if "banned peer" in line]
        return lines

    def node(self, name: str, *extra: str) -> NodeProc:
        if name not in self.nodes:
            self.nodes[name] = NodeProc(name, self.commune.home(name), free_port(), tuple(extra))
        return self.nodes[name]

    def start(self, *names: str) -> list[NodeProc]:
        started = [self.node(name).start() for name in names]
        for node in started:
            node.wait_ready()
        return started

    @property
    def validator_names(self) -> list[str]:
        return [f"validator-{i}" for i in range(self.commune.validators)]

    @property
    def household_names(self) -> list[str]:
        return [f"household-{i}" for i in range(self.commune.households)]

    def running(self) -> list[NodeProc]:
        return [n for n in self.nodes.values() if n.is_running()]

    def logs(self) -> str:
        return "\n".join(n.tail() for n in self.nodes.values())

    def wait_height(self, height: int, nodes: list[NodeProc] | None = None,
                    timeout: float = CONVERGE_S) -> None:
        nodes = nodes if nodes is not None else self.running()
        wait_for(lambda: all(n.height() >= height for n in nodes), timeout,
                 f"height {height} on {[n.name for n in nodes]}", self.logs)

    def wait_caught_up(self, node: NodeProc, others: list[NodeProc], timeout: float = CONVERGE_S) -> int:
        """Wait until ``node`` reaches the height the highest of ``others`` has now; return it."""
        target = max(n.height() for n in others)
        wait_for(lambda: node.height() >= target, timeout, f"{node.name} to catch up to height {target}",
                 self.logs)
        return target

    def assert_agree(self, nodes: list[NodeProc] | None = None, upto: int | None = None, since: int = 1) -> int:
        """Same block id and header state hash at every height from ``since`` (a
        state-synced node has no block below its snapshot) up to the common one;
        returns that height."""
        nodes = nodes if nodes is not None else self.running()
        common = upto if upto is not None else min(n.height() for n in nodes)
        for h in range(since, common + 1):
            seen = {n.name: _block_key(n.block(h)) for n in nodes}
            assert len(set(seen.values())) == 1, f"nodes disagree at height {h}: {seen}"
        return common

    def shutdown(self) -> None:
        for node in self.running():
            node.signal(signal.SIGKILL)
        for node in self.nodes.values():
            if node.proc is not None:
                node.proc.wait(timeout=STOP_S)


def _block_key(block: dict[str, Any] | None) -> tuple[str, str] | None:
    return (block["id"], block["header"]["state_hash"]) if block else None
