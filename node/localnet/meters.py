"""Simulated household meters for the localnet: signed cumulative readings every simulated minute.

Each household integrates its own power curve into cumulative import/export
indexes (Wh) and posts a signed ``MeterReading`` to its own node's ``POST /tx``.
Cumulative indexes make a lost or refused reading harmless: the next carries the
energy. The power curves come from ``node.sim.profiles``. On a commune that seals
payloads (docs/privacy.md "Sealed payloads") each reading goes sealed, as the meter
agent sends it, under the epoch of the commune data key its own node's state shows: a
rotation of the key (``validator rotate-data-key``) moves the meters to the new epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import os

import httpx
import trio

from node.clock import ChainClock
from node.home.homedir import KEY_FILE, load_household_spec
from node.home.keyfile import load_key
from node.sim.profiles import MeterSim, Weather, household_profile
from tokens.genesis import Genesis, HouseholdSpec
from tokens.sealing import build_sealed
from tokens.txs import MeterReading, Tx
from wire import Keypair, sign_message

READING_EVERY_CHAIN_S = 60
# The refusals of a sealed reading that mean "seal under the epoch the node shows now"
# (node/meter/sealing.py NEEDS_DATA_KEY; a localnet imports no meter package).
EPOCH_REFUSALS = ("wrong_epoch", "no_data_key")


@dataclass
class Meter:
    spec: HouseholdSpec
    key: Keypair
    url: str
    sim: MeterSim
    seq: int = 0
    seal_epoch: int | None = None     # the commune seals: under the data key of this epoch

    def reading(self, chain_id: bytes, t: int) -> bytes:
        """A signed cumulative reading at chain second ``t`` (sealed if the commune seals)."""
        self.seq += 1
        import_wh, export_wh = self.sim.index_at(t)
        tx = MeterReading(signer=self.key.public, meter=self.spec.meter, seq=self.seq, t=t,
                          import_wh=import_wh, export_wh=export_wh, sig=b"")
        return self.encode(tx, chain_id)

    def encode(self, tx: Tx, chain_id: bytes) -> bytes:
        """``tx`` of this household signed, and sealed on a commune that seals."""
        signed = sign_message(tx, chain_id, self.key)
        if self.seal_epoch is None:
            return signed.encode()
        return build_sealed(signed, self.key, chain_id, self.seal_epoch, os.urandom(24)).encode()


def get_seal_epoch(genesis: Genesis) -> int | None:
    """The data key epoch a household seals under from genesis on (None: no sealing)."""
    return 0 if genesis.seals_payloads else None


def is_epoch_refusal(reason: str) -> bool:
    return isinstance(reason, str) and reason.startswith(EPOCH_REFUSALS)


async def fetch_seal_epoch(client: httpx.AsyncClient, url: str) -> int | None:
    """The commune data key's epoch as the node at ``url`` holds it (None: it does not
    answer, or the chain does not seal)."""
    try:
        response = await client.get(f"{url}/commune", timeout=5)
        sealing = response.json().get("sealing") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    epoch = sealing.get("epoch") if isinstance(sealing, dict) else None
    return epoch if type(epoch) is int and epoch >= 0 else None


class MeterFleet:
    def __init__(self, genesis: Genesis, nodes: list, seed: int = 1) -> None:
        self.genesis = genesis
        self.clock = ChainClock(genesis.genesis_time, genesis.params["time_scale"])
        self.meters: list[Meter] = []
        weather = Weather.for_genesis(seed, genesis)   # one sky over the whole commune
        for index, node in enumerate(nodes):
            key = load_key(node.home / KEY_FILE)
            spec = load_household_spec(genesis, node.home)
            if spec is not None:
                profile = household_profile(seed * 1000 + index, spec.peak_w, spec.kva, weather=weather)
                sim = MeterSim(profile, start_t=genesis.genesis_time)
                self.meters.append(Meter(spec, key, node.url, sim, seal_epoch=get_seal_epoch(genesis)))
        self.sent_at: dict[str, float] = {}
        self.submitted = 0
        self.refused = 0

    async def run(self, client: httpx.AsyncClient) -> None:
        async with trio.open_nursery() as nursery:
            for meter in self.meters:
                nursery.start_soon(self._run_one, client, meter)

    async def _run_one(self, client: httpx.AsyncClient, meter: Meter) -> None:
        wall_period = self.clock.chain_to_wall_s(READING_EVERY_CHAIN_S * 1000)
        while True:
            t = self.clock.now_ms() // 1000
            data = meter.reading(self.genesis.chain_id, t)
            try:
                response = await client.post(f"{meter.url}/tx", content=data, timeout=5,
                                             headers={"content-type": "application/msgpack"})
                if response.status_code == 202:
                    self.sent_at[response.json()["id"]] = trio.current_time()
                    self.submitted += 1
                else:
                    self.refused += 1
                    if meter.seal_epoch is not None and is_epoch_refusal(response.json().get("error", "")):
                        # A rotation: the household's node publishes its new data key by
                        # itself; the next reading goes sealed under the epoch it shows.
                        epoch = await fetch_seal_epoch(client, meter.url)
                        meter.seal_epoch = meter.seal_epoch if epoch is None else epoch
            except (httpx.HTTPError, ValueError, AttributeError):
                self.refused += 1
            await trio.sleep(wall_period)
