"""Load for an e2e run, and the client-side log that the checks hold the chain to.

Each household's simulated meter posts signed cumulative readings to its own node,
and the household sends small transfers (one in flight at a time, so a resubmitted
transfer never arrives after a later nonce). Every 202 goes into the ``AckLog``.

A ``Follower`` reads the chain block by block from whichever node answers and
records where each tx id was committed. Like a real meter agent, the client
resubmits an acknowledged tx that is still not committed after ``resubmit_after_s``
(same bytes, same id: a duplicate can only be refused). A reading that a later
committed reading of the same meter supersedes needs no resubmission: readings are
cumulative, so the later one carries its energy (DESIGN §4).

On a commune that seals payloads, readings and transfers go sealed (the meters'
``encode``); blocks then carry envelopes, whose signer and nonce are in clear, and
the follower opens the load's own envelopes with the household keys it drives (as a
household reads its own txs back) to tell a reading from a transfer. A household's
node re-seals under the new epoch what it acknowledged and a rotation of the commune
key overtook (node/service/lightnode.py): the same reading, in another envelope, so
another id; the follower counts it by its signer and seq (``is_resealed``). A refusal
that says the epoch moved (``wrong_epoch``, ``no_data_key``) sends the meter to the
epoch its node shows, as the meter agent does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import trio

from node.clock import ChainClock
from node.localnet.cluster import Cluster, NodeProc
from node.home.homedir import KEY_FILE, load_home, load_household_spec
from node.home.keyfile import load_key
from node.localnet.meters import Meter, fetch_seal_epoch, get_seal_epoch, is_epoch_refusal
from node.sim.profiles import MeterSim, Weather, household_profile
from tokens.sealing import open_own_sealed
from tokens.txs import Sealed, Transfer, Tx
from wire import DecodeError, Keypair
from wire.seal import SealError

MSGPACK = {"content-type": "application/msgpack"}


@dataclass
class Acked:
    tx_id: str
    kind: str              # "reading" or "transfer"
    signer: str
    seq: int               # reading seq or transfer nonce
    node: str
    acked_at: float
    data: bytes
    resubmits: int = 0


@dataclass
class AckLog:
    acked: dict[str, Acked] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    unreachable: int = 0

    def add(self, entry: Acked) -> None:
        self.acked.setdefault(entry.tx_id, entry)

    def count_refused(self, reason: str) -> None:
        key = reason.split(":")[0][:40]
        self.refused[key] = self.refused.get(key, 0) + 1


@dataclass
class Follower:
    """What the chain committed, as read through the HTTP API."""

    height: int = 0
    committed: dict[str, list[int]] = field(default_factory=dict)
    max_seq: dict[tuple[str, str], int] = field(default_factory=dict)
    commit_times: list[tuple[float, int, int]] = field(default_factory=list)   # (t, height, readings)
    # (kind, signer, seq or nonce) of the load's readings and transfers committed.
    committed_inner: set[tuple[str, str, int]] = field(default_factory=set)
    evidence: list[dict] = field(default_factory=list)
    # Household address (hex) -> key seed: opens the load's own sealed txs.
    seeds: dict[str, bytes] = field(default_factory=dict)

    def open_sealed(self, tx: dict) -> Tx | None:
        """The inner tx of one of the load's envelopes (None for anybody else's, or one
        that does not open: then it counts as no reading and no transfer of the load)."""
        seed = self.seeds.get(tx.get("signer", ""))
        if seed is None:
            return None
        envelope = Sealed(signer=bytes.fromhex(tx["signer"]), nonce=tx["nonce"], epoch=tx["epoch"],
                          mac=bytes.fromhex(tx["mac"]), box=bytes.fromhex(tx["box"]), sig=bytes.fromhex(tx["sig"]))
        try:
            return open_own_sealed(seed, envelope)
        except (SealError, DecodeError):
            return None

    def process_block(self, block: dict, now: float) -> None:
        readings = 0
        for tx in block.get("txs", []):
            self.committed.setdefault(tx["id"], []).append(block["height"])
            tag = tx.get("type")
            if tag == "tx/sealed":
                inner = self.open_sealed(tx)
                tag = None if inner is None else inner.TAG
            kind = {"tx/reading": "reading", "tx/transfer": "transfer"}.get(tag)
            if kind is not None:
                seq = tx["seq"] if kind == "reading" and "seq" in tx else tx["nonce"]
                key = (kind, tx["signer"])
                self.max_seq[key] = max(seq, self.max_seq.get(key, 0))
                self.committed_inner.add((kind, tx["signer"], seq))
                readings += kind == "reading"
        self.evidence += block.get("evidence", [])
        self.height = block["height"]
        self.commit_times.append((now, block["height"], readings))

    def is_superseded(self, entry: Acked) -> bool:
        return entry.kind == "reading" and self.max_seq.get((entry.kind, entry.signer), 0) > entry.seq

    def is_resealed(self, entry: Acked) -> bool:
        """Its envelope never committed, but the same tx did in another one (its node
        re-sealed it after a rotation of the commune key)."""
        return entry.tx_id not in self.committed and (entry.kind, entry.signer, entry.seq) in self.committed_inner

    def is_done(self, entry: Acked) -> bool:
        """Committed, in its envelope or re-sealed, or superseded."""
        return entry.tx_id in self.committed or self.is_resealed(entry) or self.is_superseded(entry)

    async def run(self, cluster: Cluster) -> None:
        while True:
            progressed = False
            for node in cluster.nodes:
                if node.running and not node.paused:
                    progressed = await self._follow(cluster.client, node) or progressed
            await trio.sleep(0.05 if progressed else 0.2)

    async def _follow(self, client: httpx.AsyncClient, node: NodeProc) -> bool:
        progressed = False
        try:
            while True:
                response = await client.get(f"{node.url}/blocks/{self.height + 1}", timeout=3)
                if response.status_code != 200:
                    return progressed
                self.process_block(response.json(), trio.current_time())
                progressed = True
        except (httpx.HTTPError, ValueError, KeyError):
            return progressed


class Household:
    """One household of the load: its meter, its key (which membership ops may change) and
    the node its txs go to. ``paused`` holds its load while a membership op runs."""

    def __init__(self, node: NodeProc, meter: Meter, key: Keypair, chain_id: bytes, name: str | None = None) -> None:
        self.node, self.meter, self.key, self.chain_id = node, meter, key, chain_id
        self.name = name or node.name
        self.nonce = 0
        self.last_t = 0
        self.pending_transfer: Acked | None = None
        self.paused = False
        self.moved_out = False     # deregistered: its load is off for good

    def switch_key(self, key: Keypair) -> None:
        """Sign from now on with ``key`` (a rotation, a recovery, a new occupant)."""
        self.key = self.meter.key = key


class LoadGen:
    def __init__(self, cluster: Cluster, households: list[NodeProc], seed: int, readings_per_s: float,
                 transfer_every_s: float, resubmit_after_s: float) -> None:
        self.cluster = cluster
        genesis = load_home(households[0].home).genesis
        self.genesis = genesis
        self.clock = ChainClock(genesis.genesis_time, genesis.params["time_scale"])
        weather = Weather.for_genesis(seed, genesis)
        self.households: list[Household] = []
        seal_epoch = get_seal_epoch(genesis)
        for index, node in enumerate(households):
            key = load_key(node.home / KEY_FILE)
            spec = load_household_spec(genesis, node.home)
            sim = MeterSim(household_profile(seed * 1000 + index, spec.peak_w, spec.kva, weather=weather),
                           start_t=genesis.genesis_time)
            self.households.append(Household(node, Meter(spec, key, node.url, sim, seal_epoch=seal_epoch), key,
                                             genesis.chain_id))
        self.readings_per_s, self.transfer_every_s = readings_per_s, transfer_every_s
        self.resubmit_after_s = resubmit_after_s
        self.log = AckLog()
        self.follower = Follower(seeds={hh.key.public.hex(): hh.key.seed for hh in self.households})
        self.resubmitted = 0
        # No new transfer while set (a rotation of the commune data key, node/e2e/sealing.py).
        self.transfers_held = False
        self.transfers_posting = 0   # transfers posted and not yet answered
        self._nursery: trio.Nursery | None = None

    async def read_nonces(self, node: NodeProc) -> None:
        """Each household's next transfer nonce from its committed account nonce, as
        ``node`` (a full node) has it: on a sealing commune the household's node already
        spent a nonce (its clock in ms) on the data key."""
        for hh in self.households:
            response = await self.cluster.client.get(f"{node.url}/accounts/{hh.key.public.hex()}", timeout=5)
            response.raise_for_status()
            hh.nonce = max(hh.nonce, response.json()["nonce"])

    async def post(self, node: NodeProc, data: bytes) -> tuple[int, str]:
        """(status, id or reason); status 0 when the node could not be reached."""
        if not node.running or node.paused:
            return 0, "node down"
        try:
            response = await self.cluster.client.post(f"{node.url}/tx", content=data, headers=MSGPACK, timeout=3)
            body = response.json()
        except (httpx.HTTPError, ValueError):
            return 0, "unreachable"
        return response.status_code, body.get("id") or body.get("error", "")

    async def submit(self, hh: Household, data: bytes, kind: str, seq: int) -> Acked | None:
        status, text = await self.post(hh.node, data)
        if status == 202:
            entry = Acked(text, kind, hh.key.public.hex(), seq, hh.node.name, trio.current_time(), data)
            self.log.add(entry)
            return entry
        if status == 0:
            self.log.unreachable += 1
        else:
            self.log.count_refused(text)
            if hh.meter.seal_epoch is not None and is_epoch_refusal(text):
                # A rotation of the commune key: seal from now on under the epoch the
                # household's node shows (it publishes the household's new data key itself).
                epoch = await fetch_seal_epoch(self.cluster.client, hh.node.url)
                hh.meter.seal_epoch = hh.meter.seal_epoch if epoch is None else epoch
        return None

    async def run_readings(self, hh: Household) -> None:
        period = 1 / self.readings_per_s
        while True:
            t = self.clock.now_ms() // 1000
            if t > hh.last_t and not hh.paused:   # DESIGN §4: a meter's t must rise
                hh.last_t = t
                data = hh.meter.reading(hh.chain_id, t)
                await self.submit(hh, data, "reading", hh.meter.seq)
            await trio.sleep(period)

    async def run_transfers(self, hh: Household, to: Household) -> None:
        while True:
            await trio.sleep(self.transfer_every_s)
            pending = hh.pending_transfer
            held = hh.paused or to.paused or self.transfers_held
            if held or (pending is not None and not self.follower.is_done(pending)):
                continue
            hh.nonce += 1
            tx = Transfer(signer=hh.key.public, nonce=hh.nonce, to=to.key.public, cls="kwh", amount=1, memo="e2e",
                          sig=b"")
            self.transfers_posting += 1
            try:
                entry = await self.submit(hh, hh.meter.encode(tx, hh.chain_id), "transfer", hh.nonce)
            finally:
                self.transfers_posting -= 1
            if entry is None:
                hh.nonce -= 1   # refused or unreachable: the same nonce is free for the next try
            hh.pending_transfer = entry

    async def run_resubmitter(self) -> None:
        by_name = self.cluster.by_name
        while True:
            await trio.sleep(1.0)
            now = trio.current_time()
            for entry in list(self.log.acked.values()):
                if self.follower.is_done(entry) or now - entry.acked_at < self.resubmit_after_s * (entry.resubmits + 1):
                    continue
                status, _ = await self.post(by_name[entry.node], entry.data)
                if status in (202, 400):
                    entry.resubmits += 1
                    self.resubmitted += 1

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            for i, hh in enumerate(self.households):
                nursery.start_soon(self.run_readings, hh)
                if self.transfer_every_s > 0 and len(self.households) > 1:
                    nursery.start_soon(self.run_transfers, hh, self.households[(i + 1) % len(self.households)])
            nursery.start_soon(self.run_resubmitter)

    def add_household(self, hh: Household) -> None:
        """A household registered during the run: its readings start now, and the
        follower opens its sealed ones (a reading dropped is then seen superseded)."""
        self.households.append(hh)
        self.follower.seeds[hh.key.public.hex()] = hh.key.seed
        if self._nursery is not None:
            self._nursery.start_soon(self.run_readings, hh)

    def pending(self) -> list[Acked]:
        """Acknowledged txs neither committed nor superseded yet."""
        return [e for e in self.log.acked.values() if not self.follower.is_done(e)]
