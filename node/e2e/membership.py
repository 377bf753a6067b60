"""Membership events of an e2e run, through the real CLI (DESIGN §12, docs/operations.md).

Each op acts on one household of the load generator while the others keep their load
on: it pauses that household's load, waits until everything it had acknowledged is
committed (so a key change loses nothing), runs the registrar's or the household's
command as a separate ``voisinage`` process, waits for the chain to show the change,
then resumes the household's load under its new key:

- ``register``: a new household, not in genesis: its key made with ``keys new``, its
  own node started with ``node join`` (no genesis regeneration) and, once the registrar
  registered it with a fresh meter and PRM, its readings going to that node;
- ``rotate_household``: the household moves to a new key it co-signs (``keys rotate``);
- ``recover_household``: the registrar re-binds it to a new key (``registrar recover``);
  the move completes after the genesis ``recovery_delay_s``;
- ``deregister``: the household moves out; its load stops;
- ``reregister``: the next occupant registers on the same meter and PRM with a new key.

On a commune that seals (``sealing`` set, node/e2e/sealing.py) the new household's node
joins light (``node join`` on a sealing genesis), publishes its data key by itself
once it sees its registration, and its meter seals under the current epoch from the
block that holds that key; changes are read on a validator's node, which holds the
household's record (a light node holds only its proven entries). A household moved to a
new key (rotate_household, recover_household) restarts its light node with the new key
file in its home, as its owner does (docs/privacy.md "Moving a household to a new key"):
the node publishes the new key's data key, and the meter seals under it from the block
that holds it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from node.e2e.errors import E2EError
from node.e2e.load import Household, LoadGen
from node.e2e.validators import fetch_listen_addr, find_free_ports, run_voisinage
from node.home.homedir import GENESIS_FILE, KEY_FILE
from node.home.keyfile import load_key, save_key
from node.localnet.cluster import Cluster, NodeProc
from node.localnet.meters import Meter
from node.sim.profiles import MeterSim, household_profile
from tokens.genesis import HouseholdSpec

if TYPE_CHECKING:
    from node.e2e.sealing import SealOps

POLL_S = 0.2


@dataclass
class MembershipEvent:
    op: str
    household: str
    old_key: str | None
    new_key: str | None
    seen_after_s: float         # from the command's exit to the change visible on the node
    joined_from: int | None = None  # register: the snapshot height its node state-synced from
    # On a sealing commune: register, its data key in the state after its registration was
    # seen; rotate_household, recover_household, the new key's after its node's restart.
    data_key_after_s: float | None = None


async def fetch_household(cluster: Cluster, node: NodeProc, key_hex: str) -> dict[str, Any] | None:
    response = await cluster.client.get(f"{node.url}/accounts/{key_hex}", timeout=5)
    return response.json().get("household") if response.status_code == 200 else None


async def wait_household(cluster: Cluster, node: NodeProc, key_hex: str, present: bool, limit_s: float) -> float:
    """Seconds until ``key_hex`` is (or is no longer) a household on ``node``."""
    start = trio.current_time()
    with trio.move_on_after(limit_s):
        while (await fetch_household(cluster, node, key_hex) is not None) != present:
            await trio.sleep(POLL_S)
        return round(trio.current_time() - start, 2)
    raise E2EError(f"{key_hex[:16]}… still {'not ' if present else ''}a household after {limit_s:.0f} s")


async def quiesce(load: LoadGen, hh: Household, limit_s: float) -> None:
    """Pause the household's load and wait until all it had acknowledged is committed."""
    hh.paused = True
    signer = hh.key.public.hex()
    with trio.move_on_after(limit_s):
        while any(e.signer == signer for e in load.pending()):
            await trio.sleep(POLL_S)
        return
    raise E2EError(f"{hh.node.name}: acknowledged txs still pending after {limit_s:.0f} s")


async def make_key_file(work: Path, name: str):
    """A new key made as a household makes it on its own box: ``voisinage keys new``."""
    path = work / f"{name}.json"
    public = await run_voisinage("keys", "new", "--out", str(path))
    key = load_key(path)
    if key.public.hex() != public:
        raise E2EError(f"keys new printed {public[:16]}… but wrote {key.public.hex()[:16]}…")
    return key, path


