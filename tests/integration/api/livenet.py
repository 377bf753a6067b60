"""A small live commune for the API, CLI, metrics and browser tests.

One validator and two households, each a real ``voisinage node run`` process on
loopback ports found free at run time (so the tests run beside a dev localnet on
8700+). The chain clock runs ``SPEED`` times faster (dev genesis ``time_scale``),
so a half-hour interval passes in seconds. A feeder thread plays both meters:
household-0 produces more than it uses, household-1 only consumes, so after an
interval settles household-1 has used household-0's energy. Readings are posted
by the test rather than by simulated weather, so production does not depend on
the hour of day the suite runs at.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from node.clock import ChainClock
from node.home.homedir import KEY_FILE, create_network
from node.home.keyfile import load_key
from node.localnet.ports import find_port_block
from tokens.txs import MeterReading
from wire import Keypair, sign_message

REPO = Path(__file__).resolve().parents[3]
CLI = [sys.executable, "-m", "node.cli"]
SPEED = 120                 # 30 min of chain time in 15 s
STARTUP_S = 90.0
FEED_EVERY_S = 0.5          # one reading per household per 60 chain seconds
# Wh per chain minute: under the caps (6 kWc -> 100 Wh/min, 9 kVA -> 150 Wh/min).
PROFILE = {"household-0": (10, 80), "household-1": (120, 0)}   # (import, export)


def free_port_block(count: int) -> int:
    return find_port_block(count, 20_000, 60_000, scatter=True)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, logs: Callable[[], str] = lambda: "") -> Any:
    """Poll until ``predicate`` returns something truthy; fail with the logs if never."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{logs()}")
        time.sleep(0.25)


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


class Meter:
    def __init__(self, key: Keypair, serial: str, profile: tuple[int, int]) -> None:
        self.key, self.serial, self.profile = key, serial, profile
        self.seq, self.import_wh, self.export_wh = 0, 1_000, 0

    def next_reading(self, chain_id: bytes, t: int) -> bytes:
        if self.seq > 0:
            self.import_wh += self.profile[0]
            self.export_wh += self.profile[1]
        self.seq += 1
        tx = MeterReading(signer=self.key.public, meter=self.serial, seq=self.seq, t=t,
                          import_wh=self.import_wh, export_wh=self.export_wh, sig=bytes(64))
        return sign_message(tx, chain_id, self.key).encode()


class LiveNet:
    def __init__(self, root: Path, api_token: str | None = None, households: int = 2) -> None:
        """``households`` in genesis; the first two run a node and have a meter."""
        self.root = root
        base = free_port_block(8)
        self.genesis = create_network(root, name="Testville", insee="12345", validators=1, households=households,
                                      base_port=base, time_scale=SPEED, http_base=base + 4,
                                      params={"max_idle_s": 1})
        self.clock = ChainClock(self.genesis.genesis_time, SPEED)
        self.names = ["validator-0", "household-0", "household-1"]
        self.ports = {name: base + 4 + i for i, name in enumerate(self.names)}
        self.api_token = api_token
        self.procs: dict[str, subprocess.Popen] = {}
        self.readings_posted = 0
        self._stop = threading.Event()
        self._feeder: threading.Thread | None = None

    # -- who is who ----------------------------------------------------------------

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def key_path(self, name: str) -> Path:
        return self.root / name / KEY_FILE

    def address(self, name: str) -> str:
        return load_key(self.key_path(name)).public.hex()

    def home_config(self, name: str) -> dict[str, Any]:
        return json.loads((self.root / name / "config.json").read_text())

    # -- processes -------------------------------------------------------------------

    def start(self) -> LiveNet:
        for name in self.names:
            extra = ["--api-token", self.api_token] if self.api_token else []
            log = open(self.root / name / "node.log", "ab")
            self.procs[name] = subprocess.Popen(
                [*CLI, "node", "run", "--home", str(self.root / name), "--http", f"127.0.0.1:{self.ports[name]}",
                 *extra], cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
            log.close()
        for name in self.names:
            wait_for(lambda n=name: self.get_json(n, "/status"), STARTUP_S, f"{name} to answer", self.logs)
        self._feeder = threading.Thread(target=self.feed, daemon=True)
        self._feeder.start()
        wait_for(lambda: all(self.height(n) >= 1 for n in self.names), STARTUP_S, "the first block everywhere",
                 self.logs)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._feeder is not None:
            self._feeder.join(timeout=10)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        out = []
        for name in self.names:
            path = self.root / name / "node.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            out.append(f"--- {name}:\n" + "\n".join(text.splitlines()[-15:]))
        return "\n".join(out)

    # -- HTTP --------------------------------------------------------------------------

    def get(self, name: str, path: str) -> httpx.Response | None:
        try:
            return httpx.get(self.url(name) + path, timeout=5)
        except httpx.HTTPError:
            return None

    def get_json(self, name: str, path: str) -> Any:
        resp = self.get(name, path)
        return resp.json() if resp is not None and resp.status_code == 200 else None

    def height(self, name: str = "household-0") -> int:
        status = self.get_json(name, "/status")
        return status["height"] if status else -1

    # -- meters -------------------------------------------------------------------------

    def feed(self) -> None:
        """Post each household's cumulative reading every FEED_EVERY_S (60 chain s)."""
        households = {h.key: h for h in self.genesis.households}
        meters = {}
        for name, profile in PROFILE.items():
            key = load_key(self.key_path(name))
            meters[name] = Meter(key, households[key.public].meter, profile)
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                t = self.clock.now_ms() // 1000
                for name, meter in meters.items():
                    try:
                        resp = client.post(self.url(name) + "/tx", content=meter.next_reading(self.genesis.chain_id, t),
                                           headers={"content-type": "application/msgpack"})
                        self.readings_posted += resp.status_code == 202
                    except httpx.HTTPError:
                        pass
                self._stop.wait(FEED_EVERY_S)

    def wait_settled_production(self, name: str = "household-0", timeout: float = 90.0) -> dict[str, Any]:
        """The first settled interval in which ``name`` exported energy."""
        addr = self.address(name)

        def found():
            doc = self.get_json(name, f"/households/{addr}/intervals")
            rows = [r for r in (doc or {}).get("intervals", []) if r["settled"] and r["export_wh"] > 0]
            return rows[0] if rows else None
        return wait_for(found, timeout, f"a settled interval with production for {name}", self.logs)
