"""State sync for a node (docs/statesync.md): taking and serving snapshots, and joining
from one.

A validator snapshots its state every ``snapshot_interval`` heights into
``<home>/snapshots`` and serves it, with the validator-set changes and signed headers
a joiner needs, over ``/voisinage/<chain>/statesync/1``. A node started on an empty
home asks its peers, highest first: it checks the set changes from genesis
(consensus/lightsync.py), the header that carries the snapshot's state root, every
chunk as it arrives (kept on disk, so a restart resumes) and the rebuilt root, then
installs the state and block sync goes on from there. A peer caught sending a forged
header chain or a bad chunk is banned and the next one is tried; when no peer has a
snapshot the node starts from genesis.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import trio

from consensus.block import Commit, Header, compute_block_id
from consensus.sync import Trusted
from consensus.errors import InvalidBlock
from consensus.lightsync import (
    MAX_SIGNED_HEADERS, SetChange, SetChanges, SignedHeader, SignedHeaders, verify_set_changes,
    verify_trusted_header,
)
from node.net import (
    STATE_CHUNK, STATE_HEADER, STATE_HEADERS, STATE_SET_CHANGES, STATE_SNAPSHOTS, GetState, NetError, NetSettings,
    StateUnavailable, TopicKind, genesis_peer_addrs, ignore, open_network, peer_id_of_key,
)
from node.home.homedir import home_key
from node.home.receivekeys import get_receive_dir, load_receive_keys
from node.store import Store
from node.store.pruning import get_header_bytes
from node.store.snapshots import (
    DOWNLOAD_DIR, META_FILE, SNAPSHOTS_DIR, ChunkDownload, install_snapshot, list_snapshots, read_chunk,
    read_meta_file, take_snapshot,
)
from node.store.store import StoreReader
from tokens import layout as TL
from tokens.kv import decode_value
from tokens.snapshot import (
    InvalidSnapshot, SnapshotList, SnapshotMeta, compute_snapshot_state, verify_snapshot_header,
)
from wire import MAX_BLOCK_BYTES, DecodeError, decode

log = logging.getLogger("voisinage.statesync")

SNAPSHOT_INTERVAL = 1000        # heights between a validator's snapshots (--snapshot-interval)
SNAPSHOT_KEEP = 3               # complete snapshots kept and served
SNAPSHOT_POLL_S = 0.5
PEER_WAIT_S = 10.0              # how long a joiner waits for a peer before starting from genesis
SEALED_JOIN_ATTEMPTS = 6        # a joiner that cannot block-sync asks this many times ...
SEALED_JOIN_RETRY_S = 5         # ... this far apart
SET_CHANGES_FILE = "set_changes.bin"
JOIN_LISTEN = "/ip4/127.0.0.1/tcp/0"   # the joining phase only dials out
_MAX_SET_CHANGES_BYTES = 64 * 1024 * 1024


# ---- serving ----

def read_signed_header(store: StoreReader, height: int) -> SignedHeader:
    """The header (from the block, or kept after pruning) and commit of ``height``."""
    block, commit = store.block(height), store.commit(height)
    header = get_header_bytes(block) if block is not None else store.pruned_header(height)
    if header is None or commit is None:
        raise StateUnavailable(f"no header and commit of height {height} here")
    return SignedHeader(header=decode(header, Header, MAX_BLOCK_BYTES), commit=decode(commit, Commit, MAX_BLOCK_BYTES))


def read_signed_headers(store: StoreReader, start: int, count: int) -> SignedHeaders:
    """The headers and commits of ``count`` heights from ``start`` (fewer at the top):
    what a household node follows the chain by (docs/privacy.md "Household nodes")."""
    if not 1 <= count <= MAX_SIGNED_HEADERS or start < 1:
        raise StateUnavailable(f"ask for 1 to {MAX_SIGNED_HEADERS} headers from height 1 or more")
    stop = min(start + count, store.height() + 1)
    if start > store.height():
        raise StateUnavailable(f"no header of height {start} here yet (height {store.height()})")
    return SignedHeaders(headers=tuple(read_signed_header(store, h) for h in range(start, stop)))


def read_set_changes(store: StoreReader, home: Path) -> SetChanges:
    """Every validator-set change up to the committed height: for a set that starts at
    height a, the header of a-1 (which commits to it) with its commit. A node that
    joined by state sync serves the changes below its snapshot as it verified them."""
    known = {c.header.height: c for c in load_set_changes(home)}
    changes = []
    for key, raw in store.state.iter_prefix(TL.VALIDATOR_SET):
        start = TL.from_u64(key[len(TL.VALIDATOR_SET):])
        height = start - 1
        if height < 1 or height > store.height():
            continue
        if height in known:
            changes.append(known[height])
            continue
        signed = read_signed_header(store, height)
        changes.append(SetChange(header=signed.header, commit=signed.commit, validators=tuple(decode_value(raw))))
    return SetChanges(changes=tuple(changes))


def get_holder_peer_ids(state) -> set[str]:
    """The libp2p peer ids of the keys that hold, or are to hold, the commune data key on
    a chain that seals: the current epoch's holders, the latest validators and the
    auditors (a joiner's identity is derived from its key seed, ``join_by_state_sync``)."""
    epoch = decode_value(state.get(TL.META_DATA_EPOCH))
    prefix = TL.DATA_KEY_SEALED + TL.u64(epoch)
    keys = {key[len(prefix):] for key, _ in state.iter_prefix(prefix)}
    keys |= {key[len(TL.AUDITOR):] for key, _ in state.iter_prefix(TL.AUDITOR)}
    sets = list(state.iter_prefix(TL.VALIDATOR_SET))
    if sets:
        keys |= set(decode_value(sets[-1][1]))
    return {peer_id_of_key(key) for key in keys}


def respond_state(store: StoreReader, home: Path, req: GetState, peer: str | None = None) -> bytes:
    """The answer to one GetState from ``peer`` (node.net.statesync serves it; None: not
    known); StateUnavailable when this node has nothing to say. On a chain that seals,
    a snapshot chunk holds every household's entries and every interval's sums in clear:
    it goes to the commune key's holders only (docs/privacy.md "Public aggregates")."""
    directory = Path(home) / SNAPSHOTS_DIR
    if req.kind == STATE_CHUNK and store.state.get(TL.META_DATA_EPOCH) is not None \
            and peer not in get_holder_peer_ids(store.state):
        raise StateUnavailable("this commune seals payloads: its snapshot chunks go to its validators and "
                               "auditors only (join with the validator's or auditor's key)")
    if req.kind == STATE_SNAPSHOTS:
        # A snapshot is only useful once the header that carries its root is committed.
        metas = [m for m in list_snapshots(directory) if m.height < store.height()]
        return SnapshotList(metas=tuple(metas[:SNAPSHOT_KEEP])).encode()
    if req.kind == STATE_CHUNK:
        chunk = read_chunk(directory, req.height, req.index)
        if chunk is None:
            raise StateUnavailable(f"no chunk {req.index} of a snapshot of height {req.height} here")
        return chunk
    if req.kind == STATE_SET_CHANGES:
        return read_set_changes(store, home).encode()
    if req.kind == STATE_HEADER:
        return read_signed_header(store, req.height).encode()
    if req.kind == STATE_HEADERS:
        return read_signed_headers(store, req.height, req.index).encode()
    raise StateUnavailable(f"unknown state-sync request kind {req.kind}")


async def keep_snapshots(store: Store, home: Path, interval: int, keep: int, is_validator) -> None:
    """Snapshot the state at the first height at or past each multiple of ``interval``
    (while ``is_validator()``), in a worker thread over a consistent view of the store."""
    directory = Path(home) / SNAPSHOTS_DIR
    done = store.height() // interval
    while True:
        await trio.sleep(SNAPSHOT_POLL_S)
        height = store.height()
        if height // interval <= done or not is_validator():
            continue
        done = height // interval
        started = time.perf_counter()
        meta = await trio.to_thread.run_sync(_snapshot_view, store, directory, keep)
        log.info("snapshot of height %d: %d entries in %d chunks, %.2f s", meta.height, meta.entries,
                 len(meta.chunk_hashes), time.perf_counter() - started)


def _snapshot_view(store: Store, directory: Path, keep: int) -> SnapshotMeta:
    with store.snapshot() as view:
        return take_snapshot(view, directory, keep)


# ---- joining ----

def find_installed_snapshot(home: Path, store: StoreReader) -> ChunkDownload:
    """The snapshot a state-synced store started from, kept in the home for ``node verify``."""
    for path in sorted((Path(home) / DOWNLOAD_DIR).glob(f"{store.state_from()}-*")):
        meta = read_meta_file(path / META_FILE)
        if meta.height == store.state_from() and meta.state_root == store_state_root_at_start(store):
            return ChunkDownload(home, meta)
    raise StateUnavailable(f"{home}: the snapshot of height {store.state_from()} this home started from "
                           f"is no longer in {DOWNLOAD_DIR}/")


def check_installed_snapshot(home, store: StoreReader) -> tuple[dict[bytes, bytes], Trusted, int]:
    """For ``node verify``: the kept set changes from genesis, the snapshot height's header
    against them, and the kept snapshot rebuilt (its root is checked by the replay against
    the next header). The state entries, the trusted tip, and how many set changes."""
    chain_id = home.genesis.chain_id
    changes = load_set_changes(home.path)
    try:
        sets = verify_set_changes(chain_id, [v.key for v in home.genesis.validators], changes)
        base = read_signed_header(store, store.state_from())
        verify_trusted_header(chain_id, sets, base.header, base.commit)
        download = find_installed_snapshot(home.path, store)
        writes = compute_snapshot_state(download.meta, download.chunks(), home_key(home),
                                        load_receive_keys(get_receive_dir(home.path)))
    except (InvalidBlock, InvalidSnapshot, StateUnavailable) as exc:
        raise ValueError(str(exc)) from None
    tip = Trusted(base.header.height, compute_block_id(base.header), base.header.time_ms)
    return writes, tip, len(changes)


def store_state_root_at_start(store: StoreReader) -> bytes:
    """The state root the header after the snapshot height carries (or the store's own
    root while no block has been added yet)."""
    height = store.state_from()
    if store.height() == height:
        return store.state_hash()
    return read_signed_header(store, height + 1).header.state_hash

def save_set_changes(home: Path, changes: SetChanges) -> None:
    path = Path(home) / DOWNLOAD_DIR / SET_CHANGES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(changes.encode())


def load_set_changes(home: Path) -> tuple[SetChange, ...]:
    path = Path(home) / DOWNLOAD_DIR / SET_CHANGES_FILE
    if not path.is_file():
        return ()
    return decode(path.read_bytes(), SetChanges, _MAX_SET_CHANGES_BYTES).changes


class StateSync:
    """One joiner's state sync over a running network (``net``: node.net.Network)."""

    def __init__(self, home, store: Store, net) -> None:
        self.home, self.store, self.net = home, store, net
        self.chain_id = home.genesis.chain_id
        self.genesis_set = [v.key for v in home.genesis.validators]

    async def run(self) -> bool:
        """True once a snapshot is installed; False when no peer serves one. Peers at
        height 0 (a network starting from genesis) have nothing to offer."""
        with trio.move_on_after(PEER_WAIT_S):
            while not any(self.net.peer_heights().values()):
                await trio.sleep(0.1)
        heights = {p: h for p, h in self.net.peer_heights().items() if h > 0}
        for peer, height in sorted(heights.items(), key=lambda item: -item[1]):
            try:
                if await self.sync_from(peer):
                    return True
            except (NetError, DecodeError) as exc:
                log.warning("state sync from %s failed: %s", peer[:12], exc)
            except (InvalidBlock, InvalidSnapshot) as exc:
                log.warning("peer %s sent a bad snapshot or header chain (%s): banned", peer[:12], exc)
                self.net.ban_peer(peer, f"bad state sync: {exc}")
        log.info("no peer serves a snapshot: block sync from genesis")
        return False

    async def sync_from(self, peer: str) -> bool:
        net = self.net
        metas = decode(await net.request_state(peer, STATE_SNAPSHOTS), SnapshotList, MAX_BLOCK_BYTES).metas
        if not metas:
            return False
        meta = max(metas, key=lambda m: m.height)
        raw = await net.request_state(peer, STATE_SET_CHANGES)
        changes = decode(raw, SetChanges, len(raw))
        sets = verify_set_changes(self.chain_id, self.genesis_set, changes.changes)
        base = await self.fetch_header(peer, sets, meta.height)
        following = await self.fetch_header(peer, sets, meta.height + 1)
        verify_snapshot_header(meta, following.header.height, following.header.state_hash)
        log.info("state sync from %s: snapshot of height %d (%d entries, %d chunks), header chain checked "
                 "through %d validator-set changes", peer[:12], meta.height, meta.entries,
                 len(meta.chunk_hashes), len(changes.changes))
        download = ChunkDownload(self.home.path, meta)
        missing = download.missing()
        if len(missing) < len(meta.chunk_hashes):
            log.info("resuming a download: %d of %d chunks already here", len(meta.chunk_hashes) - len(missing),
                     len(meta.chunk_hashes))
        for index in missing:
            download.save_chunk(index, await net.request_state(peer, STATE_CHUNK, meta.height, index))
        chunks = download.chunks()
        await trio.to_thread.run_sync(install_snapshot, self.store, self.chain_id, meta, chunks, base,
                                      following.header, home_key(self.home),
                                      load_receive_keys(get_receive_dir(self.home.path)))
        save_set_changes(self.home.path, changes)
        log.info("state installed at height %d, root %s: block sync goes on from height %d", meta.height,
                 meta.state_root.hex()[:16], meta.height + 1)
        return True

    async def fetch_header(self, peer: str, sets, height: int) -> SignedHeader:
        raw = await self.net.request_state(peer, STATE_HEADER, height)
        signed = decode(raw, SignedHeader, len(raw))
        if signed.header.height != height:
            raise InvalidBlock(f"asked for the header of height {height}, got {signed.header.height}")
        verify_trusted_header(self.chain_id, sets, signed.header, signed.commit)
        return signed


def _not_yet(peer: str, data: bytes):
    return ignore("state sync in progress")


async def join_by_state_sync(home, store: Store, peers: list[str]) -> bool:
    """Before the node starts on an empty home: a network of its own that only asks,
    state sync over it, closed again. True when a snapshot was installed."""
    bootstrap = genesis_peer_addrs(home.genesis.validators) + list(peers)
    handlers = {kind: _not_yet for kind in TopicKind}
    # On a chain that seals, the validators serve snapshot chunks to the commune key's
    # holders only, by peer id: the joiner's identity is then derived from its key.
    key = home_key(home)
    seed = key.seed if home.genesis.seals_payloads else None
    async with open_network(home.path, home.genesis.chain_id, JOIN_LISTEN, bootstrap, handlers,
                            settings=NetSettings(relay_txs=False, ephemeral_identity=True,
                                                 identity_seed=seed)) as net:
        # A node that cannot replay from genesis (its households' records are sealed and
        # its key is no genesis validator's) has no fallback: it asks again for a while
        # rather than give up when the peers were slow to answer the first time.
        attempts = 1
        if home.genesis.needs_commune_key and all(v.key != key.public for v in home.genesis.validators):
            attempts = SEALED_JOIN_ATTEMPTS
        for attempt in range(attempts):
            if await StateSync(home, store, net).run():
                return True
            if attempt + 1 < attempts:
                log.info("this node cannot replay a sealed genesis: asking for a snapshot again in %d s",
                         SEALED_JOIN_RETRY_S)
                await trio.sleep(SEALED_JOIN_RETRY_S)
        return False
