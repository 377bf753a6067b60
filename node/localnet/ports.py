"""Free TCP ports on loopback, for localnets, benchmarks and tests."""

from __future__ import annotations

import random
import socket

from node.localnet.errors import LocalnetError


def is_port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def find_port_block(count: int, start: int = 27000, stop: int = 60000, *, scatter: bool = False) -> int:
    """A port P such that P..P+count-1 are all free on loopback.

    By default the first such P from ``start``; with ``scatter`` a random one, so that
    test runs in parallel rarely pick the same block.
    """
    if scatter:
        for _ in range(200):
            port = random.randrange(start, stop - count)
            if all(is_port_free(port + i) for i in range(count)):
                return port
    else:
        for port in range(start, stop - count, count):
            if all(is_port_free(port + i) for i in range(count)):
                return port
    raise LocalnetError("no free block of TCP ports on 127.0.0.1")
