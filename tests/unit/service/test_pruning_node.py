"""A node's pruning and history archive through its real commit path (docs/state.md
"Pruning"): real commune homes, a real LevelDB store, blocks with real validator
commits committed by ``LedgerApp.commit``, the production HTTP app over the node,
``node verify`` on the result, and the sync server's answer for pruned blocks."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio

from consensus.block import ZERO_ID, Block, Commit, CommitSig, Header, compute_block_id, compute_tx_root, compute_validators_hash
from consensus.vote import PRECOMMIT, Vote
from node.consent.signed import NONCE_BYTES, sign_target
from node.home.homedir import KEY_FILE, create_network, load_home
from node.home.keyfile import load_key
from node.net import BlocksPruned, GetBlocks, SyncFailure
from node.net.sync import get_blocks_response
from node.service.node import Node
from node.store.pruning import PRUNE_EVERY, Pruning, PruningError, parse_pruning
from node.service import runner
from node.service.runner import Syncer, _stored_pair, open_store
from node.service.verify import VerifyError, verify_home
from tests.support.fake_node import asgi_client
from tokens import layout as L
from tokens.txs import MeterReading
from wire import sign_message
from wire.merkle import verify_proof

GENESIS_TIME = 1_700_000_000 - 1_700_000_000 % 1800
RETENTION_S = 3600


@pytest.fixture
def commune(tmp_path: Path) -> Path:
    create_network(tmp_path, name="Testville", insee="12345", validators=1, households=4, base_port=41000,
                   genesis_time=GENESIS_TIME, params={"history_retention_s": RETENTION_S})
    return tmp_path


class Run:
    """One node of the commune, fed blocks that validator-0 proposes and commits."""

    def __init__(self, commune: Path, name: str, pruning: Pruning) -> None:
        self.commune = commune
        self.home = load_home(commune / name)
        self.store = open_store(self.home)
        self.node = Node(self.home, self.store, pruning=pruning)
        self.validator = load_key(commune / "validator-0" / KEY_FILE)
        self.last_commit: Commit | None = None
        self.seqs: dict[str, int] = {}

    def close(self) -> None:
        self.store.close()

    def restart(self, pruning: Pruning) -> "Run":
        """The same node stopped and started again, going on from its last commit."""
        self.close()
        run = Run(self.commune, self.home.path.name, pruning)
        run.last_commit = self.last_commit
        return run

    def reading(self, name: str, t: int, imp: int, exp: int) -> bytes:
        key = load_key(self.commune / name / KEY_FILE)
        meter = {h.key: h.meter for h in self.home.genesis.households}[key.public]
        self.seqs[name] = self.seqs.get(name, 0) + 1
        tx = MeterReading(signer=key.public, meter=meter, seq=self.seqs[name], t=t, import_wh=imp, export_wh=exp,
                          sig=bytes(64))
        return sign_message(tx, self.home.genesis.chain_id, key).encode()

    def commit(self, time_s: int, txs: list[bytes] = ()) -> None:
        store, chain_id = self.store, self.home.genesis.chain_id
        height = store.height() + 1
        header = Header(chain_id=chain_id, height=height, time_ms=time_s * 1000,
                        parent=store.last_block_id() or ZERO_ID, tx_root=compute_tx_root(list(txs)),
                        state_hash=store.state_hash(), proposer=self.validator.public,
                        next_validators=compute_validators_hash([self.validator.public]), version=1)
        block = Block(header=header, txs=tuple(txs), last_commit=self.last_commit, evidence=())
        block_id = compute_block_id(block)
        vote = sign_message(Vote(kind=PRECOMMIT, height=height, round=0, block_id=block_id,
                                 validator=self.validator.public, sig=bytes(64)), chain_id, self.validator)
        commit = Commit(height=height, round=0, block_id=block_id, sigs=(CommitSig(self.validator.public, vote.sig),))
        self.node.app.commit(block, commit, ())
        self.last_commit = commit

    def run_day(self, blocks: int = 60) -> None:
        """Readings in intervals 0 and 1 (household-0 exports, household-3 imports and
        household-1 exports too), then idle blocks until
        both intervals are older than the retention window."""
        t0 = GENESIS_TIME
        self.commit(t0 + 1, [self.reading(n, t0 + 1, 0, 0) for n in ("household-0", "household-1", "household-3")])
        for n in (1, 2, 3):
            t = t0 + 1 + n * 900
            self.commit(t + 1, [self.reading("household-0", t, 0, 100 * n), self.reading("household-1", t, 0, 50 * n),
                                self.reading("household-3", t, 60 * n, 0)])
        for i in range(blocks - 4):
            self.commit(t0 + 2 * 1800 + RETENTION_S + 10 + i)


def get(run: Run, path: str):
    """GET ``path`` as the node's own key would sign it: a household node's own data is
    its household's (node/api/access.py)."""
    headers = sign_target(run.node.key, "GET", path, int(time.time()), secrets.token_bytes(NONCE_BYTES))

    async def fetch():
        async with asgi_client(run.node) as client:
            return await client.get(path, headers=headers)
    return trio.run(fetch)


