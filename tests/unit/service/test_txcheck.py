"""Arriving txs checked in batches on worker threads (node/service/txcheck.py, issue 20):
the gossip batch handler and ``POST /txs``'s ``submit_batch`` keep order, every verdict
and reason of checking each tx alone, and the first REJECT still ends a gossip batch.

A real validator Node over a real LevelDB store, on a chain that seals payloads (and one
that does not); blocks are committed through its ledger app."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path

import pytest
import trio

from node.home.homedir import create_network, load_home
from node.net import Outcome
from node.service import txcheck
from node.service.node import ADMIT_CHUNK, Node
from node.service.runner import open_store
from node.service.txcheck import Checked, Opened, TxChecker, seed
from tests.unit.service.test_sealed_node import household, publish_data_key, sealed_reading
from tokens.sealing import Keyring
from tokens.txs import MeterReading, Sealed
from wire import Keypair, compute_id, decode, sign_message


def make_commune(root: Path, seal: bool) -> Path:
    create_network(root, name="Testville", insee="12345", validators=1, households=1, base_port=40000,
                   genesis_time=int(time.time()) - 600, seal_payloads=seal)
    return root


@pytest.fixture
def commune(tmp_path: Path) -> Path:
    return make_commune(tmp_path / "commune", seal=True)


def forged(node: Node, data: bytes) -> bytes:
    """``data`` signed again by a key that is not its signer's."""
    return sign_message(decode(data), node.chain_id, Keypair(os.urandom(32))).encode()


def readings(node: Node, commune: Path, first: int, count: int) -> list[bytes]:
    return [sealed_reading(node, commune, seq) for seq in range(first, first + count)]


def mempool_ids(node: Node) -> list[bytes]:
    return [entry.id for entry in node.mempool.entries()]


def test_a_bad_signature_mid_batch_rejects_it_and_the_txs_before_it_are_taken_in_order(node, commune):
    publish_data_key(node, commune)
    good = readings(node, commune, 2, 4)
    batch = good[:2] + [forged(node, good[2])] + good[2:]
    verdicts = trio.run(node.on_tx_batch, "peer", batch)
    assert [(v.outcome, v.reason) for v in verdicts] == [
        (Outcome.ACCEPT, ""), (Outcome.ACCEPT, ""), (Outcome.REJECT, "bad_signature")]
    # As when each tx is judged alone: the batch ends at its first REJECT.
    assert mempool_ids(node) == [compute_id(t) for t in good[:2]]
    assert node.checker.batches == 1 and node.checker.checked == len(batch)
    # Their envelopes were opened on the workers and kept: admission found them opened.
    assert all(compute_id(t) in node.keys.opened for t in good[:2])


def test_submit_batch_refuses_the_bad_one_with_its_reason_and_takes_the_others_in_order(node, commune):
    publish_data_key(node, commune)
    good = readings(node, commune, 2, 3)
    bad = forged(node, good[1])
    results = trio.run(node.submit_batch, [good[0], bad, *good[1:]])
    assert [r[0] for r in results] == [compute_id(t) for t in [good[0], bad, *good[1:]]]
    assert results[0][1] is None and results[2][1] is None and results[3][1] is None
    assert results[1][1].reason.startswith("bad_signature:")
    assert mempool_ids(node) == [compute_id(t) for t in good]


def test_each_seal_failure_keeps_its_reason_and_outcome(node, commune):
    key, _ = household(node, commune)
    # No data key in the state yet: an IGNORE, and the batch goes on.
    early = readings(node, commune, 2, 2)
    verdicts = trio.run(node.on_tx_batch, "peer", early)
    assert [(v.outcome, v.reason) for v in verdicts] == [(Outcome.IGNORE, "no_data_key")] * 2
    publish_data_key(node, commune)
    good = sealed_reading(node, commune, 2)
    env = decode(good, Sealed)
    broken = sign_message(dataclasses.replace(env, nonce=3, box=env.box[:-1] + bytes([env.box[-1] ^ 1])),
                          node.chain_id, key).encode()
    mismatch = sign_message(dataclasses.replace(env, nonce=3, mac=bytes(32)), node.chain_id, key).encode()
    wrong_nonce = sign_message(dataclasses.replace(env, nonce=9), node.chain_id, key).encode()
    verdicts = trio.run(node.on_tx_batch, "peer", [good, good])
    assert [(v.outcome, v.reason) for v in verdicts] == [(Outcome.ACCEPT, ""), (Outcome.IGNORE, "duplicate")]
    for bad, reason in ((broken, "seal_does_not_open"), (mismatch, "payload_hash_mismatch"),
                        (wrong_nonce, "nonce_mismatch"), (b"\x93garbage", "malformed")):
        verdict = trio.run(node.on_tx_batch, "peer", [bad])[0]
        assert (verdict.outcome, verdict.reason) == (Outcome.REJECT, reason)
        assert verdict == node.on_tx("peer", bad)     # the same verdict as checked on the trio thread
    assert mempool_ids(node) == [compute_id(good)]


