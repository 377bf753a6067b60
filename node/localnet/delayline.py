"""A userspace delay line: the fallback for ``tc netem`` on kernels built without it.

Run by the fabric (netns.py) as ``python -m node.localnet.delayline``. It opens one TAP
device in the root namespace (made a port of the test bridge) and one inside a node's
namespace (through which that namespace then routes the test subnet), and copies
Ethernet frames between them. Frames leaving the node wait a delay drawn uniformly
from [delay - jitter, delay + jitter] ms, in FIFO order (a queue, not a reordering
channel); frames towards the node pass at once. That is netem's egress delay on the
node's interface. It exits when its standard input closes or on SIGTERM.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import heapq
import os
import random
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
MAX_FRAME = 65536
MAX_QUEUED = 20_000          # frames held at once; past this, new frames are dropped


def open_tap(name: str) -> int:
    """A TAP device named ``name`` in the current network namespace (gone when closed)."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI))
    os.set_blocking(fd, False)
    return fd


def enter_netns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name} failed")
    finally:
        os.close(fd)


class DelayQueue:
    """Frames with the monotonic time at which each may leave; FIFO, bounded."""

    def __init__(self, delay_ms: int, jitter_ms: int, seed: int) -> None:
        self.delay_ms, self.jitter_ms = delay_ms, jitter_ms
        self.rng = random.Random(seed)
        self.heap: list[tuple[float, int, bytes]] = []
        self.last_due = 0.0
        self.count = 0
        self.dropped = 0

    def compute_delay_s(self) -> float:
        low = max(0, self.delay_ms - self.jitter_ms)
        return self.rng.uniform(low, self.delay_ms + self.jitter_ms) / 1000

    def push(self, frame: bytes, now: float) -> None:
        if len(self.heap) >= MAX_QUEUED:
            self.dropped += 1
            return
        # A link queues: a frame never overtakes the one before it.
        due = max(now + self.compute_delay_s(), self.last_due)
        self.last_due = due
        self.count += 1
        heapq.heappush(self.heap, (due, self.count, frame))

    def pop_due(self, now: float) -> list[bytes]:
        out = []
        while self.heap and self.heap[0][0] <= now:
            out.append(heapq.heappop(self.heap)[2])
        return out

    def wait_s(self, now: float) -> float:
        return max(0.0, self.heap[0][0] - now) if self.heap else 1.0


def _write(fd: int, frame: bytes) -> None:
    try:
        os.write(fd, frame)
    except (BlockingIOError, OSError):
        pass  # a full or downed TAP drops the frame, as a link would


def _read_all(fd: int) -> list[bytes]:
    frames = []
    while True:
        try:
            frames.append(os.read(fd, MAX_FRAME))
        except BlockingIOError:
            return frames


def run(root_fd: int, ns_fd: int, queue: DelayQueue) -> None:
    """Copy frames until stdin closes: node-bound at once, outbound after the delay."""
    stdin = sys.stdin.fileno()
    while True:
        now = time.monotonic()
        for frame in queue.pop_due(now):
            _write(root_fd, frame)
        ready, _, _ = select.select([root_fd, ns_fd, stdin], [], [], queue.wait_s(now))
        if stdin in ready and not os.read(stdin, 1024):
            return
        if root_fd in ready:
            for frame in _read_all(root_fd):
                _write(ns_fd, frame)
        if ns_fd in ready:
            now = time.monotonic()
            for frame in _read_all(ns_fd):
                queue.push(frame, now)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.localnet.delayline")
    parser.add_argument("--netns", required=True)
    parser.add_argument("--root-tap", required=True)
    parser.add_argument("--ns-tap", required=True)
    parser.add_argument("--delay-ms", type=int, required=True)
    parser.add_argument("--jitter-ms", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        root_fd = open_tap(args.root_tap)
        enter_netns(args.netns)
        ns_fd = open_tap(args.ns_tap)
    except OSError as exc:
        print(f"delayline: {exc}", file=sys.stderr)
        return 1
    print("ready", flush=True)
    run(root_fd, ns_fd, DelayQueue(args.delay_ms, args.jitter_ms, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
