"""Arriving txs checked in check processes (node/service/txprocs.py, issue 20): the same
results, verdicts and reasons as on worker threads or on the node's own thread; the
processes follow the state's household data keys; they stop with the node, ignore
Ctrl-C, and a dead one leaves its checks to a thread.

A real validator Node over a real LevelDB store on a chain that seals payloads, with
real spawned processes."""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from node.home.homedir import load_home
from node.net import Outcome
from node.service.node import Node
from node.service.runner import open_store
from node.service.txcheck import NOT_CHECKED, Checked, TxChecker
from node.service.txprocs import CheckProcesses, apply_updates
from tests.unit.service.test_sealed_node import household, publish_data_key, sealed_reading
from tests.unit.service.test_txcheck import forged, make_commune, mempool_ids, readings
from tokens import layout as L
from tokens.sealing import Keyring
from tokens.txs import Sealed
from wire import compute_id, decode, sign_message


@pytest.fixture
def commune(tmp_path: Path) -> Path:
    return make_commune(tmp_path / "commune", seal=True)


@pytest.fixture
def pnode(commune: Path) -> Iterator[Node]:
    """validator-0 checking arriving txs in two check processes."""
    home = load_home(commune / "validator-0")
    store = open_store(home)
    node = None
    try:
        node = Node(home, store, check_workers=2)
        yield node
    finally:
        if node is not None:
            node.checker.close()
        store.close()


def same(a: Checked, b: Checked) -> bool:
    """The same proof: decoded tx, signatures, opened inner tx and data key, state version."""
    if (a.tx, a.signed, a.version) != (b.tx, b.signed, b.version) or (a.opened is None) != (b.opened is None):
        return False
    return a.opened is None or (a.opened.inner, a.opened.sealed) == (b.opened.inner, b.opened.sealed)


def bad_envelopes(node: Node, commune: Path) -> dict[str, bytes]:
    key, _ = household(node, commune)
    env = decode(sealed_reading(node, commune, 2), Sealed)
    flipped = env.box[:-1] + bytes([env.box[-1] ^ 1])
    return {"seal_does_not_open": sign_message(dataclasses.replace(env, nonce=3, box=flipped), node.chain_id, key).encode(),
            "payload_hash_mismatch": sign_message(dataclasses.replace(env, nonce=3, mac=bytes(32)), node.chain_id, key).encode(),
            "nonce_mismatch": sign_message(dataclasses.replace(env, nonce=9), node.chain_id, key).encode(),
            "bad_signature": forged(node, env.encode()),
            "malformed": b"\x93garbage"}


def test_processes_prove_what_threads_prove_and_give_the_same_verdicts_and_reasons(pnode, commune):
    publish_data_key(pnode, commune)
    good = readings(pnode, commune, 2, 40)
    bad = bad_envelopes(pnode, commune)
    txs = good + list(bad.values()) + [None]
    here = pnode.checker.check_here(txs)
    there = trio.run(pnode.checker.check, txs)
    assert pnode.checker.processes is not None and len(pnode.checker.processes.live()) == 2
    assert len(there) == len(txs) and all(same(a, b) for a, b in zip(here, there))
    assert all(c.signed and c.opened is not None for c in there[:len(good)])
    assert there[-1] == NOT_CHECKED and there[-2] == NOT_CHECKED     # None, and bytes that do not decode
    # Admission: every bad one refused with its own reason, as on the node's own thread.
    for reason, data in bad.items():
        verdict = trio.run(pnode.on_tx_batch, "peer", [data])[0]
        assert (verdict.outcome, verdict.reason) == (Outcome.REJECT, reason)
        assert verdict == pnode.on_tx("peer", data)
    verdicts = trio.run(pnode.on_tx_batch, "peer", good[:3] + [bad["bad_signature"]] + good[3:])
    assert [(v.outcome, v.reason) for v in verdicts] == [(Outcome.ACCEPT, "")] * 3 + [(Outcome.REJECT, "bad_signature")]
    assert mempool_ids(pnode) == [compute_id(t) for t in good[:3]]
    # Opened in a process, kept by the node's keyring: admission did not open them again.
    assert all(compute_id(t) in pnode.keys.opened for t in good[:3])


