"""Backup files of a home (docs/operations.md "Backups"): one consistent snapshot of the
database plus the home's small files, with a format header and a checksum.

Layout (integers big-endian)::

    header   MAGIC (16) | backup format u16 | store format u16 | chain id (32) | height u64
    record   kind u8 (DB_ENTRY, HOME_FILE or CONSENT_ENTRY) | key length u32 | key | value length u32 | value
    trailer  END u8 | record count u64 | sha256 of every byte before the trailer's digest (32)

A file is read twice on restore: once to check everything (header, every record,
count, checksum, chain id), and only then to write, so a corrupt or truncated file
writes nothing. Format 2 adds the household's consent database (``consent/``: its
clients, grants and access log, node/consent/store.py) as CONSENT_ENTRY records; a
format 1 file (none) is still read. The double-sign record (sign_state.bin) is never in a backup: a copy
of it is older than the validator's last signature by construction.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import plyvel

from node.errors import OneLineError
from node.store import layout as L

MAGIC = b"VOISINAGE-BACKUP"
BACKUP_FORMAT = 2
READABLE_FORMATS = (1, 2)
DB_ENTRY, HOME_FILE, CONSENT_ENTRY, END = 1, 2, 3, 0xFF
CONSENT_DIR = "consent"             # node/consent/store.py keeps its LevelDB there
HEADER = struct.Struct(">16sHH32sQ")
LENGTH = struct.Struct(">I")
TRAILER = struct.Struct(">BQ32s")
CHUNK_BYTES = 1 << 20
MAX_KEY_BYTES = 1 << 16
MAX_VALUE_BYTES = 64 << 20      # a block is at most 4 MiB; far above any stored value
# The home files a backup carries: what the node needs to run again, its key included.
HOME_FILES = ("genesis.json", "config.json", "key.json")


class BackupError(OneLineError):
    """A backup that cannot be written, read or restored; printed as one line."""


@dataclass(frozen=True)
class BackupInfo:
    chain_id: bytes
    height: int
    store_format: int
    entries: int
    files: tuple[str, ...]
    consent_entries: int = 0


def encode_record(kind: int, key: bytes, value: bytes) -> bytes:
    return bytes((kind,)) + LENGTH.pack(len(key)) + key + LENGTH.pack(len(value)) + value


def iter_store_backup(store, chain_id: bytes, consent: Iterable[tuple[bytes, bytes]] = ()
                      ) -> tuple[int, Iterator[bytes]]:
    """A running node's backup as of now (``GET /backup``): its height, and its bytes
    taken from one snapshot of ``store`` (closed when done), without the home's files."""
    snap = store.snapshot()
    height = snap.height()

    def chunks() -> Iterator[bytes]:
        with snap:
            yield from iter_backup(snap.iter_entries(), (), chain_id=chain_id, height=height, consent=consent)
    return height, chunks()


def iter_backup(entries: Iterable[tuple[bytes, bytes]], files: Iterable[tuple[str, bytes]], *,
                chain_id: bytes, height: int, consent: Iterable[tuple[bytes, bytes]] = ()) -> Iterator[bytes]:
    """The backup's bytes, in chunks of about CHUNK_BYTES: ``entries`` are every key and
    value of one database snapshot, ``files`` the home's files (name, content),
    ``consent`` every key and value of the consent database."""
    digest = hashlib.sha256()
    head = HEADER.pack(MAGIC, BACKUP_FORMAT, L.FORMAT_VERSION, chain_id, height)
    digest.update(head)
    buffer, count = [head], 0
    size = len(head)
    records = [(HOME_FILE, name.encode(), data) for name, data in files]
    for kind, key, value in itertools.chain(records, ((DB_ENTRY, k, v) for k, v in entries),
                                            ((CONSENT_ENTRY, k, v) for k, v in consent)):
        record = encode_record(kind, key, value)
        digest.update(record)
        buffer.append(record)
        size += len(record)
        count += 1
        if size >= CHUNK_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    end = bytes((END,)) + count.to_bytes(8, "big")
    digest.update(end)
    yield b"".join(buffer) + end + digest.digest()


def write_backup(chunks: Iterable[bytes], out: Path) -> int:
    """Write the chunks to ``out`` through a temporary file, synced, then check the file
    as a restore would; only a whole, valid backup gets the name. Returns its size."""
    tmp = out.with_name(out.name + ".partial")
    try:
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)          # it holds the node's key
        read_backup_info(tmp)
        os.replace(tmp, out)
    except OSError as exc:
        raise BackupError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out.stat().st_size


