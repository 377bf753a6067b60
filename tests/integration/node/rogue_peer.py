"""A rogue peer: a real libp2p process (node/net) that joins a commune's gossip and
publishes garbage and forged messages on every topic of the chain.

    python -m tests.integration.node.rogue_peer HOME GENESIS_JSON PEER_MADDR ROUNDS

It prints one JSON line: how many messages it published and the ids of the forged
transactions (which must never be committed).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from functools import partial
from pathlib import Path

import trio

from consensus.vote import PREVOTE, Vote
from node.net import ACCEPT, TopicKind, TxBatch, open_network
from tokens.genesis import Genesis, parse_genesis
from tokens.txs import MeterReading, Transfer
from wire import Keypair, compute_id, sign_message

def forged_reading(genesis: Genesis, forger: Keypair, i: int) -> bytes:
    """A reading in household 0's name, signed with the wrong key: a bad signature."""
    house = genesis.households[0]
    tx = MeterReading(signer=house.key, meter=house.meter, seq=10_000 + i, t=genesis.genesis_time + i,
                      import_wh=10**9, export_wh=10**9, sig=b"")
    return sign_message(tx, genesis.chain_id, forger).encode()


def forged_transfer(genesis: Genesis, forger: Keypair, i: int) -> bytes:
    """A well-signed transfer from a key the commune never registered."""
    tx = Transfer(signer=forger.public, nonce=i + 1, to=genesis.households[0].key, cls="kwh",
                  amount=1_000_000, memo="free energy", sig=b"")
    return sign_message(tx, genesis.chain_id, forger).encode()


def forged_vote(genesis: Genesis, forger: Keypair, height: int, i: int) -> bytes:
    """A prevote for the height being decided, signed by a key that is no validator."""
    vote = Vote(kind=PREVOTE, height=height, round=i, block_id=hashlib.sha256(b"%d" % i).digest(),
                validator=forger.public, sig=b"")
    return sign_message(vote, genesis.chain_id, forger).encode()


def make_round(genesis: Genesis, forger: Keypair, height: int, i: int) -> tuple[list[tuple[TopicKind, bytes]], list[str]]:
    reading, transfer = forged_reading(genesis, forger, i), forged_transfer(genesis, forger, i)
    # Three distinct kinds of forgery first: a few REJECTs get the rogue banned, and a
    # banned peer's messages are no longer judged.
    messages = [
        (TopicKind.CONSENSUS, forged_vote(genesis, forger, height, i)),
        (TopicKind.TX, TxBatch(txs=(reading,)).encode()),
        (TopicKind.TX, b"\xc1garbage-%d" % i),
        (TopicKind.TX, TxBatch(txs=(transfer,)).encode()),
        (TopicKind.CONSENSUS, b"\x93\xa4junk%d" % i),
        (TopicKind.EVIDENCE, os.urandom(64)),
    ]
    return messages, [compute_id(tx).hex() for tx in (reading, transfer)]


async def attack(home: Path, genesis: Genesis, peer: str, rounds: int) -> dict:
    forger = Keypair(hashlib.sha256(b"rogue" + genesis.chain_id).digest())
    handlers = {kind: (lambda p, d: ACCEPT) for kind in TopicKind}
    sent, forged_ids = 0, []
    async with open_network(home, genesis.chain_id, "/ip4/127.0.0.1/tcp/0", [peer], handlers) as net:
        with trio.move_on_after(30):   # connected, and the peer told us its subscriptions
            while not (net.peers() and all(net.pubsub.peer_topics.get(net.topic(kind)) for kind in TopicKind)):
                await trio.sleep(0.1)
        await trio.sleep(1.0)          # a heartbeat: it learns ours too
        # The status protocol tells the height being decided: a forged vote for it is
        # neither stale nor too far ahead, so only its signer can condemn it.
        height = await net.request_status(net.peers()[0]) + 1
        for i in range(rounds):
            messages, ids = make_round(genesis, forger, height, i)
            forged_ids += ids
            for kind, data in messages:
                await net.publish_raw(kind, data)
                sent += 1
            await trio.sleep(0.2)
        await trio.sleep(1.0)
        banned_us = not net.peers()
        peer_id = net.peer_id
    return {"sent": sent, "forged_tx_ids": forged_ids, "disconnected": banned_us, "peer_id": peer_id}


def main(argv: list[str]) -> int:
    home, genesis_path, peer, rounds = Path(argv[0]), Path(argv[1]), argv[2], int(argv[3])
    home.mkdir(parents=True, exist_ok=True)
    genesis = parse_genesis(genesis_path.read_bytes())
    report = trio.run(partial(attack, home, genesis, peer, rounds))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