def test_household_node_archives_its_own_history_and_prunes_blocks_and_tree(commune: Path):
    run = Run(commune, "household-0", Pruning(keep_states=4, keep_blocks=2))
    try:
        run.run_day()
        store, me = run.store, run.node.key.public
        height = store.height()
        # History left the state: recent nothing, old intervals in the archive.
        assert list(store.state.iter_prefix(L.INTERVAL)) == [] and list(store.state.iter_prefix(L.INTERVAL_ENTRY)) == []
        archived = [k for k, _ in store.archive.iter_prefix(L.INTERVAL_ENTRY)]
        hh1 = load_key(commune / "household-1" / KEY_FILE).public
        hh3 = load_key(commune / "household-3" / KEY_FILE).public
        # Its own entries, and the consumer its energy went to; not the other producer's.
        assert {k[-32:] for k in archived} == {me, hh3}
        assert all(not k.endswith(hh1) for k in archived)
        # The API reads the archive under the state.
        doc = get(run, f"/households/{me.hex()}/intervals?from={GENESIS_TIME}&to={GENESIS_TIME + 1800}").json()
        assert [(r["start"] - GENESIS_TIME, r["export_wh"], r["settled"]) for r in doc["intervals"]] == \
            [(0, 100, True), (1800, 200, True)]
        consumers = get(run, f"/households/{me.hex()}/consumers?interval={GENESIS_TIME // 1800}").json()
        # Its household is told how much of it one neighbour used, not who (docs/privacy.md).
        assert (consumers["consumers_count"], consumers["local_wh"], consumers["consumers"]) == (1, 40, [])   # 60 Wh used of 150 exported, 100 of them ours
        # Pruned: block bodies below the window, tree versions below --keep-states.
        assert store.blocks_from() > 1 and store.block(1) is None and store.commit(1) is not None
        assert store.tree_from() >= height - PRUNE_EVERY - 4
        key = L.key_account(me).hex()
        gone = get(run, f"/proofs/{key}?height=1")
        assert gone.status_code == 410 and "pruned" in gone.json()["error"]
        # The root of tree_from is in the header of a block whose body is pruned.
        assert store.block(store.tree_from() + 1) is None
        for height_asked in (store.tree_from(), height - 1):
            doc = get(run, f"/proofs/{key}?height={height_asked}").json()
            assert verify_proof(bytes.fromhex(doc["root"]), bytes.fromhex(key),
                                None if doc["value"] is None else bytes.fromhex(doc["value"]),
                                bytes.fromhex(doc["proof"]))
        assert get(run, "/blocks/1").status_code == 404
        # A peer asking for pruned blocks is told so; one asking kept blocks gets them.
        answer = get_blocks_response(lambda h: _stored_pair(store, h), GetBlocks(from_height=1, count=10))
        assert isinstance(answer, SyncFailure) and answer.reason.startswith("pruned")
        kept = get_blocks_response(lambda h: _stored_pair(store, h), GetBlocks(from_height=height, count=10))
        assert len(kept.entries) == 1
        with pytest.raises(BlocksPruned):
            _stored_pair(store, 1)
    finally:
        run.close()
    with pytest.raises(VerifyError, match="were pruned"):
        verify_home(commune / "household-0")


def test_validator_keeps_every_block_and_verifies_with_a_pruned_tree(commune: Path):
    run = Run(commune, "validator-0", Pruning(keep_states=4))
    archive_run = Run(commune, "household-2", Pruning(mode="archive"))
    try:
        run.run_day()
        archive_run.last_commit = None
        archive_run.run_day()
        assert run.store.state_hash() == archive_run.store.state_hash()
        assert run.store.blocks_from() == 1 and run.store.block(1) is not None
        assert run.store.tree_from() > 1 and archive_run.store.tree_from() == 0
        tree = lambda r: sum(1 for _ in r.store.state.iter_prefix(L.TREE))   # noqa: E731
        assert tree(run) < tree(archive_run)
        # A validator archives every household's entries.
        assert len({k[-32:] for k, _ in run.store.archive.iter_prefix(L.INTERVAL_ENTRY)}) == 3
        height = run.store.height()
    finally:
        run.close()
        archive_run.close()
    report = verify_home(commune / "validator-0")
    assert report.height == height
    assert verify_home(commune / "household-2").state_hash == report.state_hash