def _read_exact(f: BinaryIO, n: int, digest: hashlib._Hash, where: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise BackupError(f"truncated backup: the file ends inside {where}")
    digest.update(data)
    return data


def iter_records(f: BinaryIO) -> Iterator[tuple[int, bytes, bytes] | BackupInfo]:
    """Every record of a backup, then its ``BackupInfo`` once the trailer checks out."""
    digest = hashlib.sha256()
    head = f.read(HEADER.size)
    if len(head) < HEADER.size or not head.startswith(MAGIC):
        raise BackupError("not a voisinage backup file (bad magic)")
    digest.update(head)
    _, version, store_format, chain_id, height = HEADER.unpack(head)
    if version not in READABLE_FORMATS:
        raise BackupError(f"backup format {version} is not known to this software (it reads "
                          f"{', '.join(map(str, READABLE_FORMATS))})")
    if store_format > L.FORMAT_VERSION:
        raise BackupError(f"the backup holds store format {store_format}, newer than this software's "
                          f"{L.FORMAT_VERSION}: restore it with a newer voisinage")
    count, files, consent = 0, [], 0
    kinds = (DB_ENTRY, HOME_FILE, CONSENT_ENTRY) if version >= 2 else (DB_ENTRY, HOME_FILE)
    while True:
        kind = _read_exact(f, 1, digest, "a record")[0]
        if kind == END:
            break
        if kind not in kinds:
            raise BackupError(f"corrupt backup: unknown record kind {kind} after {count} records")
        key = _read_sized(f, digest, MAX_KEY_BYTES, "a key")
        value = _read_sized(f, digest, MAX_VALUE_BYTES, "a value")
        count += 1
        if kind == HOME_FILE:
            files.append(_check_file_name(key))
        elif kind == CONSENT_ENTRY:
            consent += 1
        elif key == L.META_GENESIS and value != chain_id:
            raise BackupError("corrupt backup: its header names another chain than its database")
        yield kind, key, value
    stated = int.from_bytes(_read_exact(f, 8, digest, "the trailer"), "big")
    stored = f.read(32)
    if len(stored) != 32:
        raise BackupError("truncated backup: the file ends inside the checksum")
    if stored != digest.digest():
        raise BackupError("corrupt backup: the checksum does not match the content")
    if stated != count or f.read(1):
        raise BackupError("corrupt backup: bytes after the trailer or a wrong record count")
    yield BackupInfo(chain_id, height, store_format, count - len(files) - consent, tuple(files), consent)


def _read_sized(f: BinaryIO, digest: hashlib._Hash, limit: int, what: str) -> bytes:
    (size,) = LENGTH.unpack(_read_exact(f, LENGTH.size, digest, f"the length of {what}"))
    if size > limit:
        raise BackupError(f"corrupt backup: {what} of {size} bytes (at most {limit})")
    return _read_exact(f, size, digest, what)


def _check_file_name(raw: bytes) -> str:
    name = raw.decode(errors="replace")
    if name not in HOME_FILES:
        raise BackupError(f"corrupt backup: unexpected home file {name!r}")
    return name


def read_backup_info(path: Path) -> BackupInfo:
    """Check a whole backup file; its summary, or one BackupError line."""
    try:
        with open(path, "rb") as f:
            for item in iter_records(f):
                if isinstance(item, BackupInfo):
                    info = item
    except FileNotFoundError:
        raise BackupError(f"backup file not found: {path}") from None
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None
    return info


def restore_backup(path: Path, home: Path, *, force: bool = False) -> BackupInfo:
    """Check ``path`` whole, then write its database into ``home/db`` and its files into
    ``home``. A non-empty home is refused
    unless ``force``; then its database and carried files are replaced (its consent
    database too when the backup carries one), and the double-sign record, if any, is
    kept (it is newer than anything in the backup)."""
    info = read_backup_info(path)
    home = Path(home)
    if home.exists() and any(home.iterdir()) and not force:
        raise BackupError(f"{home} is not empty; give --force to replace its database and files")
    home.mkdir(parents=True, exist_ok=True)
    dirs = {DB_ENTRY: home / "db"}
    if info.consent_entries:
        dirs[CONSENT_ENTRY] = home / CONSENT_DIR
    temps = {kind: path.with_name(path.name + ".restoring") for kind, path in dirs.items()}
    dbs = {}
    try:
        for kind, tmp_dir in temps.items():
            shutil.rmtree(tmp_dir, ignore_errors=True)
            try:
                dbs[kind] = plyvel.DB(str(tmp_dir), create_if_missing=True, error_if_exists=True)
            except plyvel.Error as exc:
                raise BackupError(f"cannot create the database {tmp_dir}: {exc}") from None
        _write_records(path, home, dbs)
    finally:
        for db in dbs.values():
            db.close()
    for kind, target in dirs.items():
        shutil.rmtree(target, ignore_errors=True)
        os.replace(temps[kind], target)
    return info


def _write_records(path: Path, home: Path, dbs: dict) -> None:
    """Write a checked backup's records: home files into ``home``, database entries
    into ``dbs`` by record kind (the chain's store, the consent database)."""
    batches = {kind: db.write_batch(sync=True) for kind, db in dbs.items()}
    pending = 0
    with open(path, "rb") as f:
        for item in iter_records(f):
            if isinstance(item, BackupInfo):
                break
            kind, key, value = item
            if kind == HOME_FILE:
                target = home / key.decode()
                target.write_bytes(value)
                os.chmod(target, 0o600)
                continue
            batches[kind].put(key, value)
            pending += len(key) + len(value)
            if pending >= CHUNK_BYTES * 16:
                for batch in batches.values():
                    batch.write()
                batches = {kind: db.write_batch(sync=True) for kind, db in dbs.items()}
                pending = 0
    for batch in batches.values():
        batch.write()
