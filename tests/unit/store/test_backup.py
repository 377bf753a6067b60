"""Backup files (node/store/backup.py): written from a real LevelDB snapshot, restored
whole, and refused with one line when corrupt or truncated, with nothing written."""

from __future__ import annotations

import os

import pytest

from node.cli import main
from node.consent.store import CONSENT_DIR, open_consent_store
from node.store import Store
from node.store import backup
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


# --- the household's consent database (format 2) ---

CONSENT = [(b"client/c1", b'{"client_id":"c1"}'), (b"log/\x00\x00\x00\x00\x00\x00\x00\x01", b'{"scope":"x"}')]


def test_consent_entries_are_restored_into_the_homes_consent_database(tmp_path) -> None:
    with make_store(tmp_path / "src") as store, store.snapshot() as snap:
        write_backup(iter_backup(snap.iter_entries(), FILES, chain_id=CHAIN, height=snap.height(), consent=CONSENT),
                     tmp_path / "home.bak")
        entries = dict(snap.iter_entries())
    info = restore_backup(tmp_path / "home.bak", tmp_path / "home")
    assert (info.entries, info.consent_entries) == (len(entries), 2)
    with open_consent_store(tmp_path / "home") as consent:
        assert list(consent.iter_entries()) == CONSENT
    with Store.open(tmp_path / "home" / DB_DIR, chain_id=CHAIN, create=False) as restored:
        assert dict(restored.iter_entries()) == entries      # no consent entry in the chain's store


def test_a_format_1_backup_is_still_restored_and_keeps_the_homes_consents(tmp_path, monkeypatch) -> None:
    with monkeypatch.context() as m:
        m.setattr(backup, "BACKUP_FORMAT", 1)
        out, entries = backup_of(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    with open_consent_store(home) as consent:
        consent.add_client({"client_id": "kept"})
    info = restore_backup(out, home, force=True)
    assert info.consent_entries == 0 and info.entries == len(entries)
    with open_consent_store(home) as consent:
        assert consent.get_client("kept") == {"client_id": "kept"}


def test_invalid_consent_record_in_a_format_1_file_is_refused(tmp_path, monkeypatch) -> None:
    with make_store(tmp_path / "src") as store, store.snapshot() as snap, monkeypatch.context() as m:
        m.setattr(backup, "BACKUP_FORMAT", 1)
        chunks = b"".join(iter_backup(snap.iter_entries(), (), chain_id=CHAIN, height=snap.height(), consent=CONSENT))
    (tmp_path / "odd.bak").write_bytes(chunks)
    with pytest.raises(BackupError, match="unknown record kind 3"):
        read_backup_info(tmp_path / "odd.bak")


def test_the_backups_consent_directory_is_the_consent_stores() -> None:
    assert backup.CONSENT_DIR == CONSENT_DIR
