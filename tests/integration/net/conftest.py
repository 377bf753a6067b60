"""Helpers for the network tests: homes and recording gossip handlers.

Every host binds 127.0.0.1 port 0 (or a port just found free), so these tests can run
beside others. Waits (tests/support/wait.py) are bounded by trio deadlines; nothing
asserts a wall-clock time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from node.net import ACCEPT, TopicKind, Verdict


CHAIN_ID = bytes.fromhex("ab" * 32)
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


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
