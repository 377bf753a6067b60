"""One network node as an OS process, for test_processes.py.

    python -m tests.integration.net.netproc relay  HOME
    python -m tests.integration.net.netproc sink   HOME --peer ADDR --expect N
    python -m tests.integration.net.netproc source HOME --peer ADDR --count N --rate R

Each prints one JSON line {"addr": ...} once it is listening and (with --peer) meshed
with that peer on the tx topic; sink and source then print one JSON result line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import trio

from node.net import ACCEPT, TopicKind, open_network
from node.net.peers import parse_peer_addr

CHAIN_ID = bytes.fromhex("cd" * 32)
CHUNK = 50


def emit(doc: dict) -> None:
    print(json.dumps(doc), flush=True)


async def run(args: argparse.Namespace) -> int:
    received: set[bytes] = set()
    changed = trio.Event()

    def on_tx(peer: str, data: bytes):
        received.add(data)
        changed.set()
        return ACCEPT

    peers = [args.peer] if args.peer else []
    async with open_network(Path(args.home), CHAIN_ID, "/ip4/127.0.0.1/tcp/0", peers,
                            {TopicKind.TX: on_tx}) as net:
        if args.peer:
            peer_id = parse_peer_addr(args.peer).peer_id
            await net.pubsub.wait_for_mesh(peer_id, net.topic(TopicKind.TX), timeout=30)
        emit({"addr": net.listen_addrs()[0]})
        if args.role == "relay":
            await trio.sleep_forever()
        if args.role == "source":
            for i in range(args.count):      # paced: CHUNK txs at a time, at --rate
                await net.publish(TopicKind.TX, b"tx-%08d" % i + b"\x05" * 150)
                if i % CHUNK == CHUNK - 1:
                    await trio.sleep(CHUNK / args.rate)
            await net.flush_txs()
            await trio.sleep(1.0)
            emit({"sent": args.count, "batches": net.batcher.batches_sent})
            return 0
        with trio.move_on_after(args.timeout):
            while len(received) < args.expect:
                changed = trio.Event()
                await changed.wait()
        emit({"received": len(received)})
        return 0 if len(received) == args.expect else 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["relay", "sink", "source"])
    parser.add_argument("home")
    parser.add_argument("--peer")
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--timeout", type=float, default=60.0)
    sys.exit(trio.run(run, parser.parse_args()))


if __name__ == "__main__":
    main()
