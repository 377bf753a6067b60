"""Loopback ports found free at run time, so suites run beside a dev localnet (8700+)."""

from __future__ import annotations

from node.localnet.ports import find_listen_port_block


def free_port() -> int:
    """A port free on 127.0.0.1 now, below the kernel's ephemeral range (closed again:
    bind it soon). Not one the kernel hands out for bind(0): that range is also where
    every outgoing connection takes its local port, so a node still starting could find
    it taken (node/localnet/ports.py ``read_ephemeral_range``)."""
    return find_listen_port_block(1)


def free_port_block(count: int) -> int:
    """P such that P..P+count-1 are free, below the ephemeral range; random start, so
    parallel runs rarely collide."""
    return find_listen_port_block(count)
