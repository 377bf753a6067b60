"""State sync through the node's real code over a fake link (docs/statesync.md): a real
commune home, real LevelDB stores, blocks with real validator commits. The joiner's
``StateSync`` talks to ``respond_state`` of the validator's store directly; the libp2p
path is tests/integration/node/test_state_sync.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import trio

from consensus.block import Block, Commit, get_equivocators
from consensus.lightsync import SetChange, SetChanges
from consensus.sync import Trusted, verify_chain
from node.home.homedir import load_home
from node.net import STATE_CHUNK, STATE_SET_CHANGES, GetState, PeerUnavailable, StateUnavailable
from node.service.node import Node
from node.service.statesync import StateSync, respond_state
from node.store import Store
from node.service.verify import VerifyError, verify_home
from node.store.pruning import PRUNE_EVERY, Pruning
from node.store.store import DB_DIR
from node.store.snapshots import SNAPSHOTS_DIR, ChunkDownload, list_snapshots, take_snapshot
from tests.unit.service.test_pruning_node import GENESIS_TIME, Run, commune  # noqa: F401 (fixture)
from tokens import get_time_ms
from tokens.snapshot import SnapshotList
from wire import MAX_BLOCK_BYTES, decode


class FakeNet:
    """Peers answering as ``respond_state`` over a lossless link; ``tamper`` rewrites an answer."""

    def __init__(self, peers: dict[str, tuple[Store, Path]], tamper=None) -> None:
        self.peers, self.tamper, self.banned = peers, tamper or {}, {}
        self.asked: list[tuple[str, int, int, int]] = []

    def peer_heights(self) -> dict[str, int]:
        return {p: s.height() for p, (s, _) in self.peers.items() if p not in self.banned}

    def ban_peer(self, peer: str, reason: str) -> None:
        self.banned[peer] = reason

    async def request_state(self, peer: str, kind: int, height: int = 0, index: int = 0) -> bytes:
        self.asked.append((peer, kind, height, index))
        store, home = self.peers[peer]
        try:
            data = respond_state(store, home, GetState(kind=kind, height=height, index=index))
        except StateUnavailable as exc:
            raise PeerUnavailable(str(exc)) from None
        rewrite = self.tamper.get((peer, kind))
        return rewrite(data, index) if rewrite else data


@pytest.fixture
def chain(commune: Path):
    """validator-0 after 60 blocks, with a snapshot (small chunks) taken at height 30."""
    run = Run(commune, "validator-0", Pruning())
    t0 = GENESIS_TIME
    run.commit(t0 + 1, [run.reading(n, t0 + 1, 0, 0) for n in ("household-0", "household-1", "household-3")])
    for n in range(1, 30):
        t = t0 + 1 + n * 120
        run.commit(t + 1, [run.reading("household-0", t, 0, 10 * n), run.reading("household-3", t, 5 * n, 0)])
    take_snapshot(run.store, commune / "validator-0" / SNAPSHOTS_DIR, keep=2, chunk_bytes=300)
    for i in range(30):
        run.commit(t0 + 4000 + i)
    yield run
    run.close()


def join(commune: Path, net: FakeNet) -> tuple[Store, bool]:
    home = load_home(commune / "household-2")
    store = Store.open_home(home.path, chain_id=home.genesis.chain_id)
    return store, trio.run(StateSync(home, store, net).run)


def block_sync(commune: Path, store: Store, source: Store) -> None:
    """What runner.Syncer does after the install: verify and commit the blocks since."""
    node = Node(load_home(commune / "household-2"), store, pruning=Pruning(keep_states=4, keep_blocks=5))
    trusted = Trusted(store.height(), store.last_block_id(), get_time_ms(store.state))
    pairs = [(decode(b.block, Block, MAX_BLOCK_BYTES), decode(b.commit, Commit, MAX_BLOCK_BYTES))
             for b in source.iter_blocks(store.height() + 1)]
    for block, commit in verify_chain(trusted, node.chain_id, pairs, node.app.validator_set):
        node.app.commit(block, commit, get_equivocators(block))


def test_joiner_installs_the_snapshot_and_block_syncs_to_the_same_state(commune: Path, chain: Run):
    source = chain.store
    net = FakeNet({"validator": (source, commune / "validator-0")})
    store, installed = join(commune, net)
    try:
        assert installed and not net.banned
        meta = list_snapshots(commune / "validator-0" / SNAPSHOTS_DIR)[0]
        assert len(meta.chunk_hashes) > 3 and meta.height == 30
        assert store.height() == 30 and store.state_from() == 30 and store.blocks_from() == 31
        assert store.state_hash() == meta.state_root == decode(source.block(31), Block, MAX_BLOCK_BYTES).header.state_hash
        assert store.last_block_id() == source.block_id(30)
        store.verify_state_hash()          # the rebuilt tree holds exactly the installed entries
        # The installed snapshot stays in the home, for `node verify`.
        assert (commune / "household-2" / "statesync" / f"30-{meta.state_root.hex()[:16]}" / "meta.bin").is_file()
        block_sync(commune, store, source)
        assert store.height() == source.height() == 60
        assert store.state_hash() == source.state_hash()
        # Pruning counts from the snapshot: nothing below it, bodies of the last window only.
        assert store.blocks_from() > 31 and store.height() % PRUNE_EVERY == 0
        assert store.tree_from() > 30
        store.verify_state_hash()          # the pruned tree still holds the last root whole
    finally:
        store.close()


def test_joined_store_reopens_at_its_snapshot_height(commune: Path, chain: Run):
    store, _ = join(commune, FakeNet({"validator": (chain.store, commune / "validator-0")}))
    store.close()
    home = load_home(commune / "household-2")
    with Store.open_home(home.path, chain_id=home.genesis.chain_id) as again:
        assert again.height() == 30 and again.state_from() == 30
        # The joiner serves the set changes it verified (none here) and its base header.
        assert decode(respond_state(again, home.path, GetState(kind=STATE_SET_CHANGES, height=0, index=0)),
                      SetChanges, 1 << 20).changes == ()


def test_invalid_chunk_bans_the_peer_and_the_download_resumes_from_another(commune: Path, chain: Run):
    source = chain.store
    peers = {"zz-bad": (source, commune / "validator-0"), "aa-good": (source, commune / "validator-0")}

    def corrupt_third(data: bytes, index: int) -> bytes:
        return data[:-1] + bytes([data[-1] ^ 1]) if index == 2 else data

    net = FakeNet(peers, tamper={("zz-bad", STATE_CHUNK): corrupt_third})
    # Same height for both: sorted by height then as listed; make the bad one first.
    net.peer_heights = lambda: {"zz-bad": 60, "aa-good": 59}
    store, installed = join(commune, net)
    try:
        assert installed and set(net.banned) == {"zz-bad"} and "does not hash" in net.banned["zz-bad"]
        good_chunks = [i for p, k, _, i in net.asked if p == "aa-good" and k == STATE_CHUNK]
        # Chunks 0 and 1 came from the bad peer, were good, and were kept: only the rest asked again.
        assert good_chunks[0] == 2 and 0 not in good_chunks and 1 not in good_chunks
        assert store.state_hash() == decode(source.block(31), Block, MAX_BLOCK_BYTES).header.state_hash
    finally:
        store.close()


def test_invalid_forged_set_change_bans_the_peer_and_nothing_is_installed(commune: Path, chain: Run):
    source = chain.store
    header31 = decode(source.block(31), Block, MAX_BLOCK_BYTES).header
    commit31 = decode(source.commit(31), Commit, MAX_BLOCK_BYTES)
    # A set change handing the chain to keys the genesis set never signed for.
    forged = SetChanges(changes=(SetChange(header=header31, commit=commit31, validators=(bytes(range(32)),)),))
    net = FakeNet({"forger": (source, commune / "validator-0")},
                  tamper={("forger", STATE_SET_CHANGES): lambda data, index: forged.encode()})
    store, installed = join(commune, net)
    try:
        assert not installed and "forged set change" in net.banned["forger"]
        assert not store.is_initialized()
    finally:
        store.close()


def test_no_snapshot_anywhere_falls_back_to_block_sync(commune: Path):
    run = Run(commune, "validator-0", Pruning())
    try:
        for i in range(3):
            run.commit(GENESIS_TIME + 1 + i)
        store, installed = join(commune, FakeNet({"validator": (run.store, commune / "validator-0")}))
        assert not installed and not store.is_initialized()
        store.close()
        listed = respond_state(run.store, commune / "validator-0", GetState(kind=0, height=0, index=0))
        assert decode(listed, SnapshotList, 1 << 20).metas == ()
    finally:
        run.close()


def test_a_snapshot_of_the_top_height_keeps_the_one_below_served(commune: Path, chain: Run):
    """``--snapshot-keep 1``: the snapshot just taken is of the top height, served only
    once the next header is committed; the one below stays served until then, and a
    joiner installs it (test_auditor_live's auditor found none so and could not join)."""
    directory = commune / "validator-0" / SNAPSHOTS_DIR
    take_snapshot(chain.store, directory, keep=1)
    assert [m.height for m in list_snapshots(directory)] == [60, 30]
    listed = decode(respond_state(chain.store, commune / "validator-0", GetState(kind=0, height=0, index=0)),
                    SnapshotList, 1 << 20).metas
    assert [m.height for m in listed] == [30]
    store, installed = join(commune, FakeNet({"validator": (chain.store, commune / "validator-0")}))
    try:
        assert installed and store.height() == 30
    finally:
        store.close()
    # Once the next snapshot is taken, the top one's predecessor serves and the oldest goes.
    chain.commit(GENESIS_TIME + 5000)
    take_snapshot(chain.store, directory, keep=1)
    assert [m.height for m in list_snapshots(directory)] == [61, 60]


def test_download_keeps_only_verified_chunks(tmp_path: Path, chain: Run, commune: Path):
    meta = list_snapshots(commune / "validator-0" / SNAPSHOTS_DIR)[0]
    download = ChunkDownload(tmp_path, meta)
    assert download.missing() == list(range(len(meta.chunk_hashes)))
    chunk0 = respond_state(chain.store, commune / "validator-0", GetState(kind=STATE_CHUNK, height=30, index=0))
    download.save_chunk(0, chunk0)
    with pytest.raises(Exception, match="does not hash"):
        download.save_chunk(1, chunk0)
    again = ChunkDownload(tmp_path, meta)     # a restarted join sees what is already there
    assert again.missing() == list(range(1, len(meta.chunk_hashes)))


def test_node_verify_on_a_state_synced_home_replays_from_the_snapshot(commune: Path, chain: Run):
    store, _ = join(commune, FakeNet({"validator": (chain.store, commune / "validator-0")}))
    try:
        block_sync(commune, store, chain.store)
    finally:
        store.close()
    # Keep every block since the snapshot: the default household window (5 here) pruned some.
    home = commune / "household-2"
    with pytest.raises(VerifyError, match="state-synced at height 30"):
        verify_home(home)
    # Join again keeping every block (the kept download is reused: nothing is fetched twice).
    shutil.rmtree(home / DB_DIR)
    store, _ = join(commune, FakeNet({"validator": (chain.store, commune / "validator-0")}))
    try:
        node = Node(load_home(home), store, pruning=Pruning(mode="archive"))
        trusted = Trusted(store.height(), store.last_block_id(), get_time_ms(store.state))
        pairs = [(decode(b.block, Block, MAX_BLOCK_BYTES), decode(b.commit, Commit, MAX_BLOCK_BYTES))
                 for b in chain.store.iter_blocks(31)]
        for block, commit in verify_chain(trusted, node.chain_id, pairs, node.app.validator_set):
            node.app.commit(block, commit, ())
    finally:
        store.close()
    report = verify_home(home)
    assert report.from_height == 30 and report.blocks == 30 and report.height == 60
    assert report.state_hash == chain.store.state_hash().hex()
    assert "snapshot of height 30" in report.summary()
    # A tampered kept chunk is found.
    kept = next((home / "statesync").glob("30-*"))
    chunk = kept / "chunk-000001"
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"\x00")
    with pytest.raises(VerifyError, match="chunk 1 does not hash"):
        verify_home(home)