class Membership:
    """The membership ops of one run; ``events`` is what the report shows."""

    def __init__(self, cluster: Cluster, load: LoadGen, home: Path, limit_s: float) -> None:
        self.cluster, self.load, self.limit_s, self.home = cluster, load, limit_s, home
        self.work = home / "membership"
        self.work.mkdir(exist_ok=True)
        self.registrar_key = home / "registrar" / KEY_FILE
        self.events: list[MembershipEvent] = []
        self.moved_out: dict[str, HouseholdSpec] = {}
        self.registered = 0
        self.sealing: SealOps | None = None
        # One registrar, one nonce sequence: its commands run one at a time.
        self.lock = trio.Lock()

    def household(self, name: str) -> Household:
        for hh in self.load.households:
            if hh.name == name:
                return hh
        raise E2EError(f"no household {name!r} in the load")

    async def run(self, op: str, name: str) -> MembershipEvent:
        handler = {"register": self.register, "rotate_household": self.rotate, "recover_household": self.recover,
                   "deregister": self.deregister, "reregister": self.reregister}[op]
        async with self.lock:
            event = await handler(name)
        self.events.append(event)
        return event

    def watcher(self, node: NodeProc) -> NodeProc:
        """Where a change is read: the household's own node, or on a sealing commune a
        validator's (a light node serves only its own proven entries)."""
        return node if self.sealing is None else self.cluster.full_nodes[0]

    def _registrar(self, command: str, *args: str, node: NodeProc) -> list[str]:
        return ["registrar", command, "--key", str(self.registrar_key), "--node", node.url, *args]

    async def join(self, name: str, key_file: Path) -> NodeProc:
        """Start a household's own node with ``node join``: a copy of the genesis, a peer,
        its key; it syncs the chain from the running network."""
        # Above every port of the network, spares not started yet included.
        p2p, http = find_free_ports(self.cluster.nodes + list(self.cluster.standby.values()), 1)
        peer = await fetch_listen_addr(self.cluster, self.cluster.nodes[0])
        home = self.home / name
        # On a sealing commune ``node join`` runs it light, as a household's node there must.
        node = NodeProc(len(self.cluster.nodes), name, home, f"127.0.0.1:{http}", light=self.sealing is not None,
                        args=(
            "node", "join", "--genesis", str(self.home / GENESIS_FILE), "--peer", peer, "--home", str(home),
            "--key", str(key_file), "--listen", f"/ip4/127.0.0.1/tcp/{p2p}", "--http", f"127.0.0.1:{http}",
            "--name", name))
        await self.cluster.start(node)
        # In the cluster once ready (other ops read the key of each node's home, which
        # ``node join`` writes only as it starts); stopped here if the run ends first.
        try:
            await self.cluster.wait_ready(node)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.cluster.stop(node)
            raise
        self.cluster.add(node)
        return node

    @staticmethod
    def find_snapshot_installed(node: NodeProc) -> int | None:
        """The height of the snapshot a joined node installed, from its log (None: it
        replayed from genesis). Its HTTP API answers only once the join is over."""
        found = re.search(rb"state installed at height (\d+)", (node.home / "node.log").read_bytes())
        return int(found.group(1)) if found else None

    async def register(self, name: str | None) -> MembershipEvent:
        self.registered += 1
        n = self.registered
        name = f"member-{n}"
        key, key_file = await make_key_file(self.work, name)
        node = await self.join(name, key_file)
        joined_from = self.find_snapshot_installed(node)
        spec = HouseholdSpec(key=key.public, meter=f"0299{n:08d}", prm=f"39999{n:09d}", label=f"Nouveau {n}",
                             kva=6, peak_w=3000)
        await run_voisinage(*self._registrar("register", "--household-pub", key.public.hex(), "--meter", spec.meter,
                                             "--prm", spec.prm, "--label", spec.label, "--kva", "6", "--kwc", "3",
                                             node=self.cluster.nodes[0]))
        # Seen on its own node: it has synced the block that registered it.
        seen = await wait_household(self.cluster, self.watcher(node), key.public.hex(), True, self.limit_s)
        sim = MeterSim(household_profile(1000 + n, spec.peak_w, spec.kva), start_t=self.load.genesis.genesis_time)
        if self.sealing is None:
            self.load.add_household(Household(node, Meter(spec, key, node.url, sim), key,
                                              self.load.genesis.chain_id, name=name))
            return MembershipEvent("register", name, None, key.public.hex(), seen, joined_from)
        async with self.sealing.lock:
            # Its light node publishes its data key once it sees its record.
            epoch = self.sealing.epoch
            keyed = await self.sealing.wait_data_key(key.public.hex(), epoch)
            self.load.add_household(Household(node, Meter(spec, key, node.url, sim, seal_epoch=epoch), key,
                                              self.load.genesis.chain_id, name=name))
        return MembershipEvent("register", name, None, key.public.hex(), seen, joined_from, keyed)

    async def _move(self, hh: Household, op: str, command: list[str], new_key) -> MembershipEvent:
        old = hh.key.public.hex()
        await quiesce(self.load, hh, self.limit_s)
        await run_voisinage(*command)
        seen = await wait_household(self.cluster, self.watcher(hh.node), new_key.public.hex(), True, self.limit_s)
        keyed = None if self.sealing is None else await self.restart_with_key(hh, new_key)
        hh.switch_key(new_key)
        if self.sealing is not None:
            # The new key's node spent a nonce (its clock in ms) on its data key; the
            # follower opens the new key's envelopes as the household reads its own.
            await self.load.read_nonces(self.watcher(hh.node))
            self.load.follower.seeds[new_key.public.hex()] = new_key.seed
        hh.paused = False
        return MembershipEvent(op, hh.name, old, new_key.public.hex(), seen, data_key_after_s=keyed)

    async def restart_with_key(self, hh: Household, key) -> float:
        """On a sealing commune: the household's light node follows the key file of its
        home. Stopped, given the new key, started again, it drops the former key's entries,
        follows the new key's and publishes its data key; the meter seals under the epoch
        of that key. Seconds from the restart to the key in the validators' state."""
        await self.cluster.stop(hh.node)
        save_key(hh.node.home / KEY_FILE, key, overwrite=True)
        await self.cluster.start(hh.node)
        await self.cluster.wait_ready(hh.node)
        async with self.sealing.lock:
            epoch = self.sealing.epoch
            keyed = await self.sealing.wait_data_key(key.public.hex(), epoch)
            hh.meter.seal_epoch = epoch
        return keyed

    async def rotate(self, name: str) -> MembershipEvent:
        hh = self.household(name)
        new_key, new_file = await make_key_file(self.work, f"{name}-rotated")
        old_file = self.work / f"{name}-old.json"
        save_key(old_file, hh.key, overwrite=True)
        command = ["keys", "rotate", "--key", str(old_file), "--new-key", str(new_file), "--node", hh.node.url]
        return await self._move(hh, "rotate_household", command, new_key)

    async def recover(self, name: str) -> MembershipEvent:
        hh = self.household(name)
        new_key, _ = await make_key_file(self.work, f"{name}-recovered")
        command = self._registrar("recover", "--household-pub", hh.key.public.hex(),
                                  "--new-pub", new_key.public.hex(), node=self.watcher(hh.node))
        return await self._move(hh, "recover_household", command, new_key)

    async def deregister(self, name: str) -> MembershipEvent:
        hh = self.household(name)
        old = hh.key.public.hex()
        await quiesce(self.load, hh, self.limit_s)
        await run_voisinage(*self._registrar("deregister", "--household-pub", old, "--memo", "e2e move",
                                             node=hh.node))
        seen = await wait_household(self.cluster, self.watcher(hh.node), old, False, self.limit_s)
        self.moved_out[name] = hh.meter.spec
        hh.moved_out = True
        return MembershipEvent("deregister", name, old, None, seen)

    async def reregister(self, name: str) -> MembershipEvent:
        hh, spec = self.household(name), self.moved_out.pop(name, None)
        if spec is None:
            raise E2EError(f"reregister {name}: it has not moved out")
        new_key, _ = await make_key_file(self.work, f"{name}-next")
        await run_voisinage(*self._registrar(
            "register", "--household-pub", new_key.public.hex(), "--meter", spec.meter, "--prm", spec.prm,
            "--label", f"{spec.label} (suite)", "--kva", str(spec.kva), "--kwc", str(spec.peak_w / 1000),
            node=hh.node))
        seen = await wait_household(self.cluster, hh.node, new_key.public.hex(), True, self.limit_s)
        hh.meter.spec = replace(spec, key=new_key.public)
        hh.switch_key(new_key)
        hh.paused = hh.moved_out = False
        return MembershipEvent("reregister", name, None, new_key.public.hex(), seen)
