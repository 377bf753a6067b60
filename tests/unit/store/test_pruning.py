"""What a pruned store keeps (docs/state.md "Pruning"), on real LevelDB: the state tree
of the last K roots whole and nothing more, block bodies below a window dropped with
their headers and commits kept, and the archive of history that left the state."""

from __future__ import annotations

import random

import pytest

from node.store import Store, StoreError
from node.store import layout as SL
from tokens import layout as L
from tokens.kv import encode_value
from tokens.queries import get_household_intervals
from tokens.statetree import compute_tree_build, compute_tree_change, get_tree_record, iter_tree_entries
from wire.merkle import EMPTY, LEAF_TAG

CHAIN = b"\x01" * 32
KEEP = 5


def block_id(height: int) -> bytes:
    return height.to_bytes(32, "big")


def reachable(store: Store, roots) -> set[bytes]:
    seen: set[bytes] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node == EMPTY or node in seen:
            continue
        seen.add(node)
        record = get_tree_record(store.state, node)
        if record[0] != LEAF_TAG[0]:
            stack.extend((record[1:33], record[33:65]))
    return seen


def run_chain(store: Store, heights: int, *, index: bool, seed: int = 7, keep: int | None = KEEP):
    """Random sets and deletes over a few keys and values, so that old subtrees (and
    old leaves) come back and go again; prune after every block if ``keep``."""
    rng = random.Random(seed)
    keys = [b"k/%d" % i for i in range(40)]
    state = {b"meta/x": b"0"}
    root, nodes = compute_tree_build(state.items())
    store.init_genesis(CHAIN, {**state, **nodes}, root)
    history = {0: (root, dict(state))}
    for height in range(1, heights + 1):
        writes: dict[bytes, bytes | None] = {}
        for _ in range(rng.randint(1, 6)):
            writes[rng.choice(keys)] = rng.choice([None, b"a", b"b", b"c"])
        writes = {k: v for k, v in writes.items() if state.get(k) != v}     # as Overlay.writes()
        change = compute_tree_change(store.state, root, writes)
        store.commit_block(height, block_id(height), b"block%d" % height, b"commit%d" % height,
                           {**writes, **change.nodes}, change.root,
                           stale_nodes=change.stale if index else None)
        for key, value in writes.items():
            if value is None:
                state.pop(key)
            else:
                state[key] = value
        root = change.root
        history[height] = (root, dict(state))
        if keep:
            store.prune_tree(keep)
            for kept in range(max(0, height - keep + 1), height + 1):
                assert dict(iter_tree_entries(store.state, history[kept][0])) == history[kept][1], (height, kept)
    return history


def test_pruned_tree_keeps_the_last_roots_whole_and_nothing_else(tmp_path):
    with Store.open(tmp_path / "db") as store:
        history = run_chain(store, 300, index=True)
        height = store.height()
        assert store.tree_from() == height - KEEP + 1
        kept_roots = [history[h][0] for h in range(height - KEEP + 1, height + 1)]
        stored = {key[len(L.TREE):] for key, _ in store.state.iter_prefix(L.TREE)}
        assert stored == reachable(store, kept_roots)
        # A root older than the window has lost its nodes.
        assert history[height - KEEP - 20][0] not in stored
        # The index holds only entries the next passes still need.
        for key, _ in store._db.iterator(prefix=SL.STALE):
            assert SL.decode_height(key[len(SL.STALE):len(SL.STALE) + 8]) > height - KEEP + 1


def test_tree_pruning_saves_space_against_an_archive_store(tmp_path):
    with Store.open(tmp_path / "archive") as archive, Store.open(tmp_path / "pruned") as pruned:
        run_chain(archive, 300, index=False, keep=None)
        run_chain(pruned, 300, index=True)
        assert archive.state_hash() == pruned.state_hash()
        count = lambda s: sum(1 for _ in s.state.iter_prefix(L.TREE))   # noqa: E731
        assert count(pruned) * 3 < count(archive)


