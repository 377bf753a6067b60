"""The namespace fabric on its own (root only): reachability, partition, latency, cleanup."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from node.localnet.netns import Fabric, list_links, list_netns
from tests.e2e.conftest import needs_root

pytestmark = [needs_root]

ECHO = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 9000)); s.listen()
while True:
    c, _ = s.accept()
    c.settimeout(10)
    try:
        while (d := c.recv(100)):
            c.sendall(d)
    except OSError:
        pass
    c.close()
"""

PING = """
import socket, sys, time
try:
    s = socket.create_connection((sys.argv[1], 9000), timeout=3)
except OSError as exc:
    print("unreachable", exc); sys.exit(0)
rtts = []
for _ in range(8):
    t = time.monotonic(); s.sendall(b"x"); s.recv(10); rtts.append(time.monotonic() - t)
print("rtt_ms", round(1000 * sorted(rtts)[len(rtts) // 2]))
"""


def ping(fabric: Fabric, src: int, dst: int) -> str:
    out = subprocess.run(fabric.exec_prefix(src) + [sys.executable, "-c", PING, fabric.ip(dst)],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


@pytest.fixture
def fabric():
    f = Fabric(3)
    f.setup()
    servers = [subprocess.Popen(f.exec_prefix(i) + [sys.executable, "-c", ECHO, f.ip(i)]) for i in range(3)]
    time.sleep(0.5)
    yield f
    for s in servers:
        s.kill()
        s.wait()
    assert f.teardown() == []


def test_nodes_reach_each_other_and_the_root_namespace(fabric):
    assert ping(fabric, 0, 1).startswith("rtt_ms")
    with socket.create_connection((fabric.ip(2), 9000), timeout=3) as s:
        s.sendall(b"hi")
        assert s.recv(10) == b"hi"


def test_partition_blocks_the_other_side_then_heals(fabric):
    fabric.set_partition([[0], [1, 2]])
    assert ping(fabric, 0, 1).startswith("unreachable")
    assert ping(fabric, 1, 2).startswith("rtt_ms")       # same side
    fabric.heal_partition()
    assert ping(fabric, 0, 1).startswith("rtt_ms")


def test_latency_delays_egress_then_goes(fabric):
    assert int(ping(fabric, 0, 1).split()[1]) < 40
    mechanism = fabric.add_latency(0, 125, 75)
    assert mechanism in ("netem", "delayline")
    assert 50 <= int(ping(fabric, 0, 1).split()[1]) <= 260
    fabric.remove_latency(0)
    assert int(ping(fabric, 0, 1).split()[1]) < 40


def test_disconnect_and_teardown_leave_nothing():
    f = Fabric(2)
    f.setup()
    try:
        f.set_link(1, False)
        assert ping(f, 0, 1).startswith("unreachable")
        f.set_link(1, True)
    finally:
        assert f.teardown() == []
    assert not [n for n in list_netns() + list_links() if n.startswith(f"vsn{f.tag}")]
