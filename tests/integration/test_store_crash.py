"""Crash safety of the store (DESIGN §8 "Commit"): kill -9 a committing process, 20 times.

A child process (this file run as a script) commits blocks in a loop. Block h
rewrites or deletes hundreds of state keys as a deterministic function of h, and
keeps the state tree incrementally, as the ledger does: its new nodes are part of
the block's batch. The parent SIGKILLs it at
random moments, reopens the store and checks that the state is exactly the state
of the stored height (never half a block), that the stored hash equals a full
recomputation, and that no block the child reported as committed was lost.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.store import Store
from tokens.statetree import compute_tree_build, compute_tree_update, is_proven_key

CHAIN = hashlib.sha256(b"crash-test genesis").digest()
KEYS = 400          # state keys; every block touches about three quarters of them
KILLS = 20
MAX_DELAY_S = 0.08  # the kill lands at a random moment within this after the child is ready
REPO = Path(__file__).resolve().parents[2]


def state_key(i: int) -> bytes:
    return b"acct/%04d" % i


def genesis_state() -> dict[bytes, bytes]:
    return {state_key(i): b"genesis" for i in range(KEYS)}


def block_writes(height: int) -> dict[bytes, bytes | None]:
    """The state changes of block ``height``: a pure function of the height."""
    writes: dict[bytes, bytes | None] = {}
    for i in range(KEYS):
        phase = (i * 7 + height) % 4
        if phase == 0 and height % 3 == 0:
            writes[state_key(i)] = None
        elif phase != 0:
            writes[state_key(i)] = hashlib.sha256(b"%d/%d" % (height, i)).digest() * 2
    return writes


def block_bytes(height: int) -> bytes:
    return b"block-%d" % height


def block_id(height: int) -> bytes:
    return hashlib.sha256(block_bytes(height)).digest()


def apply_writes(state: dict[bytes, bytes], writes: dict[bytes, bytes | None]) -> None:
    for key, value in writes.items():
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value


def run_child(path: str) -> None:
    """Commit blocks forever, reporting each height once it is durably committed."""
    store = Store.open(path, chain_id=CHAIN)
    if not store.is_initialized():
        state = genesis_state()
        root, nodes = compute_tree_build(state.items())
        store.init_genesis(CHAIN, {**state, **nodes}, root)
    print(f"ready {store.height()}", flush=True)
    while True:
        height = store.height() + 1
        writes = block_writes(height)
        root, nodes = compute_tree_update(store.state, store.state_hash(), writes)
        store.commit_block(height, block_id(height), block_bytes(height), b"commit-%d" % height,
                           {**writes, **nodes}, root)
        print(f"committed {height}", flush=True)


class Expected:
    """The state at each height, replayed in memory; heights never go back, so it only advances."""

    def __init__(self) -> None:
        self.height = 0
        self.state = genesis_state()

    def at(self, height: int) -> dict[bytes, bytes]:
        if height < self.height:
            raise AssertionError(f"store went back from height {self.height} to {height}")
        while self.height < height:
            self.height += 1
            apply_writes(self.state, block_writes(self.height))
        return self.state


def kill_child_at_random(path: Path, rng: random.Random) -> int:
    """Start a child, SIGKILL it at a random moment, return the last height it reported."""
    child = subprocess.Popen([sys.executable, __file__, str(path)], stdout=subprocess.PIPE,
                             text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    ready = child.stdout.readline()
    if not ready.startswith("ready"):
        child.kill()
        raise AssertionError(f"child failed to start: {ready!r}")
    time.sleep(rng.uniform(0, MAX_DELAY_S))
    child.send_signal(signal.SIGKILL)
    lines = [ready, *child.stdout.read().splitlines()]
    child.stdout.close()
    assert child.wait() == -signal.SIGKILL
    return int(lines[-1].split()[1])


def check_reopened(path: Path, expected: Expected, reported: int) -> int:
    """The reopened store is exactly at some committed height; return that height."""
    with Store.open(path, chain_id=CHAIN) as store:
        height = store.height()
        # Nothing reported as committed is lost; at most one more block landed unreported.
        assert reported <= height <= reported + 1
        state = {k: v for k, v in store.state.iter_prefix(b"") if is_proven_key(k)}
        assert state == expected.at(height)
        assert store.verify_state_hash() == compute_tree_build(state.items())[0]
        assert store.state_hash() == compute_tree_build(expected.at(height).items())[0]
        store.verify_state_tree(store.state_hash())     # its nodes landed with the block
        if height > 0:
            assert store.last_block_id() == block_id(height)
            assert store.block(height) == block_bytes(height)
        assert store.block(height + 1) is None
    return height


@pytest.mark.integration
def test_kill_9_never_leaves_half_a_block(tmp_path):
    path = tmp_path / "db"
    rng = random.Random(20240601)
    expected = Expected()
    outcomes = {"unreported block recovered": 0, "exactly the reported height": 0}
    for _ in range(KILLS):
        reported = kill_child_at_random(path, rng)
        height = check_reopened(path, expected, reported)
        outcomes["unreported block recovered" if height > reported else "exactly the reported height"] += 1
    with Store.open(path, chain_id=CHAIN) as store:
        blocks = list(store.iter_blocks())
        assert [b.height for b in blocks] == list(range(1, store.height() + 1))
        assert all(b.block == block_bytes(b.height) and b.block_id == block_id(b.height) for b in blocks)
        assert store.height() > 0  # the children made progress between kills
    assert sum(outcomes.values()) == KILLS
    print(f"\n{KILLS} kills, final height {expected.height}: {outcomes}")


if __name__ == "__main__":
    run_child(sys.argv[1])
