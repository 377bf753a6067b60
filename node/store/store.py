"""The node's LevelDB store: one atomic, synced batch per committed block (DESIGN §8).

Committing block h writes the block, its commit, the ledger's state changes and the
meta in ONE ``write_batch(sync=True)``. LevelDB applies a batch from its log as a
whole or not at all, so after ``kill -9`` at any point a reopened store is exactly at
some committed height: never half a block. The key layout is in ``node.store.layout``.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import plyvel


from node.errors import OneLineError
from node.store import layout as L
from node.store.layout import Height
from tokens import get_rescanned_state_hash, get_state_hash
from tokens.sealing import Keyring
from tokens.layout import INTERVAL, INTERVAL_ENTRY, TREE
from tokens.statetree import MissingTreeNode, is_proven_key, iter_tree_entries

DB_DIR = "db"
PRUNE_BATCH = 200_000       # index entries per prune_tree call: one write batch
STATE_HASH_ENTRY = b"meta/state_hash"   # tokens.layout.META_STATE_HASH: the ledger's copy


class StoreError(OneLineError):
    """A store problem a person must act on; printed as one line by the CLI."""


class StoreLocked(StoreError):
    """Another process (or another handle in this one) has the database open."""


class StoreNewer(StoreError):
    """The database was written by newer software, in a format this one does not know."""


class StoreCorrupt(StoreError):
    """The database does not hold what a committed store must hold."""


@dataclass(frozen=True)
class StoredBlock:
    height: Height
    block_id: bytes
    block: bytes
    commit: bytes


class StateView:
    """The ledger's key-value state (tokens' ``KV``): ``s/`` keys with the prefix removed.
    With ``space=L.ARCHIVE``, the same over the archive of entries that left the state."""

    __slots__ = ("_source", "_space")

    def __init__(self, source: Any, space: bytes = L.STATE) -> None:
        self._source = source
        self._space = space

    def get(self, key: bytes) -> bytes | None:
        return self._source.get(self._space + key)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``, in key order."""
        cut = len(self._space)
        with self._source.iterator(prefix=self._space + prefix) as it:
            for key, value in it:
                yield key[cut:], value


class HistoryView:
    """The state with its archive underneath (tokens' ``KV``): interval history reads
    the recent intervals from the state and the older ones from the archive, as one.
    A key in both (never, unless a replay re-archives) reads from the state."""

    __slots__ = ("_state", "_archive")

    def __init__(self, state: StateView, archive: StateView) -> None:
        self._state, self._archive = state, archive

    def get(self, key: bytes) -> bytes | None:
        value = self._state.get(key)
        return self._archive.get(key) if value is None else value

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        last = None
        for key, source, value in heapq.merge(((k, 0, v) for k, v in self._state.iter_prefix(prefix)),
                                              ((k, 1, v) for k, v in self._archive.iter_prefix(prefix))):
            if key != last:
                yield key, value
            last = key


