import hashlib

import msgpack
import pytest

from wire import DecodeError, decode
from consensus.errors import InvalidVote
from consensus.messages import decode_consensus
from consensus.vote import (
    PRECOMMIT, PREVOTE, DuplicateVote, Vote, compute_quorum, compute_skip_threshold, make_duplicate_vote,
    verify_evidence, verify_vote,
)
from tests.unit.consensus.harness import CHAIN, KEYS, OTHER_CHAIN, OUTSIDER, publics, signed_vote

BID = hashlib.sha256(b"block").digest()
BID2 = hashlib.sha256(b"block 2").digest()


@pytest.mark.parametrize("n,quorum,skip", [(1, 1, 1), (3, 3, 1), (4, 3, 2), (5, 4, 2), (7, 5, 3),
                                           (10, 7, 4), (31, 21, 11)])
def test_quorum_and_skip_threshold(n, quorum, skip):
    assert compute_quorum(n) == quorum
    assert compute_skip_threshold(n) == skip


def test_vote_golden_vector():
    """Bytes in, object out, and back again; the digest pins the encoding."""
    vote = signed_vote(KEYS[0], PRECOMMIT, 7, 2, BID)
    data = vote.encode()
    assert decode(data, Vote) == vote
    assert decode_consensus(data) == vote
    assert decode(data, Vote).encode() == data
    assert hashlib.sha256(data).hexdigest() == GOLDEN_VOTE_SHA256


GOLDEN_VOTE_SHA256 = "e019b610405aaf517b49139ea590d82786424aec0c971b2e6bb77f0aab731936"


def test_nil_vote_roundtrip():
    vote = signed_vote(KEYS[1], PREVOTE, 1, 0, None)
    assert decode_consensus(vote.encode()) == vote
    verify_vote(publics(4), CHAIN, vote)


def test_invalid_vote_kind_is_a_decode_error():
    vote = signed_vote(KEYS[0], PREVOTE, 1, 0, BID)
    arr = vote.to_array()
    arr[2] = 3
    with pytest.raises(DecodeError, match="vote kind"):
        decode(msgpack.packb(arr, use_bin_type=True), Vote)


def forged_vote():
    """KEYS[0]'s signature of a prevote for BID, put on a prevote for BID2."""
    vote = signed_vote(KEYS[0], PREVOTE, 1, 0, BID)
    return Vote(kind=vote.kind, height=vote.height, round=vote.round, block_id=BID2, validator=vote.validator,
                sig=vote.sig)


@pytest.mark.parametrize("make, reason", [
    (lambda: signed_vote(OUTSIDER, PREVOTE, 1, 0, BID), "non-validator"),
    (forged_vote, "signature"),
    (lambda: signed_vote(KEYS[0], PREVOTE, 1, 0, BID, chain_id=OTHER_CHAIN), "signature"),
], ids=["from_non_validator", "signature", "from_another_chain"])
def test_invalid_vote(make, reason):
    with pytest.raises(InvalidVote, match=reason):
        verify_vote(publics(4), CHAIN, make())


def test_evidence_is_canonical_and_valid():
    a = signed_vote(KEYS[2], PREVOTE, 3, 1, BID)
    b = signed_vote(KEYS[2], PREVOTE, 3, 1, None)
    ev = make_duplicate_vote(a, b)
    assert ev == make_duplicate_vote(b, a)
    assert ev.vote_a.block_id is None
    assert ev.validator == KEYS[2].public and ev.height == 3
    verify_evidence(publics(4), CHAIN, ev)
    assert decode_consensus(ev.encode()) == ev


@pytest.mark.parametrize("second,reason", [
    (lambda: signed_vote(KEYS[2], PREVOTE, 3, 1, BID), "same block id"),
    (lambda: signed_vote(KEYS[2], PREVOTE, 3, 2, BID2), "not for the same"),
    (lambda: signed_vote(KEYS[2], PRECOMMIT, 3, 1, BID2), "not for the same"),
    (lambda: signed_vote(KEYS[1], PREVOTE, 3, 1, BID2), "not for the same"),
    (lambda: signed_vote(KEYS[2], PREVOTE, 4, 1, BID2), "not for the same"),
])
def test_invalid_evidence(second, reason):
    ev = DuplicateVote(vote_a=signed_vote(KEYS[2], PREVOTE, 3, 1, BID), vote_b=second())
    with pytest.raises(InvalidVote, match=reason):
        verify_evidence(publics(4), CHAIN, ev)


def test_invalid_evidence_order():
    low, high = sorted([BID, BID2])
    ev = DuplicateVote(vote_a=signed_vote(KEYS[0], PREVOTE, 1, 0, high),
                       vote_b=signed_vote(KEYS[0], PREVOTE, 1, 0, low))
    with pytest.raises(InvalidVote, match="canonical order"):
        verify_evidence(publics(4), CHAIN, ev)


def test_invalid_evidence_bad_signature_or_outsider():
    a = signed_vote(KEYS[0], PREVOTE, 1, 0, None)
    b = signed_vote(KEYS[0], PREVOTE, 1, 0, BID)
    forged = Vote(kind=b.kind, height=b.height, round=b.round, block_id=b.block_id, validator=b.validator,
                  sig=a.sig)
    with pytest.raises(InvalidVote, match="signature"):
        verify_evidence(publics(4), CHAIN, make_duplicate_vote(a, forged))
    with pytest.raises(InvalidVote, match="non-validator"):
        verify_evidence(publics(4)[1:], CHAIN, make_duplicate_vote(a, b))