def test_a_hostile_batch_costs_one_chunk_of_checks_past_its_first_bad_tx(node, commune):
    publish_data_key(node, commune)
    good = readings(node, commune, 2, 3 * ADMIT_CHUNK)
    batch = [forged(node, good[0])] + good
    verdicts = trio.run(node.on_tx_batch, "peer", batch)
    assert [(v.outcome, v.reason) for v in verdicts] == [(Outcome.REJECT, "bad_signature")]
    assert node.checker.checked == ADMIT_CHUNK
    assert len(node.mempool) == 0


def test_a_tx_the_mempool_holds_is_not_checked_again(node, commune):
    publish_data_key(node, commune)
    good = readings(node, commune, 2, 2)
    trio.run(node.on_tx_batch, "peer", good[:1])
    checked = trio.run(node.check_txs, good)
    assert checked[0] == txcheck.NOT_CHECKED
    assert checked[1].signed and isinstance(checked[1].opened, Opened)


def test_checks_run_on_worker_threads_and_come_back_in_order(node, commune, monkeypatch):
    publish_data_key(node, commune)
    txs = readings(node, commune, 2, 5 * txcheck.MIN_PER_THREAD)
    threads: list[int] = []
    real = txcheck.check_many

    def spy(*args):
        threads.append(threading.get_ident())
        return real(*args)
    monkeypatch.setattr(txcheck, "check_many", spy)
    checker = TxChecker(node.chain_id, node.store.state.get, node.store.height, node.keys, threads=2)
    checked = trio.run(checker.check, txs)
    assert len(threads) == 2 and threading.get_ident() not in threads
    assert [c.tx for c in checked] == [decode(t) for t in txs]
    assert all(c.signed and c.opened is not None for c in checked)
    assert [c.opened.inner.seq for c in checked] == list(range(2, 2 + len(txs)))


def test_an_opening_is_not_kept_once_the_data_key_left_the_state(node, commune):
    publish_data_key(node, commune)
    data = sealed_reading(node, commune, 2)
    tx_id = compute_id(data)
    state, height = node.store.state, node.store.height
    # A keyring that never opened the household's data key: the worker opens it.
    checked = TxChecker(node.chain_id, state.get, height, Keyring(node.keys.secrets)).check_here([data])[0]
    assert checked.opened is not None and checked.opened.household is not None
    assert checked.version == height()
    addr, epoch, sealed, data_key, _ = checked.opened.household
    # A block committed since (another version), and the data key gone (the household erased).
    keys = Keyring(node.keys.secrets)
    seed(checked, tx_id, keys, lambda key: None, height() + 1)
    assert tx_id not in keys.opened and keys.peek_household_key(addr, epoch, sealed) is None
    # Committed since, the data key still there: kept.
    seed(checked, tx_id, keys, state.get, height() + 1)
    assert keys.opened[tx_id] == checked.opened.inner
    assert keys.peek_household_key(addr, epoch, sealed) == data_key
    # Nothing committed since: kept without reading the state again.
    fresh = Keyring(node.keys.secrets)
    seed(checked, tx_id, fresh, lambda key: pytest.fail("the state was read again"), height())
    assert fresh.opened[tx_id] == checked.opened.inner


def test_a_chain_in_clear_checks_signatures_on_the_workers_too(tmp_path: Path):
    commune = make_commune(tmp_path / "clear", seal=False)
    home = load_home(commune / "validator-0")
    store = open_store(home)
    try:
        node = Node(home, store)
        key, meter = household(node, commune)
        now = int(time.time())
        txs = [sign_message(MeterReading(signer=key.public, meter=meter, seq=seq, t=now - 10 + seq, import_wh=seq,
                                         export_wh=0, sig=bytes(64)), node.chain_id, key).encode()
               for seq in (1, 2, 3)]
        batch = txs[:1] + [forged(node, txs[1])] + txs[1:]
        verdicts = trio.run(node.on_tx_batch, "peer", batch)
        assert [(v.outcome, v.reason) for v in verdicts] == [(Outcome.ACCEPT, ""), (Outcome.REJECT, "bad_signature")]
        assert mempool_ids(node) == [compute_id(txs[0])]
        assert [c.signed for c in trio.run(node.check_txs, txs[1:])] == [True, True]
    finally:
        store.close()


def test_checked_is_no_verdict_a_bad_signature_is_left_to_check_tx():
    # Nothing decodes: nothing is proved, and nothing is said.
    assert txcheck.check_one(b"\x93garbage", bytes(32), lambda key: None, None) == Checked(None)
    assert not Checked(None).signed and Checked(None).opened is None
