"""Helpers for the network tests: homes, free ports, waiting on a condition.

Every host binds 127.0.0.1 port 0 (or a port just found free), so these tests can run
beside others. Waits are bounded by trio deadlines; nothing asserts a wall-clock time.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from node.net import ACCEPT, TopicKind, Verdict


CHAIN_ID = bytes.fromhex("ab" * 32)
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail the test (not hang) if it never is."""
    with trio.move_on_after(timeout):
        while not predicate():
            await trio.sleep(0.02)
        return
    raise AssertionError(f"timed out waiting for {what}")


class Recorder:
    """A gossip handler that records what it saw and answers with ``decide``."""

    def __init__(self, decide: Callable[[bytes], Verdict] = lambda data: ACCEPT) -> None:
        self.seen: list[tuple[str, bytes]] = []
        self.decide = decide

    def __call__(self, peer: str, data: bytes) -> Verdict:
        self.seen.append((peer, data))
        return self.decide(data)

    def datas(self) -> list[bytes]:
        return [d for _, d in self.seen]


def handlers_for(recorder: Recorder) -> dict[TopicKind, Recorder]:
    return {kind: recorder for kind in TopicKind}


@pytest.fixture
def home(tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        path = tmp_path / name
        path.mkdir(exist_ok=True)
        return path
    return make
