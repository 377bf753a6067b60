"""What a household node does with txs that wait in its mempool (node/service/node.py):
``Node.recheck_pending`` and the gossip of resubmitted txs.

A real Node over a real LevelDB store from a real commune home; blocks are committed
through ``node.app.commit`` with a commit signed by the commune's validator. The only
double is the network: with ``node.net`` None nothing is gossiped; where what is
gossiped matters, ``RecordingNet`` stands in for it (an async ``publish(kind, data)``
that keeps what it was given), run in a trio nursery as the runner does.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from consensus.block import ZERO_ID, Block, Commit, CommitSig, Header, compute_block_id, compute_tx_root, compute_validators_hash
from consensus.vote import PRECOMMIT, Vote
from node.home.homedir import KEY_FILE, create_network, load_home
from node.home.keyfile import load_key
from node.net import TopicKind
from node.service.node import Node
from node.service.runner import open_store
from tokens.queries import get_household, get_time_ms
from tokens.txs import MeterReading
from wire import compute_id, decode, sign_message

HH0 = "household-0"


@pytest.fixture
def commune(tmp_path: Path) -> Path:
    """A fresh commune per test (blocks get committed to household-0's store). Real
    time (time_scale 1), genesis 10 minutes ago, so readings of now are on time."""
    root = tmp_path / "commune"
    create_network(root, name="Testville", insee="12345", validators=1, households=1, base_port=40000,
                   genesis_time=int(time.time()) - 600)
    return root


@pytest.fixture
def node(commune: Path) -> Iterator[Node]:
    home = load_home(commune / HH0)
    store = open_store(home)
    try:
        yield Node(home, store)
    finally:
        store.close()


class RecordingNet:
    """The network, as far as Node._gossip uses it: what was published, in order."""

    def __init__(self) -> None:
        self.published: list[tuple[TopicKind, bytes]] = []

    async def publish(self, kind: TopicKind, data: bytes) -> None:
        self.published.append((kind, data))


def reading(node: Node, seq: int, t: int, import_wh: int = 1_000) -> bytes:
    """Household-0's signed cumulative reading."""
    key = load_key(node.home.path / KEY_FILE)
    meter = {h.key: h.meter for h in node.genesis.households}[key.public]
    tx = MeterReading(signer=key.public, meter=meter, seq=seq, t=t, import_wh=import_wh, export_wh=0,
                      sig=bytes(64))
    return sign_message(tx, node.chain_id, key).encode()


def tampered(data: bytes) -> bytes:
    """``data`` (a signed reading) with one signature byte changed."""
    tx = decode(data, MeterReading)
    return dataclasses.replace(tx, sig=bytes([tx.sig[0] ^ 0x01]) + tx.sig[1:]).encode()


def commit_block(node: Node, commune: Path, txs: list[bytes]) -> None:
    """Commit the next block holding ``txs``, proposed and precommitted by validator-0,
    through the node's ledger app into its store."""
    vkey = load_key(commune / "validator-0" / KEY_FILE)
    height = node.store.height() + 1
    # Two blocks within one millisecond would share a time: a block's time follows its parent's.
    time_ms = max(node.clock.now_ms(), get_time_ms(node.store.state) + 1)
    header = Header(chain_id=node.chain_id, height=height, time_ms=time_ms,
                    parent=node.store.last_block_id() or ZERO_ID, tx_root=compute_tx_root(txs),
                    state_hash=node.store.state_hash(), proposer=vkey.public,
                    next_validators=compute_validators_hash(node.app.validator_set(height + 1)), version=1)
    block = Block(header=header, txs=tuple(txs), last_commit=None, evidence=())
    block_id = compute_block_id(block)
    vote = sign_message(Vote(kind=PRECOMMIT, height=height, round=0, block_id=block_id, validator=vkey.public,
                             sig=bytes(64)), node.chain_id, vkey)
    commit = Commit(height=height, round=0, block_id=block_id, sigs=(CommitSig(validator=vkey.public, sig=vote.sig),))
    node.app.commit(block, commit, ())


def last_seq(node: Node) -> int:
    return get_household(node.store.state, node.key.public)["last_reading"]["seq"]


def mempool_gauge(node: Node) -> float:
    for line in node.render_metrics().decode().splitlines():
        if line.startswith("voisinage_mempool_txs "):
            return float(line.split()[1])
    raise AssertionError("no voisinage_mempool_txs in the metrics")


# ---- recheck_pending -------------------------------------------------------------------


def test_recheck_pending_keeps_the_valid_reading_and_drops_the_one_a_block_made_stale(node, commune):
    assert not node.is_validator and node.net is None       # a household node, no network
    now_s = node.clock.now_ms() // 1000
    before = time.monotonic()
    stale, valid = reading(node, seq=1, t=now_s - 3), reading(node, seq=3, t=now_s - 1)
    assert node.submit_tx(stale) == compute_id(stale)
    assert node.submit_tx(valid) == compute_id(valid)
    assert [e.id for e in node.mempool.entries()] == [compute_id(stale), compute_id(valid)]

    # Before any block both are still valid: both would be gossiped again, none dropped.
    assert node.recheck_pending(time.monotonic() + 1) == (2, 0)
    assert len(node.mempool) == 2

    # A block with reading seq 2 (from elsewhere, e.g. the household's other gateway).
    commit_block(node, commune, [reading(node, seq=2, t=now_s - 2)])
    assert node.store.height() == 1 and last_seq(node) == 2

    # Nothing arrived before `older_than`: nothing looked at, nothing changed.
    assert node.recheck_pending(before - 1.0) == (0, 0)
    assert [e.id for e in node.mempool.entries()] == [compute_id(stale), compute_id(valid)]

    # Both are due: seq 1 is now stale (dropped), seq 3 still valid (gossiped again).
    assert node.recheck_pending(time.monotonic() + 1) == (1, 1)
    assert compute_id(stale) not in node.mempool
    assert compute_id(valid) in node.mempool
    assert len(node.mempool) == 1
    assert node.mempool.size_bytes == len(valid)
    assert mempool_gauge(node) == 1.0

    # The kept one is still gossiped at the next pass; nothing more is dropped.
    assert node.recheck_pending(time.monotonic() + 1) == (1, 0)
    assert [e.id for e in node.mempool.entries()] == [compute_id(valid)]


def test_recheck_pending_only_looks_at_txs_older_than_the_cutoff(node, commune):
    now_s = node.clock.now_ms() // 1000
    old = reading(node, seq=1, t=now_s - 3)
    node.submit_tx(old)
    cutoff = time.monotonic()
    while time.monotonic() <= cutoff:    # the next arrival is strictly after the cutoff
        time.sleep(0.001)
    young = reading(node, seq=3, t=now_s - 1)
    node.submit_tx(young)
    commit_block(node, commune, [reading(node, seq=4, t=now_s)])   # makes both stale
    assert last_seq(node) == 4

    assert node.recheck_pending(cutoff) == (0, 1)            # only the old one is judged
    assert [e.id for e in node.mempool.entries()] == [compute_id(young)]
    assert node.recheck_pending(time.monotonic() + 1) == (0, 1)
    assert len(node.mempool) == 0 and node.mempool.size_bytes == 0
    assert mempool_gauge(node) == 0.0


async def test_recheck_pending_gossips_again_exactly_the_still_valid_txs(node, commune):
    now_s = node.clock.now_ms() // 1000
    stale, valid = reading(node, seq=1, t=now_s - 3), reading(node, seq=3, t=now_s - 1)
    net = RecordingNet()
    async with trio.open_nursery() as nursery:
        node.net, node._nursery = net, nursery
        node.submit_txs([stale, valid])
        await trio.testing.wait_all_tasks_blocked()
        assert net.published == [(TopicKind.TX, stale), (TopicKind.TX, valid)]
        commit_block(node, commune, [reading(node, seq=2, t=now_s - 2)])

        assert node.recheck_pending(time.monotonic() + 1) == (1, 1)
        await trio.testing.wait_all_tasks_blocked()
        assert net.published[2:] == [(TopicKind.TX, valid)]
        assert node.recheck_pending(time.monotonic() - 3600) == (0, 0)
        await trio.testing.wait_all_tasks_blocked()
        assert len(net.published) == 3
        nursery.cancel_scope.cancel()


# ---- resubmitted txs are gossiped again --------------------------------------------------


async def test_the_same_batch_submitted_twice_is_gossiped_both_times(node):
    now_s = node.clock.now_ms() // 1000
    first, second = reading(node, seq=1, t=now_s - 2), reading(node, seq=2, t=now_s - 1)
    bad = tampered(reading(node, seq=3, t=now_s))
    net = RecordingNet()
    async with trio.open_nursery() as nursery:
        node.net, node._nursery = net, nursery
        results = node.submit_txs([first, second])
        assert results == [(compute_id(first), None), (compute_id(second), None)]
        await trio.testing.wait_all_tasks_blocked()
        assert net.published == [(TopicKind.TX, first), (TopicKind.TX, second)]

        # Already held: taken again (no refusal) and gossiped again, in order; the
        # refused one is not gossiped.
        again = node.submit_txs([first, bad, second])
        assert [(tx_id, refused is None) for tx_id, refused in again] == [
            (compute_id(first), True), (compute_id(bad), False), (compute_id(second), True)]
        assert str(again[1][1]).startswith("bad_signature")
        await trio.testing.wait_all_tasks_blocked()
        assert net.published[2:] == [(TopicKind.TX, first), (TopicKind.TX, second)]
        assert len(node.mempool) == 2

        # POST /tx (one tx) too.
        assert node.submit_tx(first) == compute_id(first)
        await trio.testing.wait_all_tasks_blocked()
        assert net.published[4:] == [(TopicKind.TX, first)]
        assert len(node.mempool) == 2
        nursery.cancel_scope.cancel()
