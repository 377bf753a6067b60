"""State-sync snapshots on disk: the ones a validator serves, and a joiner's download.

A served snapshot lives in ``<home>/snapshots/<height>/``: its chunks first, then
``meta.bin`` written last (to a temporary name, fsynced, renamed), so a snapshot is
listed (and advertised) only once complete; a crash mid-way leaves a directory with no
meta, which the next ``take_snapshot`` clears. A joiner's download lives in
``<home>/statesync/<height>-<root>/``: each chunk is checked against the meta before it
is written, so what is on disk is always good and an interrupted download resumes with
the chunks still missing. The pure rules are tokens/snapshot.py (docs/statesync.md).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from consensus.block import Header, compute_block_id
from consensus.lightsync import SignedHeader
from tokens.snapshot import (
    MAX_CHUNK_BYTES, InvalidSnapshot, Snapshot, SnapshotMeta, compute_snapshot, compute_snapshot_state,
    verify_chunk, verify_snapshot_header,
)
from tokens.statetree import iter_tree_entries
from wire import DecodeError, Keypair, decode

from node.store.store import StoreError, StoreReader, Store

SNAPSHOTS_DIR = "snapshots"
DOWNLOAD_DIR = "statesync"
META_FILE = "meta.bin"
MAX_META_BYTES = 64 * 1024 * 1024


def _chunk_name(index: int) -> str:
    return f"chunk-{index:06d}"


def _write_atomic(path: Path, data: bytes) -> None:
    """Write, fsync and rename: the file is either absent or whole."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_meta_file(path: Path) -> SnapshotMeta:
    try:
        data = path.read_bytes()
        if len(data) > MAX_META_BYTES:
            raise InvalidSnapshot(f"{path}: snapshot meta exceeds {MAX_META_BYTES} bytes")
        return decode(data, SnapshotMeta, MAX_META_BYTES)
    except (OSError, DecodeError) as exc:
        raise StoreError(f"snapshot meta {path}: {exc}") from None


def compute_store_snapshot(store: StoreReader, chunk_bytes: int | None = None) -> Snapshot:
    """The snapshot of the store's last committed state, read from its tree alone."""
    root = store.state_hash()
    entries = iter_tree_entries(store.state, root)
    if chunk_bytes is None:
        return compute_snapshot(store.height(), root, entries)
    return compute_snapshot(store.height(), root, entries, chunk_bytes)


def save_snapshot(directory: Path, snapshot: Snapshot) -> Path:
    """Write a snapshot under ``directory/<height>``, its meta last; returns its path."""
    path = Path(directory) / str(snapshot.meta.height)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    for index, chunk in enumerate(snapshot.chunks):
        (path / _chunk_name(index)).write_bytes(chunk)
    for index in range(len(snapshot.chunks)):
        with open(path / _chunk_name(index), "rb") as f:
            os.fsync(f.fileno())
    _write_atomic(path / META_FILE, snapshot.meta.encode())
    return path


def take_snapshot(store: StoreReader, directory: Path, keep: int, chunk_bytes: int | None = None) -> SnapshotMeta:
    """Snapshot the store's last state into ``directory``, drop incomplete ones and keep
    the newest ``keep`` complete ones below it besides it.

    The new snapshot is of the top height: no joiner can use it until the header after
    it is committed (``respond_state`` lists only those), so the ones below it are what
    this node serves meanwhile. Pruned down to ``keep`` with it, a validator run with
    ``--snapshot-keep 1`` served none from each snapshot to the next block, and dropped
    the one a joiner was downloading as soon as it took the next."""
    snapshot = compute_store_snapshot(store, chunk_bytes)
    save_snapshot(directory, snapshot)
    prune_snapshots(directory, keep, served_below=snapshot.meta.height)
    return snapshot.meta


def list_snapshots(directory: Path) -> list[SnapshotMeta]:
    """The complete snapshots in ``directory``, newest first."""
    out = []
    root = Path(directory)
    if not root.is_dir():
        return out
    for child in root.iterdir():
        if child.name.isdigit() and (child / META_FILE).is_file():
            out.append(read_meta_file(child / META_FILE))
    return sorted(out, key=lambda m: m.height, reverse=True)


def prune_snapshots(directory: Path, keep: int, served_below: int) -> None:
    """Keep the newest ``keep`` complete snapshots below height ``served_below`` and every
    one at or above it (not served yet: ``take_snapshot``); drop older and incomplete ones."""
    complete = list_snapshots(directory)
    below = [m for m in complete if m.height < served_below][:max(keep, 1)]
    kept = {str(m.height) for m in below} | {str(m.height) for m in complete if m.height >= served_below}
    for child in Path(directory).iterdir():
        if child.is_dir() and child.name not in kept:
            shutil.rmtree(child)


def read_chunk(directory: Path, height: int, index: int) -> bytes | None:
    """A chunk of a complete snapshot, or None if this node does not have it."""
    path = Path(directory) / str(height)
    if not (path / META_FILE).is_file() or not 0 <= index < 10**6:
        return None
    try:
        return (path / _chunk_name(index)).read_bytes()
    except FileNotFoundError:
        return None


class ChunkDownload:
    """A joiner's download of one snapshot: verified chunks are kept on disk as they
    arrive, so a restarted join asks only for the ``missing()`` ones."""

    def __init__(self, home: Path, meta: SnapshotMeta) -> None:
        self.meta = meta
        self.path = Path(home) / DOWNLOAD_DIR / f"{meta.height}-{meta.state_root.hex()[:16]}"
        self.path.mkdir(parents=True, exist_ok=True)
        meta_path = self.path / META_FILE
        if meta_path.is_file() and read_meta_file(meta_path) != meta:
            shutil.rmtree(self.path)        # another snapshot of the same height and root prefix
            self.path.mkdir(parents=True)
        if not meta_path.is_file():
            _write_atomic(meta_path, meta.encode())

    def missing(self) -> list[int]:
        return [i for i in range(len(self.meta.chunk_hashes)) if not (self.path / _chunk_name(i)).is_file()]

    def save_chunk(self, index: int, chunk: bytes) -> None:
        """Keep a chunk once it hashes to the meta; a bad one raises InvalidSnapshot."""
        verify_chunk(self.meta, index, chunk)
        _write_atomic(self.path / _chunk_name(index), chunk)

    def chunks(self) -> list[bytes]:
        """Every chunk, once none is missing."""
        missing = self.missing()
        if missing:
            raise InvalidSnapshot(f"{len(missing)} chunks still missing")
        return [(self.path / _chunk_name(i)).read_bytes()[:MAX_CHUNK_BYTES + 1]
                for i in range(len(self.meta.chunk_hashes))]

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def install_snapshot(store: Store, chain_id: bytes, meta: SnapshotMeta, chunks: list[bytes],
                     base: SignedHeader, next_header: Header, key: Keypair | None = None,
                     receive: dict[bytes, bytes] | None = None) -> None:
    """Check the snapshot against ``next_header`` (block height+1, verified by lightsync:
    it carries the state root after height) and every chunk, rebuild the tree, and
    install the state as the store's start, with ``base``, the verified header and commit
    of the snapshot's height. Nothing is written unless all of it checks out."""
    verify_snapshot_header(meta, next_header.height, next_header.state_hash)
    if base.header.height != meta.height or compute_block_id(base.header) != next_header.parent:
        raise InvalidSnapshot(f"the header of height {meta.height} is not the parent of the next one")
    writes = compute_snapshot_state(meta, chunks, key, receive)
    store.init_snapshot(chain_id, meta.height, next_header.parent, base.header.encode(), base.commit.encode(),
                        writes, meta.state_root)
