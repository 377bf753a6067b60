"""Byzantine behaviour for the consensus simulator (node/sim/consensus.py).

A byzantine validator runs an ordinary engine but equivocates on everything it
signs: for each proposal or vote it also signs a conflicting twin, then sends the
original to one random half of its peers and the twin to the other half, and both
to some peers (as gossip relaying would), so honest nodes can catch it.
"""

from __future__ import annotations

import hashlib
import random

from wire import Keypair, Message, sign_message

from consensus.messages import Proposal
from consensus.vote import Vote

BOTH_PROBABILITY = 0.25     # chance that a peer receives both versions


def make_vote_twin(vote: Vote, chain_id: bytes, key: Keypair) -> Vote:
    """The same (height, round, kind), signed for another block: nil for a block vote, a
    made-up block id for a nil vote. Sent beside the original, that is an equivocation
    (DESIGN §6 "Evidence")."""
    other = None if vote.block_id is not None else hashlib.sha256(b"twin" + vote.encode()).digest()
    return sign_message(Vote(kind=vote.kind, height=vote.height, round=vote.round, block_id=other,
                             validator=vote.validator, sig=bytes(64)), chain_id, key)


class Byzantine:
    def __init__(self, node, chain_id: bytes, rng: random.Random) -> None:
        self.node, self.chain_id, self.rng = node, chain_id, rng
        self.twins: dict[tuple, Message] = {}

    @property
    def key(self) -> Keypair:
        return self.node.key

    def send(self, msg: Message, sim) -> None:
        """Split the peers between ``msg`` and its conflicting twin."""
        twin = self.get_twin(msg)
        me = self.node.index
        if twin is None:
            sim.send(me, msg, None)
            return
        peers = [i for i in range(len(sim.nodes)) if i != me]
        self.rng.shuffle(peers)
        half = len(peers) // 2
        side_a, side_b = peers[:half], peers[half:]
        both = [i for i in peers if self.rng.random() < BOTH_PROBABILITY]
        sim.send(me, msg, side_a + [i for i in both if i not in side_a])
        sim.send(me, twin, side_b + [i for i in both if i not in side_b])

    def get_twin(self, msg: Message) -> Message | None:
        me = self.key.public
        if isinstance(msg, Vote) and msg.validator == me:
            slot = ("vote", msg.height, msg.round, msg.kind, msg.block_id)
            make = self.make_vote_twin
        elif isinstance(msg, Proposal) and msg.proposer == me:
            slot = ("proposal", msg.height, msg.round, msg.id())
            make = self.make_proposal_twin
        else:
            return None     # evidence, decisions, relayed messages: sent as they are
        twin = self.twins.get(slot)
        if twin is None:
            twin = self.twins[slot] = make(msg)
        return twin

    def make_vote_twin(self, vote: Vote) -> Vote:
        return make_vote_twin(vote, self.chain_id, self.key)

    def make_proposal_twin(self, p: Proposal) -> Proposal:
        """Another valid block for the same (height, round), with other txs."""
        block = self.node.app.propose(p.height, p.round, p.block.last_commit, p.block.evidence)
        return sign_message(Proposal(height=p.height, round=p.round, pol_round=p.pol_round, block=block,
                                     proposer=p.proposer, sig=bytes(64)), self.chain_id, self.key)
