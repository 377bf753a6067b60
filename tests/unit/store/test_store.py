"""The LevelDB store: atomic block commits, reopening, reads, and clear errors (DESIGN §8)."""

from __future__ import annotations

import subprocess
import sys

import plyvel
import pytest

from node.cli import ONE_LINE_ERRORS
from node.errors import UserError
from node.store import Store, StoreCorrupt, StoreError, StoreLocked
from node.store import layout as L
from tokens.statetree import compute_tree_build

CHAIN = b"\x01" * 32
OTHER_CHAIN = b"\x02" * 32
GENESIS_STATE = {b"acct/a": b"10", b"acct/b": b"20", b"param/x": b"1"}


def block_id(height: int) -> bytes:
    return height.to_bytes(32, "big")


def hash_of(state: dict[bytes, bytes]) -> bytes:
    return compute_tree_build(state.items())[0]


def apply(state: dict[bytes, bytes], writes: dict[bytes, bytes | None]) -> dict[bytes, bytes]:
    new = dict(state)
    for key, value in writes.items():
        if value is None:
            new.pop(key, None)
        else:
            new[key] = value
    return new


def commit(store: Store, state: dict[bytes, bytes], height: int, writes, **kw) -> dict[bytes, bytes]:
    new = apply(state, writes)
    store.commit_block(height, block_id(height), b"block%d" % height, b"commit%d" % height,
                       writes, hash_of(new), **kw)
    return new


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "db") as s:
        s.init_genesis(CHAIN, GENESIS_STATE, hash_of(GENESIS_STATE))
        yield s


def test_fresh_store_has_no_genesis(tmp_path):
    with Store.open(tmp_path / "db") as s:
        assert not s.is_initialized()
        assert s.chain_id() is None
        with pytest.raises(StoreError, match="no genesis"):
            s.height()


def test_genesis_sets_height_zero_and_state(store):
    assert store.chain_id() == CHAIN
    assert store.height() == 0
    assert store.state_hash() == hash_of(GENESIS_STATE)
    assert store.last_block_id() is None
    assert store.state.get(b"acct/a") == b"10"
    assert store.verify_state_hash() == hash_of(GENESIS_STATE)


def test_commit_block_writes_block_commit_state_and_meta(store):
    state = commit(store, GENESIS_STATE, 1, {b"acct/a": b"5", b"acct/c": b"5", b"param/x": None},
                   extra_meta={"validators": b"v1"})
    assert store.height() == 1
    assert store.block(1) == b"block1" and store.commit(1) == b"commit1"
    assert store.block_id(1) == block_id(1) and store.last_block_id() == block_id(1)
    assert store.height_of(block_id(1)) == 1
    assert store.extra("validators") == b"v1"
    assert store.state.get(b"param/x") is None
    assert dict(store.state.iter_prefix(b"")) == state
    assert store.verify_state_hash() == hash_of(state)


def test_reopen_resumes_at_last_committed_height(tmp_path):
    state = dict(GENESIS_STATE)
    with Store.open(tmp_path / "db") as s:
        s.init_genesis(CHAIN, state, hash_of(state))
        for h in range(1, 4):
            state = commit(s, state, h, {b"acct/a": b"%d" % h, b"h/%d" % h: b"x"})
    with Store.open(tmp_path / "db", chain_id=CHAIN) as s:
        assert s.height() == 3
        assert s.state_hash() == hash_of(state)
        assert dict(s.state.iter_prefix(b"")) == state
        assert s.verify_state_hash() == hash_of(state)
        state = commit(s, state, 4, {b"acct/b": None})
        assert s.height() == 4


def test_iter_prefix_is_sorted_and_stays_in_state(store):
    commit(store, GENESIS_STATE, 1, {b"acct/0": b"z", b"acct/\xff": b"y"})
    keys = [k for k, _ in store.state.iter_prefix(b"acct/")]
    assert keys == [b"acct/0", b"acct/a", b"acct/b", b"acct/\xff"]
    # Blocks and meta live in other namespaces and never show up as state.
    assert all(not k.startswith((b"m/", b"b/")) for k, _ in store.state.iter_prefix(b""))
    assert len(list(store.state.iter_prefix(b""))) == 5


def test_iter_blocks_walks_heights_in_order(store):
    state = GENESIS_STATE
    for h in range(1, 6):
        state = commit(store, state, h, {b"n": b"%d" % h})
    assert [b.height for b in store.iter_blocks()] == [1, 2, 3, 4, 5]
    assert [b.block for b in store.iter_blocks(2, 3)] == [b"block2", b"block3"]
    assert [b.commit for b in store.iter_blocks(5, 99)] == [b"commit5"]
    assert list(store.iter_blocks(6)) == []


