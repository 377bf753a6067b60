"""``voisinage node backup`` and ``node restore`` (docs/operations.md "Backups").

A stopped node's databases (the chain's store and, on a household's box, its consent
database) are opened directly; a running node holds LevelDB's locks, so its backup is
asked of its own HTTP API (GET /backup), which streams one plyvel snapshot of each. Either way the home's files are added here, on the node's machine, and the
file is checked whole before it gets its name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from node.commands.client import describe_error, describe_unreachable, parse_node_url
from node.consent.store import open_consent_store
from node.errors import UserError
from node.home.homedir import load_home
from node.store import Store
from node.store.backup import (
    CONSENT_DIR, CONSENT_ENTRY, DB_ENTRY, HOME_FILES, BackupInfo, iter_backup, iter_records,
    read_backup_info, restore_backup, write_backup,
)
from node.store.store import DB_DIR, StoreLocked

BACKUP_TIMEOUT = httpx.Timeout(60.0, read=300.0)


def read_home_files(home: Path) -> list[tuple[str, bytes]]:
    return [(name, (home / name).read_bytes()) for name in HOME_FILES if (home / name).exists()]


def backup_home(home_dir: Path, out: Path, node: str | None, token: str | None) -> tuple[BackupInfo, int, str]:
    """Write the backup of ``home_dir`` to ``out``: (its summary, bytes, "stopped" or "running")."""
    home = load_home(home_dir)
    files = read_home_files(home.path)
    try:
        store = Store.open(home.path / DB_DIR, chain_id=home.genesis.chain_id, create=False)
    except StoreLocked:
        url = parse_node_url(node or f"http://{home.config.get('http', '127.0.0.1:8700')}")
        size = _backup_over_http(url, token, files, out, home.genesis.chain_id)
        return read_backup_info(out), size, "running"
    with store, store.snapshot() as snap, _consent_snapshot(home.path) as consent:
        height = snap.height()
        size = write_backup(iter_backup(snap.iter_entries(), files, chain_id=home.genesis.chain_id,
                                        height=height, consent=consent), out)
    return read_backup_info(out), size, "stopped"


@contextmanager
def _consent_snapshot(home: Path) -> Iterator[Iterable[tuple[bytes, bytes]]]:
    """A stopped household node's consent entries (none when it keeps no consent database)."""
    if not (home / CONSENT_DIR).is_dir():
        yield ()
        return
    with open_consent_store(home) as consent:
        yield consent.iter_entries()


def _backup_over_http(url: str, token: str | None, files: list[tuple[str, bytes]], out: Path,
                      chain_id: bytes) -> int:
    """Download the running node's snapshot, check it, and rewrite it with the home's files."""
    download = out.with_name(out.name + ".download")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(timeout=BACKUP_TIMEOUT) as client, \
                client.stream("GET", f"{url}/backup", headers=headers) as resp:
            if resp.status_code != 200:
                resp.read()
                raise UserError(f"GET /backup: {resp.status_code} {describe_error(resp)}")
            with open(download, "wb") as f:
                for chunk in resp.iter_bytes():
                    f.write(chunk)
        info = read_backup_info(download)
        if info.chain_id != chain_id:
            raise UserError(f"the node at {url} runs another chain than this home's")
        return write_backup(iter_backup(_entries(download, DB_ENTRY), files, chain_id=chain_id, height=info.height,
                                        consent=_entries(download, CONSENT_ENTRY)), out)
    except httpx.HTTPError as exc:
        raise describe_unreachable(url, exc) from None
    except OSError as exc:
        raise UserError(f"cannot write {download}: {exc.strerror or exc}") from None
    finally:
        download.unlink(missing_ok=True)


def _entries(path: Path, kind: int) -> Iterator[tuple[bytes, bytes]]:
    with open(path, "rb") as f:
        for item in iter_records(f):
            if not isinstance(item, BackupInfo) and item[0] == kind:
                yield item[1], item[2]


def restore_home(in_file: Path, home: Path, force: bool) -> BackupInfo:
    info = restore_backup(in_file, home, force=force)
    # The restored store opens (and migrates, if older) as the node would open it.
    with Store.open(Path(home) / DB_DIR, chain_id=info.chain_id, create=False) as store:
        if store.height() != info.height:
            raise UserError(f"restored store is at height {store.height()}, the backup says {info.height}")
    return info