def test_store_without_index_prunes_nothing(tmp_path):
    with Store.open(tmp_path / "db") as store:
        run_chain(store, 50, index=False, keep=None)
        before = sum(1 for _ in store.state.iter_prefix(L.TREE))
        assert store.prune_tree(KEEP) == 0
        assert sum(1 for _ in store.state.iter_prefix(L.TREE)) == before


def test_prune_tree_in_bounded_passes_ends_where_one_pass_ends(tmp_path):
    with Store.open(tmp_path / "a") as one, Store.open(tmp_path / "b") as many:
        run_chain(one, 120, index=True, keep=None)
        run_chain(many, 120, index=True, keep=None)
        one.prune_tree(KEEP)
        passes = 0
        while many.tree_from() < many.height() - KEEP + 1:
            many.prune_tree(KEEP, max_nodes=37)
            passes += 1
        assert passes > 3
        tree = lambda s: dict(s.state.iter_prefix(L.TREE))   # noqa: E731
        assert tree(one) == tree(many)


def test_invalid_keep_roots(tmp_path):
    with Store.open(tmp_path / "db") as store:
        run_chain(store, 3, index=True, keep=None)
        with pytest.raises(StoreError, match="keep_roots"):
            store.prune_tree(0)


def test_pruned_blocks_keep_headers_commits_and_the_last_block(tmp_path):
    with Store.open(tmp_path / "db") as store:
        run_chain(store, 20, index=True, keep=None)
        assert store.prune_blocks(15, lambda block: b"header of " + block) == 14
        assert store.blocks_from() == 15
        assert store.block(14) is None and store.pruned_header(14) == b"header of block14"
        assert store.commit(14) == b"commit14" and store.block_id(14) == block_id(14)
        assert store.block(15) == b"block15" and store.pruned_header(15) is None
        with pytest.raises(StoreError, match="block 3 was pruned"):
            store.get_stored_block(3)
        # Never the last block (a reopened store checks it), whatever the window.
        assert store.prune_blocks(10**6, lambda block: block) == 5
        assert store.block(20) == b"block20"
    with Store.open(tmp_path / "db") as reopened:
        assert reopened.height() == 20 and reopened.blocks_from() == 20


def archived(start: int, addr: bytes, e: int, i: int) -> list[tuple[bytes, bytes]]:
    return [(L.key_interval(start), encode_value([start + 1800, e, i, min(e, i), True, 0, e, min(e, i)])),
            (L.key_entry(start, addr), encode_value([e, i, e, 0]))]


def test_history_reads_the_archive_under_the_state_and_prunes_it(tmp_path):
    addr = b"\x07" * 32
    with Store.open(tmp_path / "db") as store:
        store.init_genesis(CHAIN, {}, compute_tree_build([])[0])
        old = archived(0, addr, 100, 0) + archived(1800, addr, 200, 0)
        store.commit_block(1, block_id(1), b"b", b"c", {}, EMPTY, archive=old)
        recent = dict(archived(3600, addr, 300, 0))
        store.commit_block(2, block_id(2), b"b", b"c", recent, EMPTY)
        rows = get_household_intervals(store.history, addr, 0, 10**6)
        assert [(r["start"], r["export_wh"]) for r in rows] == [(0, 100), (1800, 200), (3600, 300)]
        assert get_household_intervals(store.state, addr, 0, 10**6)[0]["start"] == 3600
        assert store.prune_archive(1800) == 1
        assert [r["start"] for r in get_household_intervals(store.history, addr, 0, 10**6)] == [1800, 3600]
        assert store.archive.get(L.key_entry(0, addr)) is None
        assert store.prune_archive(10**6) == 1           # the state's own interval is not the archive's
        assert [r["start"] for r in get_household_intervals(store.history, addr, 0, 10**6)] == [3600]