def test_snapshot_sees_one_instant(store):
    with store.snapshot() as snap:
        commit(store, GENESIS_STATE, 1, {b"acct/a": b"0"})
        assert snap.height() == 0 and store.height() == 1
        assert snap.state.get(b"acct/a") == b"10"
        assert snap.block(1) is None
        assert snap.verify_state_hash() == hash_of(GENESIS_STATE)


def test_open_home_uses_db_subdirectory(tmp_path):
    with Store.open_home(tmp_path) as s:
        s.init_genesis(CHAIN, {}, bytes(32))
    assert (tmp_path / "db" / "CURRENT").exists()


def test_store_errors_are_printed_as_one_line_and_are_not_command_errors():
    # node/cli.py prints every family of ONE_LINE_ERRORS as one line; the store raises its own.
    assert issubclass(StoreLocked, ONE_LINE_ERRORS) and not issubclass(StoreError, UserError)
    assert issubclass(StoreLocked, StoreError) and issubclass(StoreCorrupt, StoreError)


def test_invalid_commit_out_of_order(store):
    with pytest.raises(StoreError, match="store is at height 0"):
        store.commit_block(2, block_id(2), b"b", b"c", {}, bytes(32))
    commit(store, GENESIS_STATE, 1, {})
    with pytest.raises(StoreError, match="store is at height 1"):
        store.commit_block(1, block_id(9), b"b", b"c", {}, bytes(32))
    assert store.height() == 1 and store.block(2) is None


def test_invalid_commit_before_genesis(tmp_path):
    with Store.open(tmp_path / "db") as s:
        with pytest.raises(StoreError, match="no genesis"):
            s.commit_block(1, block_id(1), b"b", b"c", {}, bytes(32))


def test_invalid_second_genesis(store):
    with pytest.raises(StoreError, match="already has a genesis"):
        store.init_genesis(CHAIN, {}, bytes(32))
    assert store.state.get(b"acct/a") == b"10"


def test_invalid_duplicate_block_id(store):
    commit(store, GENESIS_STATE, 1, {})
    with pytest.raises(StoreError, match="already stored at height 1"):
        store.commit_block(2, block_id(1), b"b", b"c", {}, bytes(32))


@pytest.mark.parametrize("bad", [b"short", "x" * 32, None])
def test_invalid_hash_lengths(store, bad):
    with pytest.raises(StoreError, match="32 bytes"):
        store.commit_block(1, block_id(1), b"b", b"c", {}, bad)
    with pytest.raises(StoreError, match="32 bytes"):
        store.commit_block(1, bad, b"b", b"c", {}, bytes(32))
    assert store.height() == 0


def test_invalid_write_leaves_store_untouched(store):
    # A bad value is found while staging; the batch is dropped, nothing is written.
    writes = {b"acct/a": b"0", b"acct/z": 7}
    with pytest.raises(StoreError, match="bytes or None"):
        store.commit_block(1, block_id(1), b"b", b"c", writes, bytes(32))
    with pytest.raises(StoreError, match="state key must be bytes"):
        store.commit_block(1, block_id(1), b"b", b"c", {"acct/a": b"0"}, bytes(32))
    with pytest.raises(StoreError, match="extra meta"):
        store.commit_block(1, block_id(1), b"b", b"c", {b"acct/a": b"0"}, bytes(32), extra_meta={"v": 1})
    assert store.height() == 0 and store.block(1) is None
    assert store.state.get(b"acct/a") == b"10" and store.state.get(b"acct/z") is None
    assert store.verify_state_hash() == hash_of(GENESIS_STATE)


def test_invalid_reopen_with_another_genesis(tmp_path):
    with Store.open(tmp_path / "db") as s:
        s.init_genesis(CHAIN, {}, bytes(32))
    with pytest.raises(StoreError, match="belongs to chain 0101") as err:
        Store.open(tmp_path / "db", chain_id=OTHER_CHAIN)
    assert "\n" not in str(err.value)
    with Store.open(tmp_path / "db", chain_id=CHAIN) as s:  # the failed open released the lock
        assert s.height() == 0


def test_invalid_double_open_in_one_process(store):
    with pytest.raises(StoreLocked, match="already open in this process"):
        Store.open(store.path)
    assert store.height() == 0  # the first handle still works


def test_invalid_open_locked_by_another_process(tmp_path):
    path = tmp_path / "db"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import plyvel, sys; d = plyvel.DB(sys.argv[1], create_if_missing=True); "
         "print('ready', flush=True); sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLocked, match="another process holds .*LOCK") as err:
            Store.open(path)
        assert "\n" not in str(err.value)
    finally:
        holder.stdin.close()
        holder.wait()
    with Store.open(path) as s:  # free again once the holder exits
        assert not s.is_initialized()


