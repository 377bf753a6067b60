"""Micro-benchmark: gossip messages per second through our py-libp2p stack.

Three hosts in one process on loopback, chained A -> B -> C, so every message is
relayed once. The publisher keeps at most ``window`` messages in flight (published
at A, not yet at C): py-libp2p drops silently under large bursts (DEPENDENCIES.md),
and a flow-controlled rate is the sustainable one. `voisinage bench localnet`
reports this as its baseline.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import trio

from node.net.network import Network, NetSettings, open_network
from node.net.topics import TopicKind
from node.bench.stats import summarise_latencies
from node.net.verdict import ACCEPT, Verdict

BENCH_CHAIN_ID = b"\x00" * 32
_SEQ_BYTES = 8
STRAGGLER_WAIT_S = 3.0


class _Sink:
    """C's handler: records when each sequence number arrived."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.changed = trio.Event()

    def __call__(self, peer: str, data: bytes) -> Verdict:
        self.arrived.setdefault(int.from_bytes(data[:_SEQ_BYTES], "big"), time.perf_counter())
        self.changed.set()
        return ACCEPT


async def _open_chain(stack: AsyncExitStack, root: Path, sink: _Sink, muxer: str, hosts: int) -> list[Network]:
    nets: list[Network] = []
    for i in range(hosts):
        home = root / f"h{i}"
        home.mkdir()
        handler = sink if i == hosts - 1 else (lambda peer, data: ACCEPT)
        bootstrap = nets[-1].listen_addrs() if nets else []
        nets.append(await stack.enter_async_context(open_network(
            home, BENCH_CHAIN_ID, "/ip4/127.0.0.1/tcp/0", bootstrap,
            {TopicKind.CONSENSUS: handler}, settings=NetSettings(muxer=muxer))))
    topic = nets[0].topic(TopicKind.CONSENSUS)
    with trio.fail_after(15):
        for a, b in zip(nets, nets[1:]):
            await a.pubsub.wait_for_mesh(b.host.get_id(), topic, timeout=15)
            await b.pubsub.wait_for_mesh(a.host.get_id(), topic, timeout=15)
    return nets


async def _pump(first: Network, sink: _Sink, duration_s: float, payload_bytes: int,
                window: int) -> dict[int, float]:
    sent: dict[int, float] = {}
    deadline = time.perf_counter() + duration_s
    pad = b"\x01" * max(0, payload_bytes - _SEQ_BYTES)
    seq = 0
    while time.perf_counter() < deadline:
        if seq - len(sink.arrived) >= window:
            sink.changed = trio.Event()
            with trio.move_on_after(0.5):
                await sink.changed.wait()
            continue
        sent[seq] = time.perf_counter()
        await first.publish_raw(TopicKind.CONSENSUS, seq.to_bytes(_SEQ_BYTES, "big") + pad)
        seq += 1
        if seq % 32 == 0:
            await trio.sleep(0)
    return sent


async def _wait_for_stragglers(sink: _Sink, expected: int) -> None:
    """Wait for messages still in flight, as long as they keep arriving."""
    while len(sink.arrived) < expected:
        sink.changed = trio.Event()
        with trio.move_on_after(STRAGGLER_WAIT_S) as scope:
            await sink.changed.wait()
        if scope.cancelled_caught:
            return


async def measure_gossip_rate(duration_s: float, payload_bytes: int, *, hosts: int = 3,
                              muxer: str = "YAMUX", window: int = 32) -> dict:
    """Deliveries per second at the last host of a chain of ``hosts`` hosts, with the
    A -> C latency (median and p99) and how many messages were lost."""
    if hosts < 2 or duration_s <= 0 or payload_bytes < _SEQ_BYTES:
        raise ValueError(f"need hosts >= 2, duration_s > 0 and payload_bytes >= {_SEQ_BYTES}")
    sink = _Sink()
    with tempfile.TemporaryDirectory(prefix="voisinage-bench-") as tmp:
        async with AsyncExitStack() as stack:
            nets = await _open_chain(stack, Path(tmp), sink, muxer, hosts)
            started = time.perf_counter()
            sent = await _pump(nets[0], sink, duration_s, payload_bytes, window)
            await _wait_for_stragglers(sink, len(sent))
            elapsed = max(sink.arrived.values(), default=started) - started
    latencies = [(sink.arrived[s] - t) * 1000 for s, t in sent.items() if s in sink.arrived]
    return {
        "hosts": hosts, "muxer": muxer, "payload_bytes": payload_bytes, "window": window,
        "duration_s": round(elapsed, 3), "sent": len(sent), "delivered": len(sink.arrived),
        "lost": len(sent) - len(sink.arrived),
        "msgs_per_s": round(len(sink.arrived) / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": {k: v or 0.0 for k, v in summarise_latencies(latencies, digits=1).items()},
    }
