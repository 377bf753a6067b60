"""Backup files (node/store/backup.py): written from a real LevelDB snapshot, restored
whole, and refused with one line when corrupt or truncated, with nothing written."""

from __future__ import annotations

import os

import pytest

from node.cli import main
from node.store import Store
from node.store import layout as L
from node.store.backup import BackupError, iter_backup, read_backup_info, restore_backup, write_backup
from node.store.store import DB_DIR

CHAIN = b"\x01" * 32
FILES = [("genesis.json", b'{"x": 1}'), ("key.json", b'{"secret": "k"}')]


def make_store(path, top: int = 3) -> Store:
    store = Store.open(path)
    store.init_genesis(CHAIN, {b"acct/a": b"10"}, b"\x02" * 32)
    for h in range(1, top + 1):
        store.commit_block(h, h.to_bytes(32, "big"), b"block%d" % h, b"commit", {b"acct/a": b"%d" % h}, b"\x02" * 32)
    return store


def backup_of(tmp_path, top: int = 3):
    with make_store(tmp_path / "src", top) as store, store.snapshot() as snap:
        entries = dict(snap.iter_entries())
        out = tmp_path / "home.bak"
        write_backup(iter_backup(snap.iter_entries(), FILES, chain_id=CHAIN, height=snap.height()), out)
    return out, entries


def test_restore_gives_back_every_entry_and_file(tmp_path) -> None:
    out, entries = backup_of(tmp_path)
    assert os.stat(out).st_mode & 0o077 == 0
    info = restore_backup(out, tmp_path / "home")
    assert (info.height, info.entries, info.files) == (3, len(entries), ("genesis.json", "key.json"))
    assert (tmp_path / "home" / "key.json").read_bytes() == b'{"secret": "k"}'
    with Store.open(tmp_path / "home" / DB_DIR, chain_id=CHAIN, create=False) as restored:
        assert dict(restored.iter_entries()) == entries and restored.height() == 3


def test_a_snapshot_backup_ignores_later_commits(tmp_path) -> None:
    with make_store(tmp_path / "src", 2) as store:
        with store.snapshot() as snap:
            chunks = iter_backup(snap.iter_entries(), (), chain_id=CHAIN, height=snap.height())
            store.commit_block(3, (3).to_bytes(32, "big"), b"b3", b"c3", {b"acct/a": b"3"}, b"\x02" * 32)
            write_backup(chunks, tmp_path / "snap.bak")
    assert read_backup_info(tmp_path / "snap.bak").height == 2
    restore_backup(tmp_path / "snap.bak", tmp_path / "home")
    with Store.open(tmp_path / "home" / DB_DIR, create=False) as restored:
        assert restored.height() == 2 and restored.state.get(b"acct/a") == b"2"


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "trailing"])
def test_invalid_corrupt_backup_is_refused_and_writes_nothing(tmp_path, damage) -> None:
    out, _ = backup_of(tmp_path)
    data = bytearray(out.read_bytes())
    if damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 0x40
    elif damage == "empty":
        data = bytearray()
    else:
        data += b"x"
    out.write_bytes(bytes(data))
    with pytest.raises(BackupError):
        restore_backup(out, tmp_path / "home")
    assert not (tmp_path / "home").exists()


def test_invalid_non_empty_home_is_refused_unless_forced(tmp_path) -> None:
    out, _ = backup_of(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    (home / "sign_state.bin").write_bytes(b"record")
    with pytest.raises(BackupError, match="not empty.*--force"):
        restore_backup(out, home)
    assert not (home / DB_DIR).exists()
    restore_backup(out, home, force=True)
    assert (home / "sign_state.bin").read_bytes() == b"record"     # the record is newer: kept
    assert (home / DB_DIR).is_dir()


def test_invalid_newer_store_format_in_a_backup_is_refused(tmp_path) -> None:
    out, _ = backup_of(tmp_path)
    data = bytearray(out.read_bytes())
    data[18:20] = (L.FORMAT_VERSION + 1).to_bytes(2, "big")
    out.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="newer than this software"):
        read_backup_info(out)


def test_cli_restore_of_a_corrupt_file_is_one_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.bak"
    bad.write_bytes(b"VOISINAGE-BACKUP" + b"\x00" * 10)
    assert main(["node", "restore", "--in", str(bad), "--home", str(tmp_path / "home")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "home").exists()