def test_invalid_corrupt_database(tmp_path):
    with Store.open(tmp_path / "db") as s:
        s.init_genesis(CHAIN, {}, bytes(32))
    (tmp_path / "db" / "CURRENT").write_bytes(b"garbage")
    with pytest.raises(StoreCorrupt, match="is corrupt") as err:
        Store.open(tmp_path / "db")
    assert "\n" not in str(err.value)


def test_invalid_path_is_a_file(tmp_path):
    (tmp_path / "db").write_text("not a database")
    with pytest.raises(StoreError, match="cannot open database"):
        Store.open(tmp_path / "db")


def test_invalid_missing_database_without_create(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(tmp_path / "db", create=False)


def test_invalid_foreign_leveldb(tmp_path):
    db = plyvel.DB(str(tmp_path / "db"), create_if_missing=True)
    db.put(b"hello", b"world")
    db.close()
    with pytest.raises(StoreCorrupt, match="not a voisinage database"):
        Store.open(tmp_path / "db")


def test_invalid_missing_block_is_reported_on_open(tmp_path):
    with Store.open(tmp_path / "db") as s:
        s.init_genesis(CHAIN, {}, bytes(32))
        s.commit_block(1, block_id(1), b"b", b"c", {}, bytes(32))
    db = plyvel.DB(str(tmp_path / "db"))
    db.delete(L.key_block(1))
    db.close()
    with pytest.raises(StoreCorrupt, match="block 1 is missing"):
        Store.open(tmp_path / "db")


def test_invalid_tampered_state_fails_verification(tmp_path):
    with Store.open(tmp_path / "db") as s:
        s.init_genesis(CHAIN, GENESIS_STATE, hash_of(GENESIS_STATE))
    db = plyvel.DB(str(tmp_path / "db"))
    db.put(L.key_state(b"acct/a"), b"1000000")
    db.close()
    with Store.open(tmp_path / "db") as s:
        with pytest.raises(StoreCorrupt, match="stored state hash .* != recomputed"):
            s.verify_state_hash()


def test_invalid_bad_meta_height(tmp_path):
    with Store.open(tmp_path / "db") as s:
        s.init_genesis(CHAIN, {}, bytes(32))
    db = plyvel.DB(str(tmp_path / "db"))
    db.put(L.META_HEIGHT, b"\x01")
    db.close()
    with pytest.raises(StoreCorrupt, match="bad meta height"):
        Store.open(tmp_path / "db")


def test_blocks_stay_in_the_memtable_until_16_mib(tmp_path):
    # 8 MiB of blocks: LevelDB's 4 MiB default would have written level-0 tables (and
    # every node of a localnet would have done it at the same height).
    state, block = dict(GENESIS_STATE), bytes(range(256)) * 400     # 100 kB
    with Store.open(tmp_path / "db") as s:
        s.init_genesis(CHAIN, state, hash_of(state))
        for h in range(1, 81):
            writes = {b"acct/a": str(h).encode()}
            state = apply(state, writes)
            s.commit_block(h, block_id(h), block + h.to_bytes(4, "big"), b"c", writes, hash_of(state))
        tables = list((tmp_path / "db").glob("*.ldb"))
        assert s.height() == 80
    assert tables == []


def test_invalid_store_of_a_newer_format_is_refused_and_left_alone(tmp_path) -> None:
    from node.store.store import StoreNewer

    with Store.open(tmp_path / "db") as store:
        store.init_genesis(CHAIN, GENESIS_STATE, hash_of(GENESIS_STATE))
    db = plyvel.DB(str(tmp_path / "db"))
    db.put(L.META_VERSION, L.encode_height(L.FORMAT_VERSION + 1))
    db.close()
    with pytest.raises(StoreNewer, match=f"store format {L.FORMAT_VERSION + 1}, newer than this software"):
        Store.open(tmp_path / "db", create=False)
    db = plyvel.DB(str(tmp_path / "db"))
    assert db.get(L.META_VERSION) == L.encode_height(L.FORMAT_VERSION + 1)
    db.close()


def test_invalid_store_with_a_garbled_format_key_is_corrupt(tmp_path) -> None:
    with Store.open(tmp_path / "db") as store:
        store.init_genesis(CHAIN, GENESIS_STATE, hash_of(GENESIS_STATE))
    db = plyvel.DB(str(tmp_path / "db"))
    db.put(L.META_VERSION, b"\x01")
    db.close()
    with pytest.raises(StoreCorrupt, match="unknown store format"):
        Store.open(tmp_path / "db", create=False)
