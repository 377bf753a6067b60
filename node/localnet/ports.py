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


EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"


def read_ephemeral_range(path: str = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The ports the kernel hands out as the local end of outgoing connections (Linux's
    default when the file cannot be read). A listening port picked in that range may be
    taken, between the pick and the bind, by any process's outgoing connection: a node
    that imports libp2p for seconds before it listens then fails with "address in use"
    (CI, stop 32: test_live_validators)."""
    try:
        with open(path) as f:
            low, high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def find_listen_port_block(count: int, start: int = 20000, *, scatter: bool = True) -> int:
    """``find_port_block`` below the ephemeral range when there is room there for
    ``count`` ports, anywhere from ``start`` otherwise."""
    low, _ = read_ephemeral_range()
    stop = low if low - start > 4 * count else 60000
    return find_port_block(count, start, stop, scatter=scatter)