class StoreReader:
    """Read access over the live database or over one consistent snapshot of it."""

    def __init__(self, source: Any, path: Path) -> None:
        self._source = source
        self.path = path
        self.state = StateView(source)
        self.archive = StateView(source, L.ARCHIVE)
        self.history = HistoryView(self.state, self.archive)

    def chain_id(self) -> bytes | None:
        """The genesis chain id, or None if the store has no genesis yet."""
        return self._source.get(L.META_GENESIS)

    def is_initialized(self) -> bool:
        return self.chain_id() is not None

    def height(self) -> Height:
        """Last committed height (0 right after genesis)."""
        raw = self._source.get(L.META_HEIGHT)
        if raw is None:
            raise StoreError(f"database {self.path} has no genesis yet")
        return L.decode_height(raw)

    def state_hash(self) -> bytes:
        """State hash after the last committed height."""
        raw = self._source.get(L.META_STATE_HASH)
        if raw is None:
            raise StoreError(f"database {self.path} has no genesis yet")
        return raw

    def last_block_id(self) -> bytes | None:
        """Id of the last committed block; None at height 0."""
        return self._source.get(L.META_BLOCK_ID)

    def block(self, height: int) -> bytes | None:
        return self._source.get(L.key_block(height)) if _is_height(height) else None

    def commit(self, height: int) -> bytes | None:
        return self._source.get(L.key_commit(height)) if _is_height(height) else None

    def block_id(self, height: int) -> bytes | None:
        return self._source.get(L.key_block_id(height)) if _is_height(height) else None

    def height_of(self, block_id: bytes) -> Height | None:
        raw = self._source.get(L.key_height_of(block_id))
        return None if raw is None else L.decode_height(raw)

    def pruned_header(self, height: int) -> bytes | None:
        """The header bytes kept for a height whose block body was pruned."""
        return self._source.get(L.key_header(height)) if _is_height(height) else None

    def tree_from(self) -> Height:
        """Lowest height whose state tree is whole (proofs and snapshots at or above it)."""
        raw = self._source.get(L.META_TREE_FROM)
        return Height(0) if raw is None else L.decode_height(raw)

    def blocks_from(self) -> Height:
        """Lowest height whose block body is kept (1: every block)."""
        raw = self._source.get(L.META_BLOCKS_FROM)
        return Height(1) if raw is None else L.decode_height(raw)

    def state_from(self) -> Height:
        """The snapshot height this store was installed at by state sync (0: genesis)."""
        raw = self._source.get(L.META_STATE_FROM)
        return Height(0) if raw is None else L.decode_height(raw)

    def is_light(self) -> bool:
        """A household node's light store: headers, commits and the entries it follows."""
        return self._source.get(L.META_LIGHT) is not None

    def extra(self, name: str) -> bytes | None:
        """Extra meta committed with a block by ``commit_block(extra_meta=...)``."""
        return self._source.get(L.key_extra(name))

    def iter_entries(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key and value of the database, in key order (a backup of a snapshot)."""
        with self._source.iterator() as it:
            yield from it

    def iter_blocks(self, start: int = 1, stop: int | None = None) -> Iterator[StoredBlock]:
        """Blocks ``start..stop`` (inclusive; ``stop`` defaults to the height), in order."""
        last = self.height() if stop is None else min(stop, self.height())
        for height in range(max(start, 1), last + 1):
            yield self.get_stored_block(height)

    def get_stored_block(self, height: int) -> StoredBlock:
        """Block, id and commit at a committed height; a gap means the database is corrupt."""
        block, commit = self.block(height), self.commit(height)
        block_id = self.block_id(height)
        if block is None and 1 <= height < self.blocks_from():
            raise StoreError(f"database {self.path}: block {height} was pruned (blocks are kept from "
                             f"height {self.blocks_from()}; run the node with --pruning archive to keep all)")
        if block is None or commit is None or block_id is None:
            raise StoreCorrupt(f"database {self.path}: block {height} is missing")
        return StoredBlock(Height(height), block_id, block, commit)

    def read_full_state_hash(self, keys: Keyring | None = None) -> bytes:
        """DESIGN §8 audit: the state hash recomputed from every stored state entry (with
        the commune data keys on a chain that seals payloads: its leaves are salted)."""
        return get_rescanned_state_hash(self.state, keys)

    def verify_state_hash(self, keys: Keyring | None = None) -> bytes:
        """Recompute the state hash and compare it with the stored one; return it."""
        stored, computed = self.state_hash(), self.read_full_state_hash(keys)
        if stored != computed:
            raise StoreCorrupt(f"database {self.path}: stored state hash {stored.hex()[:16]}… "
                               f"!= recomputed {computed.hex()[:16]}… at height {self.height()}")
        if self.state.get(STATE_HASH_ENTRY) is not None:
            if get_state_hash(self.state) != stored:
                raise StoreCorrupt(f"database {self.path}: the ledger's own state hash entry "
                                   f"differs from the store's at height {self.height()}")
            self.verify_state_tree(stored)
        return computed

    def verify_state_tree(self, root: bytes) -> None:
        """The stored tree of ``root`` holds exactly the state's entries (docs/state.md):
        proofs and snapshots read it, not the entries."""
        try:
            tree = dict(iter_tree_entries(self.state, root))
        except MissingTreeNode as exc:
            raise StoreCorrupt(f"database {self.path}: {exc} at height {self.height()}") from None
        entries = {k: v for k, v in self.state.iter_prefix(b"") if is_proven_key(k)}
        if tree != entries:
            raise StoreCorrupt(f"database {self.path}: the state tree of {root.hex()[:16]}… does not hold "
                               f"the stored state at height {self.height()}")


class Snapshot(StoreReader):
    """A consistent, read-only view: height, state and blocks as of one instant."""

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._source.close()


def _is_height(height: int) -> bool:
    return type(height) is int and 0 <= height <= L.MAX_HEIGHT


def _check_hash(value: Any, what: str) -> None:
    if type(value) is not bytes or len(value) != L.HASH_LEN:
        raise StoreError(f"{what} must be {L.HASH_LEN} bytes")


def _put_writes(batch: Any, writes: Mapping[bytes, bytes | None]) -> None:
    """Stage the ledger's state changes: a value sets the key, None deletes it."""
    put, delete, prefix = batch.put, batch.delete, L.STATE
    for key, value in writes.items():
        if type(key) is not bytes:
            raise StoreError(f"state key must be bytes, got {type(key).__name__}")
        if value is None:
            delete(prefix + key)
        elif type(value) is bytes:
            put(prefix + key, value)
        else:
            raise StoreError(f"state value for {key!r} must be bytes or None")


def _put_tip(batch: Any, height: int, block_id: bytes, state_hash: bytes) -> None:
    """The last committed block: its id both ways, the height and the state hash after it."""
    encoded = L.encode_height(height)
    batch.put(L.key_block_id(height), block_id)
    batch.put(L.key_height_of(block_id), encoded)
    batch.put(L.META_HEIGHT, encoded)
    batch.put(L.META_STATE_HASH, state_hash)
    batch.put(L.META_BLOCK_ID, block_id)


def _put_extra(batch: Any, extra_meta: Mapping[str, bytes | None]) -> None:
    for name in sorted(extra_meta):
        value = extra_meta[name]
        if type(name) is not str or not name:
            raise StoreError("extra meta names are non-empty strings")
        if value is None:
            batch.delete(L.key_extra(name))
        elif type(value) is bytes:
            batch.put(L.key_extra(name), value)
        else:
            raise StoreError(f"extra meta {name!r} must be bytes or None")


# Nodes that store the same chain flush their memtables at the same height; on one
# machine (localnet, bench) they then all flush and compact in the same second and
# that height is slow. 16 MiB (LevelDB's default is 4) holds minutes of blocks at
# 1 000 readings/s: docs/performance.md, "Constants and the runs behind them".
WRITE_BUFFER_BYTES = 16 * 1024 * 1024
# Committing a block asks, for each new state tree node, whether it is pending in the
# stale index: nearly always a miss, which without a filter reads an index and a data
# block in every level (docs/performance.md, "bench year").
BLOOM_FILTER_BITS = 10


def _open_db(path: Path, create: bool) -> plyvel.DB:
    """Open LevelDB, turning each library failure into one clear line."""
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        return plyvel.DB(str(path), create_if_missing=create, write_buffer_size=WRITE_BUFFER_BYTES,
                         bloom_filter_bits=BLOOM_FILTER_BITS)
    except plyvel.CorruptionError as exc:
        raise StoreCorrupt(f"database {path} is corrupt: {_reason(exc)}") from None
    except plyvel.IOError as exc:
        if "lock" in _reason(exc).lower() and "unavailable" in _reason(exc).lower():
            raise StoreLocked(f"database {path} is locked: another process holds {path / 'LOCK'} "
                              "(is a node already running on this home?)") from None
        raise StoreError(f"cannot open database {path}: {_reason(exc)}") from None
    except (plyvel.Error, OSError) as exc:
        raise StoreError(f"cannot open database {path}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)


class Store(StoreReader):
    """The live store of one home. Open with ``Store.open``; one handle per database."""

    # LevelDB's POSIX lock is per process: opening a database twice in one process
    # and closing the second handle would drop the first one's lock. Refuse instead.
    _OPEN_PATHS: ClassVar[set[str]] = set()

    def __init__(self, db: plyvel.DB, path: Path, real: str, sync: bool = True) -> None:
        super().__init__(db, path)
        self._db = db
        self._real = real
        self._sync = sync
        self._height: Height | None = None
        self._state_hash: bytes | None = None

    @classmethod
    def open(cls, path: Path | str, *, chain_id: bytes | None = None, create: bool = True,
             sync: bool = True) -> Store:
        """Open (or create) the database at ``path``; refuse another commune's database.
        ``sync=False`` (benchmarks of disk size only): commits are not fsynced."""
        path = Path(path)
        real = os.path.realpath(path)
        if real in cls._OPEN_PATHS:
            raise StoreLocked(f"database {path} is already open in this process")
        db = _open_db(path, create)
        store = cls(db, path, real, sync)
        cls._OPEN_PATHS.add(real)
        try:
            store._load_meta()
            if chain_id is not None:
                store.check_chain(chain_id)
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open_home(cls, home: Path | str, *, chain_id: bytes | None = None) -> Store:
        """Open ``<home>/db`` (DESIGN §8 layout)."""
        return cls.open(Path(home) / DB_DIR, chain_id=chain_id)

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()
        self._OPEN_PATHS.discard(self._real)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def snapshot(self) -> Snapshot:
        """A consistent read-only view; use it where reads span an await (HTTP API)."""
        return Snapshot(self._db.snapshot(), self.path)

    def _load_meta(self) -> None:
        """Check the meta of a reopened store and cache the height and state hash."""
        version = self._db.get(L.META_VERSION)
        if version is not None and version != L.encode_height(L.FORMAT_VERSION):
            found = L.decode_height(version) if len(version) == 8 else None
            if found is not None and found > L.FORMAT_VERSION:
                raise StoreNewer(f"database {self.path} has store format {found}, newer than this software's "
                                 f"{L.FORMAT_VERSION}: run the voisinage release that wrote it (or a newer one)")
            raise StoreCorrupt(f"database {self.path} has an unknown store format {version.hex()}")
        if self._db.get(L.META_GENESIS) is None:
            with self._db.iterator(include_value=False) as keys:
                empty = next(keys, None) is None
            if not empty:
                raise StoreCorrupt(f"database {self.path} holds data but no genesis: not a voisinage database?")
            return
        try:
            height = L.decode_height(self._db.get(L.META_HEIGHT) or b"")
        except ValueError as exc:
            raise StoreCorrupt(f"database {self.path}: bad meta height: {exc}") from None
        state_hash = self._db.get(L.META_STATE_HASH)
        if state_hash is None or len(state_hash) != L.HASH_LEN:
            raise StoreCorrupt(f"database {self.path}: bad meta state hash")
        if self._db.get(L.STATE_END) is None:   # a store written before STATE_END
            self._db.put(L.STATE_END, b"")
        if height > 0 and height != self.state_from() and not self.is_light():
            self.get_stored_block(height)
        self._height, self._state_hash = height, state_hash

    def check_chain(self, chain_id: bytes) -> None:
        """Refuse to reopen a home with a different genesis (DESIGN §3: chain id)."""
        stored = self.chain_id()
        if stored is not None and stored != chain_id:
            raise StoreError(f"database {self.path} belongs to chain {stored.hex()[:16]}…, "
                             f"not {chain_id.hex()[:16]}… (genesis.json changed?); use a fresh home")

    def height(self) -> Height:
        if self._height is None:
            raise StoreError(f"database {self.path} has no genesis yet")
        return self._height

    def state_hash(self) -> bytes:
        if self._state_hash is None:
            raise StoreError(f"database {self.path} has no genesis yet")
        return self._state_hash

    def init_genesis(self, chain_id: bytes, writes: Mapping[bytes, bytes | None], state_hash: bytes,
                     meta: Mapping[bytes, bytes] | None = None) -> None:
        """Write the genesis state and meta (height 0), and ``meta``, in one synced batch."""
        _check_hash(chain_id, "chain id")
        _check_hash(state_hash, "state hash")
        if self.is_initialized():
            raise StoreError(f"database {self.path} already has a genesis")
        batch = self._db.write_batch(sync=True)
        _put_writes(batch, writes)
        batch.put(L.META_VERSION, L.encode_height(L.FORMAT_VERSION))
        batch.put(L.META_GENESIS, chain_id)
        batch.put(L.META_HEIGHT, L.encode_height(0))
        batch.put(L.META_STATE_HASH, state_hash)
        batch.put(L.STATE_END, b"")
        for key, value in (meta or {}).items():
            batch.put(key, value)
        batch.write()
        self._height, self._state_hash = Height(0), state_hash

    def init_snapshot(self, chain_id: bytes, height: int, block_id: bytes, header_bytes: bytes, commit_bytes: bytes,
                      writes: Mapping[bytes, bytes | None], state_hash: bytes) -> None:
        """Install a verified state-sync snapshot of ``height`` (block ``block_id``) as this
        store's start, in one synced batch: no block at or below it is stored, so block
        sync goes on from height+1, and pruning counts from there (docs/statesync.md). The
        block's header and commit are kept as a pruned block's are."""
        _check_hash(chain_id, "chain id")
        _check_hash(state_hash, "state hash")
        _check_hash(block_id, "block id")
        if self.is_initialized():
            raise StoreError(f"database {self.path} already has a genesis: state sync needs an empty home")
        if not _is_height(height) or height < 1:
            raise StoreError(f"a snapshot height is 1 or more, not {height}")
        encoded = L.encode_height(height)
        batch = self._db.write_batch(sync=True)
        _put_writes(batch, writes)
        batch.put(L.META_VERSION, L.encode_height(L.FORMAT_VERSION))
        batch.put(L.META_GENESIS, chain_id)
        _put_tip(batch, height, block_id, state_hash)
        batch.put(L.key_header(height), header_bytes)
        batch.put(L.key_commit(height), commit_bytes)
        batch.put(L.META_STATE_FROM, encoded)
        batch.put(L.META_TREE_FROM, encoded)
        batch.put(L.META_BLOCKS_FROM, L.encode_height(height + 1))
        batch.put(L.STATE_END, b"")
        batch.write()
        self._height, self._state_hash = Height(height), state_hash

    def commit_block(self, height: int, block_id: bytes, block_bytes: bytes, commit_bytes: bytes,
                     writes: Mapping[bytes, bytes | None], state_hash: bytes,
                     extra_meta: Mapping[str, bytes | None] | None = None, *,
                     archive: Sequence[tuple[bytes, bytes]] = (),
                     stale_nodes: Sequence[bytes] | None = None, erased: Sequence[bytes] = ()) -> None:
        """DESIGN §8 "Commit": block, commit, state changes and meta in ONE synced batch.

        ``archive``: (state key, value) entries the block removed from the state, kept
        under ``a/``. ``stale_nodes``: the state tree nodes the block left out of its
        root, indexed for ``prune_tree`` (None: this store never prunes its tree).
        ``erased``: households the block erased (docs/privacy.md "Erasure"): their
        archived interval entries go in the same batch."""
        self._check_next(height, block_id)
        _check_hash(state_hash, "state hash")
        if type(block_bytes) is not bytes or type(commit_bytes) is not bytes:
            raise StoreError("block and commit must be bytes")
        batch = self._db.write_batch(sync=self._sync)
        _put_writes(batch, writes)
        _put_extra(batch, extra_meta or {})
        for key, value in archive:
            batch.put(L.key_archive(key), value)
        if erased:
            self._put_erasures(batch, erased)
        if stale_nodes is not None:
            self._put_stale(batch, height, writes, stale_nodes)
        batch.put(L.key_block(height), block_bytes)
        batch.put(L.key_commit(height), commit_bytes)
        _put_tip(batch, height, block_id, state_hash)
        batch.write()  # the only write: until here nothing reached the database
        self._height, self._state_hash = Height(height), state_hash

    def _put_stale(self, batch: Any, height: int, writes: Mapping[bytes, bytes | None],
                   stale_nodes: Sequence[bytes]) -> None:
        """Index this block's stale tree nodes. A node written again (same content: a
        key set back to an earlier value) is live again: its pending index entry no
        longer counts (``T/`` names the last height it went stale at, or nothing)."""
        # A blind delete per written node: asking first was one LevelDB read per node,
        # nearly always a miss (measured: 4.6 s of a 25 s simulated day).
        cut = len(TREE)
        for key, value in writes.items():
            if value is not None and key.startswith(TREE):
                batch.delete(L.key_stale_at(key[cut:]))
        encoded = L.encode_height(height)
        for node in stale_nodes:
            batch.put(L.key_stale(height, node), b"")
            batch.put(L.key_stale_at(node), encoded)

    # ---- pruning (docs/state.md "Pruning"); never part of the consensus state ----

    def prune_tree(self, keep_roots: int, max_nodes: int = PRUNE_BATCH) -> int:
        """Delete the state tree nodes that no root of the last ``keep_roots`` heights
        reaches; at most ``max_nodes`` index entries per call. Returns the nodes deleted."""
        if keep_roots < 1:
            raise StoreError("keep_roots must be at least 1")
        until = self.height() - keep_roots + 1      # roots of heights >= until stay whole
        if until <= self.tree_from():
            return 0
        batch = self._db.write_batch()
        deleted = seen = 0
        done, last = True, self.tree_from()
        # Start at tree_from: every entry below it was deleted, and stepping over their
        # tombstones from the start of t/ at every pass grew with the chain's age.
        with self._db.iterator(start=L.key_stale(self.tree_from(), b""), stop=L.STALE_STOP) as it:
            for key, _ in it:
                stale_at = key[len(L.STALE):len(L.STALE) + 8]
                if L.decode_height(stale_at) > until:
                    break
                if seen >= max_nodes:
                    done = False
                    break
                seen += 1
                last = max(last, L.decode_height(stale_at))
                node = key[len(L.STALE) + 8:]
                batch.delete(key)
                # Only the last time a node went stale frees it, and only if it was not
                # written again since (which deleted its T/ entry).
                if self._db.get(L.key_stale_at(node)) == stale_at:
                    batch.delete(L.key_stale_at(node))
                    batch.delete(L.key_state(TREE + node))
                    deleted += 1
        # Roots of heights at or above the last one processed reach no deleted node.
        batch.put(L.META_TREE_FROM, L.encode_height(until if done else last))
        batch.write()
        return deleted

    def prune_blocks(self, keep_from: int, get_header: Callable[[bytes], bytes]) -> int:
        """Drop the block bodies below height ``keep_from`` (the last block is always kept),
        keeping each one's header (``get_header(block bytes)``), commit and id. Returns
        how many were dropped."""
        keep_from = min(keep_from, self.height())
        first = self.blocks_from()
        if keep_from <= first:
            return 0
        batch = self._db.write_batch()
        dropped = 0
        for height in range(first, keep_from):
            block = self._db.get(L.key_block(height))
            if block is not None:
                batch.put(L.key_header(height), get_header(block))
                batch.delete(L.key_block(height))
                dropped += 1
        batch.put(L.META_BLOCKS_FROM, L.encode_height(keep_from))
        batch.write()
        return dropped

    def _put_erasures(self, batch: Any, erased: Sequence[bytes]) -> None:
        """Delete each erased household's entry of every archived interval: one blind
        delete per interval and household (an erasure is rare; no index by household)."""
        with self._db.iterator(prefix=L.key_archive(INTERVAL), include_value=False) as it:
            for key in it:
                start = key[-8:]
                for addr in erased:
                    batch.delete(L.key_archive(INTERVAL_ENTRY + start + addr))

    def count_archived_entries(self, addr: bytes) -> int:
        """How many archived interval entries name household ``addr``."""
        with self._db.iterator(prefix=L.key_archive(INTERVAL_ENTRY), include_value=False) as it:
            return sum(1 for key in it if key.endswith(addr))

    def prune_archive(self, before_s: int) -> int:
        """Drop archived intervals that start before unix second ``before_s``, with every
        household's entry of them. Returns how many intervals were dropped."""
        batch = self._db.write_batch()
        dropped = 0
        with self._db.iterator(prefix=L.key_archive(INTERVAL), include_value=False) as it:
            for key in it:
                start = key[-8:]
                if int.from_bytes(start, "big") >= before_s:
                    break
                batch.delete(key)
                with self._db.iterator(prefix=L.key_archive(INTERVAL_ENTRY + start), include_value=False) as entries:
                    for entry in entries:
                        batch.delete(entry)
                dropped += 1
        batch.write()
        return dropped

    def compact(self) -> None:
        """Compact the whole database: what pruning deleted leaves the disk.

        plyvel 1.5's ``compact_range()`` without bounds compacts nothing (measured: 98 MB
        before and after on a pruned household store, 47 MB with explicit bounds), so
        the bounds span every key the store writes (all start with a printable prefix).
        One pass can push deleted data one level down with its tombstones (measured:
        37 MB -> 20 MB, then 0.07 MB on a second pass), so passes repeat while the files
        shrink."""
        size = self.disk_bytes()
        for _ in range(4):
            self._db.compact_range(start=b"\x00", stop=b"\xff" * 64)
            size, before = self.disk_bytes(), size
            if size >= before:
                break

    def disk_bytes(self) -> int:
        """Bytes of the database's files on disk."""
        return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())

    def live_bytes(self) -> int:
        """Bytes of every key and value held (what the files hold before compression and
        table overhead): a full scan."""
        with self._db.iterator() as it:
            return sum(len(key) + len(value) for key, value in it)

    def _check_next(self, height: int, block_id: bytes) -> None:
        """Blocks are committed in order, once each, on top of a genesis."""
        current = self.height()
        if type(height) is not int or height != current + 1:
            raise StoreError(f"cannot commit height {height!r}: the store is at height {current}")
        _check_hash(block_id, "block id")
        known = self.height_of(block_id)
        if known is not None:
            raise StoreError(f"block {block_id.hex()[:16]}… is already stored at height {known}")
