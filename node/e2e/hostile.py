"""A hostile libp2p peer: floods a node's gossip topics with what no honest peer sends.

Run as ``python -m node.e2e.hostile`` by the e2e runner (hostile_run.py). It joins the
chain's topics like any peer (node.net), then publishes, round robin at ``--rate``
messages a second for ``--seconds``:

- malformed: random bytes on the tx and the consensus topics;
- oversize: one byte over the 1 MiB gossip limit (every 20th message);
- wrongly signed: a well-formed reading of a real household, with a forged signature;
- replayed: honest txs it saw earlier, published again.

It redials whenever it is dropped, as a persistent attacker would, and prints one
JSON line: what it sent, when it was first disconnected, how often it got back in.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
from pathlib import Path

import trio

from node.net import ACCEPT, TopicKind, open_network
from node.net.messages import TxBatch
from node.net.topics import topic_name
from tokens.genesis import parse_genesis
from tokens.txs import MeterReading
from wire import Keypair, sign_message
from wire.limits import MAX_GOSSIP_BYTES

KINDS = ("malformed_tx", "malformed_consensus", "bad_signature", "replayed")
OVERSIZE_EVERY = 20


class Flood:
    def __init__(self, genesis, seed: int) -> None:
        self.genesis = genesis
        self.rng = random.Random(seed)
        self.seen_txs: list[bytes] = []
        self.sent: dict[str, int] = {}
        self.publish_errors = 0
        self.count = 0

    def on_tx(self, peer: str, data: bytes):
        if len(self.seen_txs) < 1000:
            self.seen_txs.append(data)
        return ACCEPT

    def forged_reading(self) -> bytes:
        hh = self.genesis.households[self.rng.randrange(len(self.genesis.households))]
        tx = MeterReading(signer=hh.key, meter=hh.meter, seq=10**9 + self.count, t=self.genesis.genesis_time + 1,
                          import_wh=self.count, export_wh=0, sig=b"")
        # Signed by another key: the signature does not verify for hh.key.
        signed = sign_message(tx, self.genesis.chain_id, Keypair(self.rng.randbytes(32)))
        return TxBatch(txs=(signed.encode(),)).encode()

    def next_message(self) -> tuple[str, TopicKind, bytes]:
        self.count += 1
        if self.count % OVERSIZE_EVERY == 0:
            return "oversize", TopicKind.TX, b"\x93" + self.rng.randbytes(MAX_GOSSIP_BYTES)
        kind = KINDS[self.count % len(KINDS)]
        if kind == "malformed_tx":
            return kind, TopicKind.TX, self.rng.randbytes(self.rng.randrange(1, 600))
        if kind == "malformed_consensus":
            return kind, TopicKind.CONSENSUS, self.rng.randbytes(self.rng.randrange(1, 600))
        if kind == "bad_signature":
            return kind, TopicKind.TX, self.forged_reading()
        if self.seen_txs:
            tx = self.seen_txs[self.rng.randrange(len(self.seen_txs))]
            return kind, TopicKind.TX, TxBatch(txs=(tx,)).encode()
        return "malformed_tx", TopicKind.TX, self.rng.randbytes(64)


async def run(target: str, genesis_path: Path, listen: str, seconds: float, rate: float, seed: int) -> dict:
    genesis = parse_genesis(genesis_path.read_bytes())
    flood = Flood(genesis, seed)
    home = Path(tempfile.mkdtemp(prefix="voisinage-hostile-"))
    handlers = {TopicKind.TX: flood.on_tx, TopicKind.CONSENSUS: lambda p, d: ACCEPT,
                TopicKind.EVIDENCE: lambda p, d: ACCEPT}
    out = {"first_disconnect_s": None, "reconnects": 0, "connected_s": 0.0}
    async with open_network(home, genesis.chain_id, listen, [target], handlers) as net:
        with trio.move_on_after(10):
            while not net.peers():
                await trio.sleep(0.05)
        start = trio.current_time()
        was_connected = bool(net.peers())
        deadline = start + seconds
        while trio.current_time() < deadline:
            connected = bool(net.peers())
            if was_connected and not connected and out["first_disconnect_s"] is None:
                out["first_disconnect_s"] = round(trio.current_time() - start, 2)
            out["reconnects"] += connected and not was_connected
            out["connected_s"] += (1 / rate) if connected else 0
            was_connected = connected
            if connected:
                kind, topic, data = flood.next_message()
                try:
                    await net.pubsub.publish(topic_name(genesis.chain_id, topic), data)
                    flood.sent[kind] = flood.sent.get(kind, 0) + 1
                except Exception:  # the library raises several types when a peer drops us
                    flood.publish_errors += 1
            await trio.sleep(1 / rate)
        out.update(peer_id=net.peer_id, sent=flood.sent, publish_errors=flood.publish_errors,
                   seen_honest_txs=len(flood.seen_txs), connected_s=round(out["connected_s"], 1))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.e2e.hostile")
    parser.add_argument("--target", required=True, help="full multiaddr of the node to attack")
    parser.add_argument("--genesis", required=True, type=Path)
    parser.add_argument("--listen", default="/ip4/127.0.0.1/tcp/0")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "big"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    result = trio.run(run, args.target, args.genesis, args.listen, args.seconds, args.rate, args.seed)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
