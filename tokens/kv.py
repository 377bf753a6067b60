"""Key-value access to the ledger state, and the write-set overlay a block is applied to.

``KV`` is the read interface the state machine needs: point reads and sorted prefix
scans. ``MemoryKV`` implements it with a dict (tests, simulator, demo); node/store/
implements it over LevelDB. ``Overlay`` sits on top of a KV during one block: it
caches *decoded* records, collects every change, and is simply thrown away if a
rule raises (STYLE "Applying a block": never leave a half-applied block).

Every state value is one msgpack object (usually a list). The overlay decodes a
record once, lets the rules mutate it in place, and encodes each dirty record once
when the block ends, so a tx costs a few dict operations, not an encode/decode.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import msgpack

_MISSING = object()


class KV(Protocol):
    """Read access to committed state."""

    def get(self, key: bytes) -> bytes | None:
        """The value stored under ``key``, or None."""

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) whose key starts with ``prefix``, sorted by key."""


def encode_value(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def decode_value(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=False)


class MemoryKV:
    """A dict-backed KV. ``apply(writes)`` commits a block's write set (None deletes)."""

    def __init__(self, items: Mapping[bytes, bytes] | None = None) -> None:
        self._data: dict[bytes, bytes] = dict(items or {})
        self._sorted: list[bytes] | None = None

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        if self._sorted is None:
            self._sorted = sorted(self._data)
        keys = self._sorted
        i = bisect.bisect_left(keys, prefix)
        data = self._data
        while i < len(keys) and keys[i].startswith(prefix):
            yield keys[i], data[keys[i]]
            i += 1

    def apply(self, writes: Mapping[bytes, bytes | None]) -> None:
        data = self._data
        added = [key for key, value in writes.items() if value is not None and key not in data]
        removed = False
        for key, value in writes.items():
            if value is None:
                removed = data.pop(key, None) is not None or removed
            else:
                data[key] = value
        if self._sorted is not None:
            # Keep the sorted key list: filter deletions, then append the new keys as a
            # second sorted run, which the sort merges in linear time.
            keys = [k for k in self._sorted if k in data] if removed else self._sorted
            keys.extend(sorted(added))
            keys.sort()
            self._sorted = keys

    def items(self) -> list[tuple[bytes, bytes]]:
        return sorted(self._data.items())

    def copy(self) -> MemoryKV:
        return MemoryKV(self._data)

    def __len__(self) -> int:
        return len(self._data)


def _family(key: bytes) -> bytes:
    """The first path segment of a key ("acct/", "ie/" ...), used to index dirty keys."""
    cut = key.find(b"/")
    return key if cut < 0 else key[:cut + 1]


class Overlay:
    """A write-set over a KV holding decoded records. Nothing reaches the KV itself."""

    __slots__ = ("base", "_cache", "_orig", "_dirty", "_families")

    def __init__(self, base: KV) -> None:
        self.base = base
        self._cache: dict[bytes, Any] = {}          # key -> decoded record (None: absent)
        self._orig: dict[bytes, bytes | None] = {}  # key -> committed bytes, for the state hash
        self._dirty: set[bytes] = set()
        self._families: dict[bytes, set[bytes]] = {}

    def get(self, key: bytes) -> Any:
        """The decoded record under ``key`` (None if absent). Mutate it, then ``mark`` it."""
        obj = self._cache.get(key, _MISSING)
        if obj is _MISSING:
            raw = self.base.get(key)
            self._orig[key] = raw
            obj = None if raw is None else decode_value(raw)
            self._cache[key] = obj
        return obj

    def put(self, key: bytes, obj: Any) -> None:
        """Store ``obj`` under ``key``; None deletes."""
        if key not in self._orig:
            self._orig[key] = self.base.get(key)
        self._cache[key] = obj
        self.mark(key)

    def mark(self, key: bytes) -> None:
        """Record that the cached record under ``key`` was changed in place."""
        if key not in self._dirty:
            self._dirty.add(key)
            fam = _family(key)
            bucket = self._families.get(fam)
            if bucket is None:
                self._families[fam] = bucket = set()
            bucket.add(key)

    def stage(self, key: bytes, obj: Any) -> None:
        """Cache a fresh record for an absent key without writing it: it is written
        only if a rule later marks it, so a refused tx leaves no trace."""
        if self.get(key) is not None:
            raise RuntimeError(f"stage over an existing record {key!r}")
        self._cache[key] = obj

    def delete(self, key: bytes) -> None:
        self.put(key, None)

    def iter_prefix(self, prefix: bytes) -> list[tuple[bytes, Any]]:
        """Decoded (key, record) pairs under ``prefix``, sorted, with this block's changes."""
        found: dict[bytes, Any] = {}
        cache = self._cache
        for key, raw in self.base.iter_prefix(prefix):
            obj = cache.get(key, _MISSING)
            if obj is _MISSING:
                # Cache what we decode, so a rule that mutates it mutates the cached record.
                obj = cache[key] = decode_value(raw)
                self._orig[key] = raw
            found[key] = obj
        # A prefix that names its family ("ie/...") only looks at that family's keys.
        dirty = self._families.get(_family(prefix), ()) if b"/" in prefix else self._dirty
        for key in dirty:
            if key.startswith(prefix):
                found[key] = cache[key]
        return [(k, found[k]) for k in sorted(found) if found[k] is not None]

    def iter_committed_keys(self, prefix: bytes) -> Iterator[bytes]:
        """The committed keys under ``prefix``, lazily, in key order: a scan that may stop
        early (this block's own changes are not seen)."""
        for key, _ in self.base.iter_prefix(prefix):
            yield key

    def dirty_count(self) -> int:
        return len(self._dirty)

    def writes(self) -> dict[bytes, bytes | None]:
        """The encoded write set: every changed key, with None for deletions."""
        cache = self._cache
        out: dict[bytes, bytes | None] = {}
        for key in sorted(self._dirty):
            obj = cache[key]
            raw = None if obj is None else encode_value(obj)
            if raw != self._orig.get(key):
                out[key] = raw
        return out

    def original(self, key: bytes) -> bytes | None:
        """The committed bytes under ``key`` (read through the base if not yet seen)."""
        if key not in self._orig:
            self._orig[key] = self.base.get(key)
        return self._orig[key]