def test_household_block_window_survives_a_restart(commune: Path):
    """A household node restarted more often than its window still prunes block bodies:
    the window is read back from the kept blocks' times, not refilled from the restart
    (a box restarted weekly kept every body forever). Blocks every 10 minutes, a 1-hour
    window, a restart 5 blocks before a pruning pass."""
    window = Pruning(keep_block_s=3600, keep_states=4)
    run = Run(commune, "household-0", window)
    try:
        for h in range(1, 56):
            run.commit(GENESIS_TIME + 600 * h)
        assert run.store.blocks_from() == 45      # at height 50: the last block at or before 50 - 6
        run = run.restart(window)
        for h in range(56, 61):
            run.commit(GENESIS_TIME + 600 * h)
        # At height 60 the window starts after block 54 (its time is exactly an hour before).
        assert run.store.blocks_from() == 55
        assert run.store.block(54) is None and run.store.block(55) is not None
    finally:
        run.close()


def test_validator_drops_block_bodies_past_retention_and_keeps_headers(commune: Path):
    """docs/privacy.md "Retention and erasure": a validator in --pruning default keeps the
    bodies (the readings) of the last --archive-keep-days only, and every header and
    commit. Blocks every 10 minutes, a 1-hour retention, a restart between two passes."""
    retention = Pruning(keep_states=4, archive_keep_s=3600)
    run = Run(commune, "validator-0", retention)
    try:
        for h in range(1, 44):
            run.commit(GENESIS_TIME + 600 * h)
        # At height 40 the bodies up to height 34 (exactly an hour older) left.
        assert run.store.blocks_from() == 35
        assert run.store.block(34) is None and run.store.block(35) is not None
        assert all(run.store.block_id(h) is not None and run.store.pruned_header(h) is not None for h in range(1, 35))
        run = run.restart(retention)
        run.commit(GENESIS_TIME + 600 * 44)
        run.commit(GENESIS_TIME + 600 * 45 + 300)
        for h in range(46, 51):
            run.commit(GENESIS_TIME + 600 * h)
        assert run.store.blocks_from() == 45        # at 50: the last body an hour old is 44's
        answer = get_blocks_response(lambda h: _stored_pair(run.store, h), GetBlocks(from_height=1, count=10))
        assert isinstance(answer, SyncFailure) and answer.reason.startswith("pruned")
    finally:
        run.close()
    with pytest.raises(VerifyError, match="blocks below height 45 were pruned"):
        verify_home(commune / "validator-0")


@pytest.mark.parametrize("args,match", [
    (("full", 10, 10, 7, 0), "--pruning must be one of"),
    (("default", 1, 10, 7, 0), "--keep-states must be at least 2"),
    (("default", 100, -1, 7, 0), "--keep-blocks must be 0"),
    (("default", None, 0, 0, 0), "--keep-days must be at least 1"),
    (("default", 10, 10, 7, -1), "--archive-keep-days"),
])
def test_invalid_pruning_settings(args, match):
    with pytest.raises(PruningError, match=match):
        parse_pruning(*args)


class FakeNet:
    def __init__(self, heights: dict[str, int]) -> None:
        self.heights = heights

    def banned_peers(self) -> list[str]:
        return []

    def peer_heights(self) -> dict[str, int]:
        return dict(self.heights)


class FakeStore:
    def __init__(self) -> None:
        self.at = 0

    def height(self) -> int:
        return self.at


async def test_sync_moves_on_to_the_next_peer_when_one_fails(monkeypatch):
    """A pruned peer (or any failing one) hands over to the next highest."""
    send, recv = trio.open_memory_channel(4)
    node = SimpleNamespace(net=FakeNet({"pruned": 50, "archive": 48, "behind": 1}), store=FakeStore(),
                           stats=SimpleNamespace(syncing=False), mempool=[], inputs_send=send,
                           is_ready=lambda: False)
    asked: list[str] = []

    class Recording(Syncer):
        async def sync_from(self, peer: str, target: int) -> None:
            asked.append(peer)
            if peer == "archive":
                node.store.at = target

    monkeypatch.setattr(runner, "last_commit", lambda store: None)
    await Recording(node).catch_up(behind=0)
    assert asked == ["pruned", "archive"]
    assert recv.receive_nowait().height == 49


def test_node_run_drops_archived_load_curves_after_two_years_by_default():
    import typer

    from node.cli import app
    from node.store.pruning import DEFAULT_ARCHIVE_KEEP_DAYS

    run = typer.main.get_command(app).commands["node"].commands["run"]
    default = next(p.default for p in run.params if p.name == "archive_keep_days")
    assert default == DEFAULT_ARCHIVE_KEEP_DAYS == 730
    assert parse_pruning("default", None, 0, 7, default).archive_keep_s == 730 * 86_400
