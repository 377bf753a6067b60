"""Loopback ports found free at run time, so suites run beside a dev localnet (8700+)."""

from __future__ import annotations

import socket

from node.localnet.ports import find_port_block


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (closed again: bind it soon)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_block(count: int) -> int:
    """P such that P..P+count-1 are free; random start, so parallel runs rarely collide."""
    return find_port_block(count, 20_000, 60_000, scatter=True)
