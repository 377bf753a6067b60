"""State snapshots for state sync, pure (docs/statesync.md).

A snapshot of height h is every proven entry of the state after h (the leaves of the
tree whose root the header of h+1 carries), sorted by key and cut into chunks of at
most ``CHUNK_BYTES``. Its ``SnapshotMeta`` names the height, the state root and each
chunk's sha256, so a joining node checks each chunk as it arrives (from any peer) and
the rebuilt root against a committed header before it installs anything. The tree's
own nodes are not sent: the joiner rebuilds them (``compute_tree_build``), which also
proves the entries are the whole state and nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import msgpack

from wire import HASH, U64, List, Message, Nested, field_of, register
from wire.units import Height

from tokens.kv import MemoryKV, encode_value
from tokens.sealing import compute_keyring, make_kv_salt_of
from wire import Keypair
from tokens.layout import META_STATE_HASH
from tokens.statetree import MAX_KEY_BYTES, compute_tree_build, is_proven_key

CHUNK_BYTES = 1024 * 1024           # a chunk's payload target; one entry never splits
MAX_CHUNK_BYTES = 4 * 1024 * 1024   # what a joiner accepts for one chunk
MAX_CHUNKS = 1 << 20                # 1 TiB of state at the target size
MAX_LISTED = 16


class InvalidSnapshot(Exception):
    """A snapshot, chunk or meta that does not check out; ``reason`` says what, in one line.
    The fault is always the peer that served it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@register("ss/meta")
@dataclass(frozen=True)
class SnapshotMeta(Message):
    """The state after ``height``: ``entries`` proven entries in ``chunk_hashes`` chunks,
    whose tree has root ``state_root`` (the header of height+1 carries it)."""

    height: Height = field_of(U64)
    state_root: bytes = field_of(HASH)
    entries: int = field_of(U64)
    chunk_hashes: tuple[bytes, ...] = field_of(List(HASH, MAX_CHUNKS))


@register("ss/list")
@dataclass(frozen=True)
class SnapshotList(Message):
    """The complete snapshots a node serves, newest first."""

    metas: tuple[SnapshotMeta, ...] = field_of(List(Nested(SnapshotMeta), MAX_LISTED))


@dataclass(frozen=True)
class Snapshot:
    meta: SnapshotMeta
    chunks: tuple[bytes, ...]


def compute_chunk_hash(chunk: bytes) -> bytes:
    return hashlib.sha256(chunk).digest()


def compute_snapshot(height: int, state_root: bytes, entries: Iterable[tuple[bytes, bytes]],
                     chunk_bytes: int = CHUNK_BYTES) -> Snapshot:
    """Cut the proven ``entries`` (any order) of the state after ``height`` into chunks.

    Each chunk is a msgpack array of [key, value] pairs, keys ascending across chunks."""
    chunks: list[bytes] = []
    count, size = 0, 0
    current: list[list[bytes]] = []
    for key, value in sorted((k, v) for k, v in entries if is_proven_key(k)):
        current.append([key, value])
        size += len(key) + len(value) + 8
        count += 1
        if size >= chunk_bytes:
            chunks.append(msgpack.packb(current, use_bin_type=True))
            current, size = [], 0
    if current or not chunks:
        chunks.append(msgpack.packb(current, use_bin_type=True))
    meta = SnapshotMeta(height=Height(height), state_root=state_root, entries=count,
                        chunk_hashes=tuple(compute_chunk_hash(c) for c in chunks))
    return Snapshot(meta, tuple(chunks))


def verify_chunk(meta: SnapshotMeta, index: int, chunk: bytes) -> None:
    """The chunk is the ``index``-th of ``meta``: its sha256 is the one the meta names."""
    if not 0 <= index < len(meta.chunk_hashes):
        raise InvalidSnapshot(f"chunk {index} is not in a snapshot of {len(meta.chunk_hashes)} chunks")
    if len(chunk) > MAX_CHUNK_BYTES:
        raise InvalidSnapshot(f"chunk {index} exceeds {MAX_CHUNK_BYTES} bytes")
    if compute_chunk_hash(chunk) != meta.chunk_hashes[index]:
        raise InvalidSnapshot(f"chunk {index} does not hash to the snapshot's meta")


def decode_chunk(chunk: bytes) -> list[tuple[bytes, bytes]]:
    """The strictly ascending (key, value) pairs of one chunk; anything else is refused."""
    try:
        pairs = msgpack.unpackb(chunk, raw=False, use_list=True, strict_map_key=True)
    except (ValueError, msgpack.exceptions.ExtraData, TypeError) as exc:
        raise InvalidSnapshot(f"chunk is not msgpack: {exc}") from None
    if type(pairs) is not list:
        raise InvalidSnapshot("chunk is not an array of entries")
    out: list[tuple[bytes, bytes]] = []
    for pair in pairs:
        if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not bytes or type(pair[1]) is not bytes:
            raise InvalidSnapshot("chunk entry is not a [key, value] pair of bytes")
        key, value = pair
        if not is_proven_key(key) or len(key) > MAX_KEY_BYTES:
            raise InvalidSnapshot("chunk holds a key that is not a state entry")
        if out and key <= out[-1][0]:
            raise InvalidSnapshot("chunk keys are not strictly ascending")
        out.append((key, value))
    return out


def iter_snapshot_entries(meta: SnapshotMeta, chunks: Sequence[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """Every entry of the checked chunks in order; keys ascend across chunks too."""
    if len(chunks) != len(meta.chunk_hashes):
        raise InvalidSnapshot(f"{len(chunks)} chunks for a snapshot of {len(meta.chunk_hashes)}")
    last = None
    for index, chunk in enumerate(chunks):
        verify_chunk(meta, index, chunk)
        for key, value in decode_chunk(chunk):
            if last is not None and key <= last:
                raise InvalidSnapshot(f"chunk {index} keys do not follow the previous chunk's")
            last = key
            yield key, value


def compute_snapshot_state(meta: SnapshotMeta, chunks: Sequence[bytes],
                           key: Keypair | None = None, receive: dict[bytes, bytes] | None = None) -> dict[bytes, bytes]:
    """The state entries to install: the snapshot's entries, the tree rebuilt from them
    and the root, once the rebuilt root is the meta's (and the caller checked the meta's
    root against a committed header, ``verify_snapshot_header``). On a chain that seals
    payloads the salted leaves need the commune data key, opened with the joining
    validator's ``key`` (or its ``receive`` keys) from its copy in the snapshot (docs/privacy.md)."""
    writes = dict(iter_snapshot_entries(meta, chunks))
    if len(writes) != meta.entries:
        raise InvalidSnapshot(f"snapshot holds {len(writes)} entries, its meta says {meta.entries}")
    kv = MemoryKV(writes)
    keys = compute_keyring(kv, key.seed, key.public, receive=receive) if key is not None else None
    root, nodes = compute_tree_build(writes.items(), make_kv_salt_of(kv, keys))
    if root != meta.state_root:
        raise InvalidSnapshot("the rebuilt state root is not the snapshot's")
    writes.update(nodes)
    writes[META_STATE_HASH] = encode_value(root)
    return writes


def verify_snapshot_header(meta: SnapshotMeta, header_height: int, header_state_hash: bytes) -> None:
    """DESIGN §6: the header of height h+1 carries the state root after h."""
    if header_height != meta.height + 1:
        raise InvalidSnapshot(f"header {header_height} does not carry the state after height {meta.height}")
    if header_state_hash != meta.state_root:
        raise InvalidSnapshot(f"snapshot root is not the state root the header of height {header_height} commits to")
