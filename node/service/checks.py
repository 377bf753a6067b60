"""Gossip checks of consensus messages before they are relayed (DESIGN §7 "Gossip validation").

A consensus message that decodes is only worth relaying if a validator of its height
signed it: otherwise every node would forward a forger's votes to every other one.
Such messages are REJECTed here, so gossipsub penalises the forwarder; the engine
still re-checks everything it is fed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from consensus.block import compute_block_id, verify_commit
from consensus.errors import InvalidBlock, InvalidVote
from consensus.messages import Decision, Proposal
from consensus.vote import EVIDENCE_MAX_AGE, DuplicateVote, Vote, verify_evidence, verify_vote
from wire import verify_message

ValidatorSet = Callable[[int], Sequence[bytes]]


def get_consensus_fault(msg: object, chain_id: bytes, validator_set: ValidatorSet) -> str:
    """The REJECT reason of a decoded consensus message, or "" if its signatures hold."""
    try:
        if isinstance(msg, Vote):
            verify_vote(validator_set(msg.height), chain_id, msg)
        elif isinstance(msg, Proposal):
            verify_proposal_signer(validator_set(msg.height), chain_id, msg)
        elif isinstance(msg, DuplicateVote):
            verify_evidence(validator_set(msg.height), chain_id, msg)
        elif isinstance(msg, Decision):
            height = msg.block.header.height
            verify_commit(validator_set(height), chain_id, height, compute_block_id(msg.block), msg.commit)
        else:
            return "malformed"
    except InvalidVote:
        return "invalid_vote"
    except InvalidBlock:
        return "invalid_commit"
    return ""


def verify_proposal_signer(validators: Sequence[bytes], chain_id: bytes, p: Proposal) -> None:
    # DESIGN §6: only a validator of the height proposes, and it signs its proposal.
    if p.proposer not in validators:
        raise InvalidVote("proposal from a non-validator")
    if not verify_message(p, chain_id):
        raise InvalidVote("bad proposal signature")


def is_evidence_too_old(ev: DuplicateVote, height: int) -> bool:
    """Evidence counts for EVIDENCE_MAX_AGE heights (consensus.vote); older is stale."""
    return ev.height + EVIDENCE_MAX_AGE < height