def test_household_block_window_is_in_chain_time_not_heights():
    """A quiet chain (a block an hour) and a busy one (a block a minute) keep the same
    7 days of bodies; the window only ever starts after a block older than it."""
    from node.store.pruning import Pruner, Pruning

    for step_s in (3600, 60):
        pruner = Pruner(Pruning(keep_block_s=7 * 86_400), b"\x01" * 32, False)
        starts = [pruner.get_blocks_from(h, 1_000_000 + h * step_s) for h in range(1, 7 * 86_400 // step_s + 50)]
        height = len(starts)
        keep_from = starts[-1]
        assert 1_000_000 + (keep_from - 1) * step_s <= 1_000_000 + height * step_s - 7 * 86_400
        assert 1_000_000 + keep_from * step_s > 1_000_000 + height * step_s - 7 * 86_400
        assert starts[: 7 * 86_400 // step_s - 1] == [0] * (7 * 86_400 // step_s - 1)   # nothing before a week
        assert starts == sorted(starts)


def test_keep_states_defaults_by_role_and_keep_blocks_counts_heights():
    from node.store.pruning import DEFAULT_HOUSEHOLD_KEEP_STATES, DEFAULT_KEEP_STATES, Pruner, Pruning

    assert Pruner(Pruning(), b"", True).keep_states == DEFAULT_KEEP_STATES
    assert Pruner(Pruning(), b"", False).keep_states == DEFAULT_HOUSEHOLD_KEEP_STATES
    assert Pruner(Pruning(keep_states=7), b"", False).keep_states == 7
    assert Pruner(Pruning(keep_blocks=30), b"", False).get_blocks_from(100, 0) == 71


def test_compact_returns_what_pruning_deleted_to_the_disk(tmp_path):
    """Large random values (incompressible), all but the last block's body pruned:
    compaction must bring the files close to what is still held."""
    import os

    with Store.open(tmp_path / "db", sync=False) as store:
        store.init_genesis(CHAIN, {b"meta/x": b"0"}, b"\x00" * 32)
        for height in range(1, 401):
            store.commit_block(height, block_id(height), os.urandom(50_000), b"c", {}, b"\x00" * 32)
        store.prune_blocks(400, lambda block: b"h")
        before = store.disk_bytes()
        store.compact()
        after = store.disk_bytes()
        assert before > 15_000_000           # the bodies were on disk ...
        assert after < 2 * store.live_bytes() + 1_000_000 < before   # ... and compaction freed them


def test_state_end_marks_the_end_of_the_state_outside_it(tmp_path):
    """STATE_END sits between the state and the pruning index: written at genesis, added
    to a store written before it on reopening, never part of the state a scan returns."""
    with Store.open(tmp_path / "db") as store:
        run_chain(store, 30, index=True)
        assert store._db.get(SL.STATE_END) == b""
        assert SL.STATE < SL.STATE_END < SL.STALE and not SL.STATE_END.startswith(SL.STATE)
        assert all(not key.startswith(b"0") for key, _ in store.state.iter_prefix(b""))
        store._db.delete(SL.STATE_END)          # as a store from before STATE_END
    with Store.open(tmp_path / "db") as store:
        assert store._db.get(SL.STATE_END) == b""
        assert store.height() == 30


def test_prune_pass_starts_at_tree_from(tmp_path):
    """A pass reads the index from tree_from on, not from its start (whose tombstones it
    stepped over at every pass): an entry planted below tree_from is not visited again."""
    with Store.open(tmp_path / "db") as store:
        history = run_chain(store, 40, index=True, keep=None)
        store.prune_tree(KEEP)
        start = store.tree_from()
        below, node = SL.key_stale(1, b"\x00" * 32), b"\x00" * 32
        store._db.put(below, b"")
        store._db.put(SL.key_stale_at(node), SL.encode_height(1))
        root = history[40][0]
        for height in range(41, 41 + 2 * KEEP):
            store.commit_block(height, block_id(height), b"b", b"c", {}, root, stale_nodes=[])
        store.prune_tree(KEEP)
        assert store.tree_from() > start
        assert store._db.get(below) == b"" and store._db.get(SL.key_stale_at(node)) == SL.encode_height(1)