def test_a_data_key_published_later_reaches_the_processes(pnode, commune):
    early = readings(pnode, commune, 2, 16)
    checked = trio.run(pnode.checker.check, early)
    assert all(c.signed and c.opened is None for c in checked)     # no data key in the state yet
    assert [v.reason for v in trio.run(pnode.on_tx_batch, "peer", early[:1])] == ["no_data_key"]
    publish_data_key(pnode, commune)
    checked = trio.run(pnode.checker.check, early)
    assert all(c.opened is not None and c.version == pnode.store.height() for c in checked)
    assert [c.opened.inner.seq for c in checked] == list(range(2, 18))


def test_refresh_sends_what_changed_and_an_erased_household_is_forgotten():
    addr, other = bytes(range(32)), bytes(32)
    state = {L.key_household_data_key(addr, 0): b"sealed-a", L.key_household_data_key(other, 0): b"sealed-b"}
    procs = CheckProcesses(bytes(32), 0, lambda prefix: sorted(i for i in state.items() if i[0].startswith(prefix)))
    procs.refresh(1)
    assert sorted(procs._log) == sorted(state.items())
    procs.refresh(1)                            # the same version: the same state, not read again
    assert len(procs._log) == 2
    del state[L.key_household_data_key(addr, 0)]
    state[L.key_household_data_key(other, 0)] = b"sealed-c"
    procs.refresh(2)
    assert procs._log[2:] == [(L.key_household_data_key(other, 0), b"sealed-c"),
                              (L.key_household_data_key(addr, 0), None)]
    table, keys = {}, Keyring({0: bytes(32)})
    keys.remember_household_key(addr, 0, b"sealed-a", b"k" * 32, b"s" * 32)
    apply_updates(table, keys, procs._log)
    assert table == {L.key_household_data_key(other, 0): b"sealed-c"}
    assert keys.peek_household_key(addr, 0, b"sealed-a") is None


def test_close_stops_every_process_which_ctrl_c_does_not_reach(pnode, commune):
    publish_data_key(pnode, commune)
    txs = readings(pnode, commune, 2, 16)
    trio.run(pnode.checker.check, txs)          # both processes up and serving
    processes = [w.process for w in pnode.checker.processes.workers]
    for process in processes:
        os.kill(process.pid, signal.SIGINT)     # what Ctrl-C sends the whole process group
    assert all(c.opened is not None for c in trio.run(pnode.checker.check, txs))
    assert len(pnode.checker.processes.live()) == 2
    pnode.checker.close()
    assert [p.exitcode for p in processes] == [0, 0]
    pnode.checker.close()                       # again: nothing left to stop
    # Stopped: the checks run on threads, with the same results.
    assert all(same(a, b) for a, b in zip(pnode.checker.check_here(txs), trio.run(pnode.checker.check, txs)))


def test_a_dead_process_leaves_its_checks_to_a_thread_with_the_same_results(commune):
    home = load_home(commune / "validator-0")
    store = open_store(home)
    try:
        node = Node(home, store)
        publish_data_key(node, commune)
        txs = readings(node, commune, 2, 32) + [forged(node, sealed_reading(node, commune, 40))]
        with TxChecker(node.chain_id, store.state.get, store.height, Keyring(node.keys.secrets), workers=2,
                       scan=store.state.iter_prefix) as checker:
            trio.run(checker.check, txs)
            dead = checker.processes.workers[0].process
            os.kill(dead.pid, signal.SIGKILL)
            dead.join(5)
            checked = trio.run(checker.check, txs)
            assert [w.alive for w in checker.processes.workers] == [False, True]
            assert all(same(a, b) for a, b in zip(node.checker.check_here(txs), checked))
            assert not checked[-1].signed and checked[-1].tx is not None
    finally:
        store.close()
