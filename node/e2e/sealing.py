"""The commune data key on a running sealing e2e network (docs/privacy.md "Sealed payloads").

What the operators of a commune that seals do around a change, through the real CLI:

- ``rotate``: a new epoch of the commune data key, sealed to the latest validator set
  (``validator rotate-data-key`` by a validator holding the current epoch, one
  ``cosign-data-key`` per co-signer, ``submit-data-key``). Each household's light node
  then publishes its data key of the new epoch by itself, refuses a reading sealed under
  the old one (``wrong_epoch``: the meter reads the epoch from its node and seals anew)
  and re-seals the readings it acknowledged that the rotation overtook in flight, so
  none is lost. The load's transfers are held and drained first, and go on once every
  household's new data key is in the state: a transfer in flight would have its nonce
  spent by that data key (its node then drops it, for its sender to sign again).
- ``start_joined``: a validator added by a change holds no copy of the commune key until
  a rotation: its node starts only after it, on an empty home, by state sync from a
  snapshot taken at or after the rotation's block (its copy is in that state).
- ``retire``: a validator removed before a rotation cannot open the new epoch, so its node
  would stop at the first sealed block: its operator stops it, and the run stops
  checking it.
- ``wait_data_key``: until a household's data key of an epoch is in the validators' state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trio

from node.e2e.errors import E2EError
from node.e2e.load import LoadGen
from node.e2e.validators import get_json, key_hex, run_cli, submit_change, wait_commit_of, wait_no_pending_change
from node.home.homedir import KEY_FILE, load_home
from node.localnet.cluster import Cluster, NodeProc
from node.store.snapshots import SNAPSHOTS_DIR, list_snapshots
from tokens import layout as L

POLL_S = 0.3


@dataclass
class Rotation:
    height: int           # the block that holds the RotateDataKey
    epoch: int            # the new epoch
    keys_after_s: float   # from the commit to every household's data key of the new epoch in the state


class SealOps:
    """The commune key operations of one run on a sealing commune."""

    def __init__(self, cluster: Cluster, load: LoadGen, home: Path, limit_s: float) -> None:
        self.cluster, self.load, self.home, self.limit_s = cluster, load, home, limit_s
        # Added validators whose receive key the next rotation waits for (publish_receive_key).
        self.receive_pending: set[str] = set()
        genesis = load_home(home / "validator-0").genesis
        # Who holds a copy of the current epoch: the genesis validators, then each rotation's holders.
        self.holders = {v.key.hex() for v in genesis.validators}
        self.epoch = 0
        self.rotations: list[Rotation] = []
        # A rotation and a household joining the load take turns: each household of the
        # load seals under the epoch its data key is in.
        self.lock = trio.Lock()

    @property
    def url(self) -> str:
        return self.cluster.full_nodes[0].url

    async def fetch_epoch(self) -> int:
        doc = await get_json(self.cluster, f"{self.url}/commune")
        if doc is None or doc.get("sealing") is None:
            raise E2EError(f"{self.url}/commune says nothing of the commune data key")
        return doc["sealing"]["epoch"]

    async def has_data_key(self, addr_hex: str, epoch: int) -> bool:
        key = L.key_household_data_key(bytes.fromhex(addr_hex), epoch).hex()
        doc = await get_json(self.cluster, f"{self.url}/proofs/{key}")
        return doc is not None and doc.get("value") is not None

    async def wait_data_key(self, addr_hex: str, epoch: int) -> float:
        """Seconds until ``addr_hex``'s data key of ``epoch`` is in the validators' state."""
        start = trio.current_time()
        with trio.move_on_after(self.limit_s):
            while not await self.has_data_key(addr_hex, epoch):
                await trio.sleep(POLL_S)
            return round(trio.current_time() - start, 2)
        raise E2EError(f"no data key of epoch {epoch} for {addr_hex[:16]}… {self.limit_s:.0f} s later")

    def pick_writer(self, validators: list[str]) -> NodeProc:
        """A validator of the set in force that holds the current epoch and runs here."""
        for node in self.cluster.full_nodes:
            if node.running and key_hex(node) in self.holders and key_hex(node) in validators:
                return node
        raise E2EError("no running validator holds the current commune data key")

    async def drain_transfers(self) -> None:
        self.load.transfers_held = True
        with trio.move_on_after(self.limit_s):
            while self.load.transfers_posting or any(e.kind == "transfer" for e in self.load.pending()):
                await trio.sleep(POLL_S)
            return
        raise E2EError(f"transfers still pending {self.limit_s:.0f} s after they were held")

    async def rotate(self) -> Rotation:
        """A new epoch sealed to the latest set, once the previous change is in force."""
        await wait_no_pending_change(self.cluster, self.limit_s)
        await self.wait_receive_keys()
        basis = await get_json(self.cluster, f"{self.url}/validators/change")
        writer = self.pick_writer(basis["validators"])
        async with self.lock:
            return await self._rotate(writer, basis)

    async def _rotate(self, writer: NodeProc, basis: dict) -> Rotation:
        await self.drain_transfers()
        try:
            start = max((await self.cluster.heights()).values(), default=1)
            tx_id = await submit_change(self.cluster, ["rotate-data-key", "--key", str(writer.home / KEY_FILE)],
                                        self.home / f"rotation-{self.epoch + 1}",
                                        commands=("cosign-data-key", "submit-data-key"))
            height = await wait_commit_of(self.cluster, tx_id, start, self.limit_s)
            epoch = await self.fetch_epoch()
            if epoch != self.epoch + 1:
                raise E2EError(f"after the rotation in block {height} the epoch is {epoch}, not {self.epoch + 1}")
            self.epoch, self.holders = epoch, set(basis["latest"])
            committed = trio.current_time()
            # The meters move to the new epoch by themselves (node/e2e/load.py): nothing
            # here tells them.
            for hh in self.load.households:
                if not hh.moved_out:
                    await self.wait_data_key(hh.key.public.hex(), epoch)
            keys_after = round(trio.current_time() - committed, 2)
            # Each light node spent a nonce (its clock in ms) on its new data key.
            await self.load.read_nonces(self.cluster.full_nodes[0])
        finally:
            self.load.transfers_held = False
        rotation = Rotation(height, epoch, keys_after)
        self.rotations.append(rotation)
        return rotation

    async def retire(self, node: NodeProc) -> None:
        """Stop a removed validator's node and stop checking it."""
        await self.cluster.stop(node)
        self.cluster.remove(node)

    async def wait_snapshot(self, height: int) -> int:
        """Until every running validator serves a snapshot of ``height`` or later."""
        def best(node: NodeProc) -> int:
            return max((m.height for m in list_snapshots(node.home / SNAPSHOTS_DIR)), default=-1)

        with trio.move_on_after(self.limit_s):
            while True:
                validators = [n for n in self.cluster.full_nodes if n.running and key_hex(n) in self.holders]
                # The snapshots first, then the heights: a snapshot taken while the heights
                # were being asked (a second or more on a loaded machine) is not mistaken
                # for one at the node's top, which no header proves yet. Asked the other
                # way round, a spare waited 30 s for a snapshot at a rotation (heights
                # 114 -> 160) and then could not catch up in time.
                bests = {n.name: best(n) for n in validators}
                heights = await self.cluster.heights()
                if validators and all(height <= bests[n.name] < heights.get(n.name, 0) for n in validators):
                    return min(bests.values())
                await trio.sleep(POLL_S)
        raise E2EError(f"no snapshot at or after height {height} {self.limit_s:.0f} s after the rotation "
                       "(is snapshot_interval small enough?)")

    async def publish_receive_key(self, node: NodeProc) -> None:
        """A validator added by a change cannot run its node before a rotation gives it a
        copy: its operator publishes the receive key that copy is sealed to
        (``validator publish-receive-key``, into its home; docs/privacy.md "Receive keys").
        The next rotation waits for its block (``wait_receive_keys``), so it seals to it."""
        await run_cli("publish-receive-key", "--key", str(node.home / KEY_FILE), "--node", self.url)
        self.receive_pending.add(key_hex(node))

    async def wait_receive_keys(self) -> None:
        """Until every receive key published by ``publish_receive_key`` is in a block, unused."""
        with trio.move_on_after(self.limit_s):
            while self.receive_pending:
                doc = await get_json(self.cluster, f"{self.url}/commune")
                receive = ((doc or {}).get("sealing") or {}).get("receive") or {}
                self.receive_pending -= {k for k in self.receive_pending
                                         if (receive.get(k) or {"used": 0}).get("used") is None}
                if self.receive_pending:
                    await trio.sleep(POLL_S)
            return
        raise E2EError(f"receive keys of {sorted(k[:8] for k in self.receive_pending)} not in a block "
                       f"{self.limit_s:.0f} s after they were published")

    async def start_joined(self, spare: NodeProc, rotation_height: int) -> int:
        """Start a validator added before the rotation: state sync from a snapshot at or
        after the rotation's block. Returns that snapshot's height."""
        snapshot = await self.wait_snapshot(rotation_height)
        spare.args = ("node", "run", "--home", str(spare.home), "--http", spare.http, *self.cluster.run_args)
        await self.cluster.start(spare)
        # In the cluster from its start: stopped with the others even if the run ends
        # before it is ready (added after, a cancelled op left it running, holding its
        # ports: the next run on the machine could not listen on them).
        self.cluster.add(spare)
        self.cluster.standby.pop(spare.name, None)
        await self.cluster.wait_ready(spare, timeout=self.limit_s)
        return snapshot
