"""A small live commune for the API, CLI, metrics and browser tests.

One validator and two households, each a real ``voisinage node run`` process
(``tests.support.nodes.NodeProc``) on loopback ports found free at run time. The
chain clock runs ``speed`` times faster (dev genesis ``time_scale``), so a half-hour
interval passes in seconds. A feeder thread plays both meters: household-0 produces
more than it uses, household-1 only consumes, so after an interval settles
household-1 has used household-0's energy. Readings are posted by the test rather than
by simulated weather, so production does not depend on the hour the suite runs at.
On a commune that seals payloads (``seal=True``) the meters seal each reading to the
commune data key, as a household's meter must there (the chain refuses a clear one:
``must_seal``), and the household nodes run light.
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from node.clock import ChainClock
from node.consent.signed import NONCE_BYTES, sign_target
from node.home.homedir import KEY_FILE, create_network, load_household_spec
from node.home.keyfile import load_key
from node.meter.sealing import ChainSealing, seal_tx
from tests.support.nodes import NodeProc, terminate_all
from tests.support.ports import free_port_block
from tests.support.wait import wait_for
from tokens.txs import MeterReading
from wire import Keypair, sign_message

SPEED = 120                 # 30 min of chain time in 15 s
STARTUP_S = 90.0
FEED_EVERY_S = 0.5          # one reading per household per 60 chain seconds
# Wh per chain minute: under the caps (6 kWc -> 100 Wh/min, 9 kVA -> 150 Wh/min).
PROFILE = {"household-0": (10, 80), "household-1": (120, 0)}   # (import, export)


class Meter:
    def __init__(self, key: Keypair, serial: str, profile: tuple[int, int]) -> None:
        self.key, self.serial, self.profile = key, serial, profile
        self.seq, self.import_wh, self.export_wh = 0, 1_000, 0

    def next_reading(self, chain_id: bytes, t: int, sealing: ChainSealing | None = None) -> bytes:
        """The next cumulative reading, signed; sealed to ``sealing`` when the chain seals."""
        if self.seq > 0:
            self.import_wh += self.profile[0]
            self.export_wh += self.profile[1]
        self.seq += 1
        tx = MeterReading(signer=self.key.public, meter=self.serial, seq=self.seq, t=t,
                          import_wh=self.import_wh, export_wh=self.export_wh, sig=bytes(64))
        signed = sign_message(tx, chain_id, self.key)
        return (signed if sealing is None else seal_tx(signed, self.key, chain_id, sealing)).encode()


class LiveNet:
    """The commune and its three processes. ``with LiveNet(root) as net:`` starts them
    all (and the feeder unless ``feed=False``) and stops them at the end; a test that
    starts nodes one by one calls ``start_nodes`` and ``stop`` itself."""

    def __init__(self, root: Path, api_token: str | None = None, speed: int = SPEED, feed: bool = True,
                 households: int = 2, seal: bool = False) -> None:
        """``households`` in genesis; the first two run a node and have a meter. ``seal``: the
        chain seals household payloads (docs/privacy.md), so household nodes run light."""
        self.root = root
        base = free_port_block(8)
        self.genesis = create_network(root, name="Testville", insee="12345", validators=1, households=households,
                                      base_port=base, time_scale=speed, http_base=base + 4,
                                      params={"max_idle_s": 1}, seal_payloads=seal)
        self.clock = ChainClock(self.genesis.genesis_time, speed)
        self.names = ["validator-0", "household-0", "household-1"]
        self.ports = {name: base + 4 + i for i, name in enumerate(self.names)}
        extra = ("--api-token", api_token) if api_token else ()
        self.nodes = {name: NodeProc(name, root / name, self.ports[name],
                                     extra + (("--light",) if seal and name.startswith("household") else ()))
                      for name in self.names}
        self.with_feeder = feed
        # The commune data key of genesis (epoch 0) the meters seal to; None: in the clear.
        sealing = self.genesis.sealing
        self.sealing = ChainSealing(0, sealing.public) if sealing is not None else None
        self._stop = threading.Event()
        self._feeder: threading.Thread | None = None

    def __enter__(self) -> LiveNet:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- who is who ----------------------------------------------------------------

    def url(self, name: str) -> str:
        return self.nodes[name].url

    def key_path(self, name: str) -> Path:
        return self.root / name / KEY_FILE

    def key(self, name: str) -> Keypair:
        return load_key(self.key_path(name))

    def address(self, name: str) -> str:
        return self.key(name).public.hex()

    def name_of(self, address: str) -> str:
        """The home whose key has this address (hex)."""
        return next(name for name in [*self.nodes, "registrar"] if self.address(name) == address)

    def meter_serial(self, name: str) -> str:
        """The meter genesis gives household ``name`` (its home's own record where the
        genesis seals it)."""
        return load_household_spec(self.genesis, self.root / name).meter

    # -- processes -------------------------------------------------------------------

    def start(self) -> LiveNet:
        self.start_nodes(*self.names)
        if self.with_feeder:
            self.start_feeder()
        wait_for(lambda: all(self.height(n) >= 1 for n in self.names), STARTUP_S, "the first block everywhere",
                 self.logs)
        return self

    def start_nodes(self, *names: str) -> None:
        """Start these nodes and wait until each answers /status."""
        for name in names:
            self.nodes[name].start()
        for name in names:
            self.nodes[name].wait_ready(STARTUP_S)

    def start_feeder(self) -> None:
        """Play both meters from now on (``feed``), in a thread ``stop`` ends."""
        self._feeder = threading.Thread(target=self.feed, daemon=True)
        self._feeder.start()

    def stop(self) -> None:
        self._stop.set()
        if self._feeder is not None:
            self._feeder.join(timeout=10)
        terminate_all(node.proc for node in self.nodes.values() if node.proc is not None)

    def logs(self) -> str:
        return "\n".join(node.tail() for node in self.nodes.values())

    # -- HTTP --------------------------------------------------------------------------

    def get(self, name: str, path: str, signer: str | None = None) -> httpx.Response | None:
        """GET ``path`` of node ``name``; ``signer``: signed by that home's key (a household
        reads its own data by its signature, docs/privacy.md)."""
        if signer is None:
            return self.nodes[name].get(path)
        headers = sign_target(self.key(signer), "GET", path, int(time.time()), secrets.token_bytes(NONCE_BYTES))
        try:
            return httpx.get(self.url(name) + path, headers=headers, timeout=10)
        except httpx.HTTPError:
            return None

    def get_json(self, name: str, path: str, signer: str | None = None) -> Any:
        """The JSON of a 200 answer; None for any other answer or none at all."""
        if signer is None:
            return self.nodes[name].get_json(path)
        response = self.get(name, path, signer)
        return response.json() if response is not None and response.status_code == 200 else None

    def status(self, name: str) -> dict[str, Any]:
        return self.nodes[name].status() or {}

    def height(self, name: str = "household-0") -> int:
        return self.nodes[name].height()

    # -- meters -------------------------------------------------------------------------

    def feed(self) -> None:
        """Post each household's cumulative reading every FEED_EVERY_S (60 chain s), sealed
        when the chain seals."""
        meters = {name: Meter(self.key(name), self.meter_serial(name), profile)
                  for name, profile in PROFILE.items()}
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                t = self.clock.now_ms() // 1000
                for name, meter in meters.items():
                    try:
                        client.post(self.url(name) + "/tx", content=meter.next_reading(self.genesis.chain_id, t, self.sealing),
                                    headers={"content-type": "application/msgpack"})
                    except httpx.HTTPError:
                        pass
                self._stop.wait(FEED_EVERY_S)

    def wait_settled_production(self, name: str = "household-0", timeout: float = 90.0) -> dict[str, Any]:
        """The first settled interval in which ``name`` exported energy."""
        return self.wait_settled(name, "export_wh", timeout)

    def wait_settled_import(self, name: str = "household-1", timeout: float = 90.0) -> dict[str, Any]:
        """The first settled interval in which ``name`` imported energy."""
        return self.wait_settled(name, "import_wh", timeout)

    def wait_settled(self, name: str, field: str, timeout: float) -> dict[str, Any]:
        addr = self.address(name)

        def found():
            doc = self.get_json(name, f"/households/{addr}/intervals", signer=name)
            rows = [r for r in (doc or {}).get("intervals", []) if r["settled"] and r[field] > 0]
            return rows[0] if rows else None
        return wait_for(found, timeout, f"a settled interval with {field} for {name}", self.logs)
