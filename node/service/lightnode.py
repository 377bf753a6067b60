"""A household node in light mode: ``node run --light`` (docs/privacy.md "Household nodes").

It follows the chain by verified headers and keeps only its own entries and the public
ones it shows, proven against the headers' state roots (lightclient.py); it never
downloads a block body, applies a block or holds another household's state. It
serves the same HTTP API and dashboard (node/api/) over its light store, so the
household's balance, curve, consents and Data Connect routes work as on a full node.

On a commune that seals payloads (docs/privacy.md "Sealed payloads") it publishes the
household's data key of each epoch by itself, refuses a sealed tx of its household that
the validators would ignore (``wrong_epoch``, ``no_data_key``: the meter agent then seals
anew), and re-seals under the new epoch the txs it acknowledged that a rotation of the
commune key overtook in flight, so no acknowledged reading is lost to a rotation.

Gossip: it hears validators' heartbeats only. It does not subscribe to the consensus
topic (a proposal carries a whole block, everybody's txs) nor to the tx topic; its
own txs go out by gossipsub's fanout and directly to the validators, as a full
household node's do, and are gossiped again until its own state shows them committed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import trio

from node.api.app import TxRefused
from node.clock import ChainClock
from node.home.homedir import Home, home_key, load_home
from node.net import (
    BlocksPruned, NetError, NetSettings, TopicKind, Verdict, genesis_peer_addrs, open_network,
)
from node.service.errors import ServiceError
from node.service.heartbeat import HeartbeatBook
from node.service.lightclient import LightClient
from node.service.mempool import Duplicate, Mempool, MempoolFull, get_pending_nonce
from node.service.node import get_common_status
from node.service.metrics import Metrics
from node.service.roles import get_validator_addrs
from node.service.upgrades import check_fork, check_software_version, get_fork
from node.store.backup import iter_store_backup
from node.store.light import LightStore
from node.store.pruning import PRUNE_EVERY
from tokens import MemoryKV, genesis_writes, get_state_hash
from tokens import layout as TL
from tokens.kv import decode_value
from tokens.queries import get_validator_set
from tokens.statetree import is_proven_key
from tokens.sealing import build_sealed, build_set_data_key, open_own_sealed
from tokens.txs import CommuneSealed, MeterReading, Sealed, SealedCosigned, SetDataKey, Tx, decode_tx
from tokens.visibility import is_readable_by
from wire import DecodeError, compute_id, verify_message
from wire.seal import SealError

log = logging.getLogger("voisinage.light")

PENDING_CHECK_S = 30.0      # own txs not yet in its state are gossiped again this often
# ... looked at this often, so one goes again between PENDING_CHECK_S and PENDING_CHECK_S
# + PENDING_TICK_S after it arrived (a 30 s tick sent some only after 60 s).
PENDING_TICK_S = 5.0
MAX_PENDING_S = 3600.0      # ... and given up after this long
# At start, the data key goes out once a peer is connected and this long has passed
# for gossipsub to learn which topics it follows.
FIRST_GOSSIP_DELAY_S = 2.0


@dataclass
class LightEngine:
    """What the API reads of a consensus engine; a light node runs none."""

    round: int = 0

    def get_step_name(self) -> str:
        return "light"


class LightNode:
    """The HTTP API's node (node.api.app.NodeAPI) over a light store."""

    def __init__(self, home: Home, store: LightStore, archive_keep_s: int = 0) -> None:
        self.home, self.store = home, store
        self.genesis = home.genesis
        self.chain_id = self.genesis.chain_id
        self.key = home_key(home)
        self.clock = ChainClock(self.genesis.genesis_time, self.genesis.params["time_scale"])
        self.engine = LightEngine()
        self.heartbeats = HeartbeatBook(self.chain_id, self.clock.now_ms, self.genesis.params["time_scale"])
        self.pending = Mempool()
        self._sent_again: dict[bytes, float] = {}      # pending tx id -> when last gossiped again
        self.metrics = Metrics()
        self.archive_keep_s = archive_keep_s
        self.net = None
        self.client: LightClient | None = None
        self._nursery: trio.Nursery | None = None
        self._stored = trio.Event()
        self.metrics.height.set(store.height())

    # ---- gossip ----

    def on_heartbeat(self, peer: str, data: bytes) -> Verdict:
        state = self.store.state
        return self.heartbeats.check(data, get_validator_set(state, self.store.height() + 1),
                                     lambda key: state.get(TL.VALIDATOR + key) is not None)

    # ---- own txs ----

    def check_tx(self, data: bytes) -> Tx:
        """What a light node can check alone: the encoding, the signatures and, for a
        sealed tx, the epoch and its household's data key as its proven state shows
        them. The validators judge the rest against the whole state."""
        tx = decode_tx(data)
        if tx.SIGNERS and not verify_message(tx, self.chain_id):
            raise TxRefused("bad_signature: a signature does not verify")
        self.check_sealing(tx)
        self.check_own_nonce(tx)
        return tx

    def open_own(self, tx: Tx) -> Tx | None:
        """``tx`` as its household signed it: its own envelope opened (it holds the key:
        docs/privacy.md), another's tx as it is; None for an envelope that does not open."""
        if isinstance(tx, (Sealed, SealedCosigned)) and tx.signer == self.key.public:
            try:
                return open_own_sealed(self.key.seed, tx)
            except (SealError, DecodeError):
                return None
        return tx

    def check_own_nonce(self, tx: Tx) -> None:
        """A tx of its own household whose nonce its proven state shows spent: a validator
        only ignores it (it may be a copy of one committed), so accepted here it would be
        acknowledged and never committed, and nobody told."""
        if getattr(tx, "signer", None) != self.key.public:
            return
        inner = self.open_own(tx)
        if inner is None or isinstance(inner, MeterReading) or type(getattr(inner, "nonce", None)) is not int:
            return
        committed = self.get_committed_nonce()
        if inner.nonce <= committed:
            raise TxRefused(f"stale_nonce: nonce {inner.nonce} is not above this household's last one, "
                            f"{committed} (height {self.store.height()})")

    def get_pending_nonce(self, addr: bytes) -> int | None:
        """GET /accounts' ``pending_nonce``: the highest nonce of its household's txs this
        node took and has not seen in a block yet (its proven state trails the chain by
        a height or two: a nonce picked above the committed one alone may already be
        spent by one of them)."""
        if addr != self.key.public:
            return None
        return get_pending_nonce(self.pending, addr, self.open_own)

    def check_sealing(self, tx: Tx) -> None:
        """docs/privacy.md: the refusals a validator would give at once, given here so the
        sender learns of a rotation. A validator only ignores such a tx (a state wait):
        accepted here, it would be acknowledged and never committed, and a meter agent
        that is never refused would seal under the old epoch for good."""
        state = self.store.state
        raw = state.get(TL.META_DATA_EPOCH)
        if raw is None:
            return
        current, own = decode_value(raw), self.key.public
        if isinstance(tx, SetDataKey) and tx.signer == own and (
                state.get(TL.key_household_data_key(own, tx.epoch)) is not None
                or self.find_pending_data_key(tx.epoch) is not None):
            raise TxRefused(f"data_key_exists: this household's node already published its data key of epoch "
                            f"{tx.epoch}")
        if not isinstance(tx, (Sealed, SealedCosigned, CommuneSealed)):
            return
        if tx.epoch != current:
            raise TxRefused(f"wrong_epoch: sealed under epoch {tx.epoch}; the commune data key is at epoch "
                            f"{current}")
        if tx.signer == own and not isinstance(tx, CommuneSealed) and \
                state.get(TL.key_household_data_key(own, current)) is None:
            raise TxRefused(f"no_data_key: this household's data key of epoch {current} is not in a block yet "
                            "(its node has published it)")

    def _take(self, data: bytes) -> tuple[bytes, TxRefused | None]:
        tx_id = compute_id(data)
        try:
            self.pending.add(data, self.check_tx)
        except Duplicate:
            pass
        except MempoolFull as exc:
            return tx_id, TxRefused(str(exc), 503)
        except DecodeError as exc:
            return tx_id, TxRefused(f"malformed: {exc.reason}")
        except TxRefused as exc:
            return tx_id, exc
        return tx_id, None

    def submit_tx(self, data: bytes) -> bytes:
        tx_id, refused = self._take(data)
        if refused is not None:
            raise refused
        self._gossip([data])
        return tx_id

    def submit_txs(self, txs: Sequence[bytes]) -> list[tuple[bytes, TxRefused | None]]:
        results = [self._take(data) for data in txs]
        self._gossip([data for data, (_, refused) in zip(txs, results) if refused is None])
        return results

    async def submit_batch(self, txs: Sequence[bytes]) -> list[tuple[bytes, TxRefused | None]]:
        """``submit_txs`` on this thread: a light node takes only its own household's few txs."""
        return self.submit_txs(txs)

    def _gossip(self, txs: list[bytes]) -> None:
        if txs and self.net is not None and self._nursery is not None:
            self._nursery.start_soon(self._publish_txs, txs)

    async def _publish_txs(self, txs: list[bytes]) -> None:
        for data in txs:
            try:
                await self.net.publish(TopicKind.TX, data)
            except NetError as exc:
                log.warning("could not gossip a tx: %s", exc)

    def is_committed(self, tx: Tx) -> bool | None:
        """Whether the household's own state shows ``tx`` committed (or overtaken by a
        later one); None for a tx of another signer, which it cannot see."""
        own = self.key.public
        if getattr(tx, "signer", None) != own:
            return None
        tx = self.open_own(tx)
        if tx is None:
            return None
        state = self.store.state
        if isinstance(tx, MeterReading):
            raw = state.get(TL.key_household(own))
            return raw is not None and decode_value(raw)[TL.HH_SEQ] >= tx.seq
        raw = state.get(TL.key_account(own))
        return raw is not None and decode_value(raw)[TL.A_NONCE] >= getattr(tx, "nonce", 0)

    def recheck_pending(self, now: float) -> tuple[int, int]:
        """(gossiped again, dropped): own txs now committed are dropped, and so is
        anything older than MAX_PENDING_S; the rest waiting PENDING_CHECK_S goes out again."""
        done, again = [], []
        for entry in self.pending.entries():
            committed = self.is_committed(entry.tx)
            if committed or now - entry.arrived > MAX_PENDING_S or (committed is None and
                                                                   now - entry.arrived > PENDING_CHECK_S):
                done.append(entry.id)
            elif now - self._sent_again.get(entry.id, entry.arrived) > PENDING_CHECK_S:
                again.append(entry.data)
                self._sent_again[entry.id] = now
        self.pending.remove(done)
        for tx_id in [t for t in self._sent_again if t not in self.pending]:
            del self._sent_again[tx_id]
        self._gossip(again)
        self.metrics.mempool_txs.set(len(self.pending))
        return len(again), len(done)

    async def publish_data_key_at_start(self) -> None:
        """A new sealing commune makes no block before something is due (docs/cadence.md),
        and the household's sealed txs wait for its data key: the key goes out at start,
        from the genesis state it holds, not only after a new state."""
        while self.net is None or not self.net.peers():
            await trio.sleep(0.5)
        await trio.sleep(FIRST_GOSSIP_DELAY_S)
        self.publish_data_key()

    async def keep_pending_moving(self) -> None:
        while True:
            await trio.sleep(PENDING_TICK_S)
            self.recheck_pending(time.monotonic())

    # ---- after each step of the client ----

    def notify_stored(self) -> None:
        height = self.store.height()
        self.metrics.height.set(height)
        check_software_version(self.store.state, height)
        if self.archive_keep_s and height % PRUNE_EVERY == 0:
            time_ms = decode_value(self.store.state.get(TL.META_TIME) or b"\x00")
            self.store.prune_archive(time_ms // 1000 - self.archive_keep_s)
        self.publish_data_key()
        self.reseal_pending()
        self._stored.set()
        self._stored = trio.Event()

    def find_pending_data_key(self, epoch: int) -> SetDataKey | None:
        """This household's SetDataKey of ``epoch`` waiting for a block here."""
        own = self.key.public
        for entry in self.pending.entries():
            if isinstance(entry.tx, SetDataKey) and entry.tx.signer == own and entry.tx.epoch == epoch:
                return entry.tx
        return None

    def get_committed_nonce(self) -> int:
        acct = self.store.state.get(TL.key_account(self.key.public))
        return decode_value(acct)[TL.A_NONCE] if acct else 0

    def get_missing_data_key(self) -> SetDataKey | None:
        """docs/privacy.md: on a chain that seals payloads, the household's data key of the
        current epoch when the proven state shows none (after registration, after a
        rotation) and none waits for a block here (one that a later nonce overtook left
        the pending txs: it goes again). The registrar who registered it never sees it:
        the node sends it."""
        state, own = self.store.state, self.key.public
        raw = state.get(TL.META_DATA_EPOCH)
        if raw is None or not self.is_registered(state, own):
            return None
        epoch = decode_value(raw)
        dkey = state.get(TL.key_data_key(epoch))
        if dkey is None or state.get(TL.key_household_data_key(own, epoch)) or self.find_pending_data_key(epoch):
            return None
        nonce = max(self.clock.now_ms(), self.get_committed_nonce() + 1)
        return build_set_data_key(self.key, self.chain_id, nonce, epoch, decode_value(dkey)[0], os.urandom(32))

    def is_registered(self, state, own: bytes) -> bool:
        """Its record in the proven state, or, before the first header on a genesis that
        seals its households, its key among them (the record comes proven later)."""
        if state.get(TL.key_household(own)) is not None:
            return True
        return self.store.height() == 0 and any(h.key == own for h in self.genesis.households)

    def publish_data_key(self) -> None:
        tx = self.get_missing_data_key()
        if tx is None:
            return
        tx_id, refused = self._take(tx.encode())
        if refused is None:
            log.info("published this household's data key of epoch %d (tx %s)", tx.epoch, tx_id.hex()[:16])
            self._gossip([tx.encode()])
        else:
            log.warning("could not publish this household's data key of epoch %d: %s", tx.epoch, refused)

    def reseal_pending(self) -> tuple[int, int]:
        """(re-sealed, dropped): the household's own pending envelopes sealed under an
        epoch the commune key has left, once its data key of the current epoch is in the
        proven state. The validators ignore them (``wrong_epoch``) for good; each goes
        again sealed under the current epoch, the same inner tx (a reading keeps its seq,
        so it commits once and is not lost). A nonce-ordered tx whose nonce the data key
        of the new epoch has spent cannot commit any more: it is dropped, logged, for its
        sender to sign again; so is an envelope this node cannot re-seal alone (a
        co-signed one, another signer's)."""
        state, own = self.store.state, self.key.public
        raw = state.get(TL.META_DATA_EPOCH)
        if raw is None:
            return 0, 0
        current = decode_value(raw)
        if state.get(TL.key_household_data_key(own, current)) is None:
            return 0, 0
        stale = [e for e in self.pending.entries()
                 if isinstance(e.tx, (Sealed, SealedCosigned, CommuneSealed)) and e.tx.epoch != current]
        # Those its state shows committed (or overtaken by a later reading) only wait
        # for recheck_pending to drop them: nothing to re-seal.
        done = [e for e in stale if self.is_committed(e.tx)]
        self.pending.remove([e.id for e in done])
        stale = [e for e in stale if e not in done]
        if not stale:
            return 0, 0
        committed_nonce, again, dropped = self.get_committed_nonce(), [], []
        for entry in stale:
            inner = None
            if isinstance(entry.tx, Sealed) and entry.tx.signer == own:
                try:
                    inner = open_own_sealed(self.key.seed, entry.tx)
                except (SealError, DecodeError):
                    inner = None
            if inner is None or (not isinstance(inner, MeterReading) and inner.nonce <= committed_nonce):
                dropped.append(entry)
                continue
            again.append(build_sealed(inner, self.key, self.chain_id, current, os.urandom(24)).encode())
        self.pending.remove([e.id for e in stale])
        taken = [data for data in again if self._take(data)[1] is None]
        self._gossip(taken)
        self.metrics.mempool_txs.set(len(self.pending))
        log.info("re-sealed %d pending txs under the commune data key of epoch %d", len(taken), current)
        for entry in dropped:
            log.warning("dropped pending tx %s sealed under epoch %d: it cannot be re-sealed under epoch %d "
                        "(its nonce was spent, or it is co-signed): sign it again", entry.id.hex()[:16],
                        entry.tx.epoch, current)
        return len(taken), len(dropped)

    async def wait_for_height(self, height: int) -> None:
        while self.store.height() < height:
            await self._stored.wait()

    # ---- HTTP API (node.api.app.NodeAPI) ----

    def status(self) -> dict[str, Any]:
        return {
            **get_common_status(self),
            "validator": False,
            "light": True,
            "header_height": self.store.header_top(),
            "syncing": self.store.header_top() > self.store.height() + 1,
            "round": 0,
            "step": "light",
            "mempool_txs": len(self.pending),
            "settled_intervals": 0,
        }

    def block_json(self, height: int) -> dict[str, Any] | None:
        return None     # no block body is ever here

    def render_metrics(self) -> bytes:
        if self.net is not None:
            self.metrics.peers.set(len(self.net.peers()))
        return self.metrics.render()

    def backup_chunks(self, consent: Iterable[tuple[bytes, bytes]] = ()) -> tuple[int, Iterator[bytes]]:
        return iter_store_backup(self.store, self.chain_id, consent)


# ---- running ----

def compute_light_genesis(home: Home) -> tuple[dict[bytes, bytes], bytes]:
    """The genesis entries this household may read, and the genesis state root.

    A genesis that seals its households (docs/privacy.md "Genesis households") opens
    only with the commune key, and so do the meter and PRM index keys of any household of
    a chain that seals (tokens/indexkeys.py): a household node computes the public entries
    (no household's record or index), holds no genesis root (32 zero bytes until the first header,
    which carries the real one) and reads its own record proven at height 0 with the
    first header, as every entry after."""
    genesis = home.genesis
    own = home_key(home).public
    if genesis.needs_commune_key:
        genesis = dataclasses.replace(genesis, households=())
    writes = genesis_writes(genesis)
    kv = MemoryKV(writes)
    kept = {k: v for k, v in writes.items() if is_proven_key(k) and is_readable_by(kv, k, own)}
    if genesis is not home.genesis:
        return {k: v for k, v in kept.items() if is_public_genesis_entry(k)}, bytes(32)
    return kept, get_state_hash(kv)


def is_public_genesis_entry(key: bytes) -> bool:
    """An entry that a genesis without its households computes right: any but a
    household's own (its account and record come proven with the first header)."""
    return TL.get_key_owner(key) is None and not key.startswith((TL.METER, TL.PRM))


def open_light_store(home: Home) -> LightStore:
    """The home's light store, made from genesis on an empty home. A full node's home
    is refused: its store holds blocks and everybody's state (start from a fresh home)."""
    if _is_genesis_validator(home):
        raise ServiceError("a validator cannot run in light mode: it must apply every block")
    store = LightStore.open_home(home.path, chain_id=home.genesis.chain_id)
    try:
        if not store.is_initialized():
            store.init_light(home.genesis.chain_id, *compute_light_genesis(home))
        elif not store.is_light():
            raise ServiceError(f"{home.path}: this home holds a full node's store; light mode needs a fresh home "
                               "(back up its consent database with `node backup` first)")
    except BaseException:
        store.close()
        raise
    return store


def _no_blocks(height: int):
    raise BlocksPruned("a household node in light mode keeps no block bodies")


def _is_genesis_validator(home: Home) -> bool:
    key = home_key(home).public
    return any(v.key == key for v in home.genesis.validators)


def check_not_validator(home: Home, store: LightStore) -> None:
    """A validator (in genesis, or in the set of one of the next two heights) must apply
    every block: it cannot run light. A household made one must restart as a full node."""
    key = home_key(home).public
    if _is_genesis_validator(home) or \
            any(key in get_validator_set(store.state, store.height() + ahead) for ahead in (1, 2)):
        raise ServiceError("a validator cannot run in light mode: it must apply every block")


@asynccontextmanager
async def open_light_network(node: LightNode, listen: str, peers: Sequence[str]) -> AsyncIterator:
    """The light node's network (heartbeats heard, its own txs sent, no block served) and
    its ``LightClient`` over it, as ``node.net`` and ``node.client``."""
    home, store = node.home, node.store
    addrs = get_validator_addrs(store.state, node.key.public)
    bootstrap = list(dict.fromkeys(list(addrs) + genesis_peer_addrs(home.genesis.validators) + list(peers)))
    settings = NetSettings(relay_txs=False, subscribe=frozenset({TopicKind.HEARTBEAT}),
                           core_peers=frozenset(a.rsplit("/p2p/", 1)[1] for a in addrs))
    async with open_network(home.path, home.genesis.chain_id, listen, bootstrap,
                            {TopicKind.HEARTBEAT: node.on_heartbeat}, get_block=_no_blocks,
                            get_height=store.height, settings=settings,
                            get_fork=partial(get_fork, store, home.genesis.chain_id),
                            check_fork=partial(check_fork, store, home.genesis.chain_id)) as net:
        node.net = net
        node.client = LightClient(home, store, net, node.key, node.notify_stored)
        yield net


async def run_light_node(home_dir: Path, *, listen: str, peers: list[str], http_host: str, http_port: int,
                         api_token: str | None = None, archive_keep_s: int = 0) -> None:
    from node.service.runner import _stop_on_signal, serve_api

    home = load_home(home_dir)
    store = open_light_store(home)
    try:
        check_not_validator(home, store)
        node = LightNode(home, store, archive_keep_s)
        async with open_light_network(node, listen, peers) as net:
            log.info("household node %s in light mode at height %d (headers to %d), peer id %s",
                     home.config.get("name", home.path.name), store.height(), store.header_top(), net.peer_id)
            async with trio.open_nursery() as nursery:
                node._nursery = nursery
                nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
                await nursery.start(serve_api, node, http_host, http_port, api_token)
                nursery.start_soon(node.client.follow)
                nursery.start_soon(node.keep_pending_moving)
                nursery.start_soon(node.publish_data_key_at_start)
    finally:
        store.close()
