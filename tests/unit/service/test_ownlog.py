"""ownlog: a validator's own signed messages of the current height survive a restart,
and only those its double-sign record covers are fed back."""

from __future__ import annotations

import hashlib

import pytest

from consensus.privval import SignState
from consensus.step import Step
from consensus.vote import PRECOMMIT, PREVOTE, Vote, compute_sign_hash
from node.service.ownlog import (
    OWN_FILE, OwnMessages, decode_frames, encode_frames, is_covered, load_own_messages,
)
from wire import Keypair, sign_message, signing_bytes

CHAIN = hashlib.sha256(b"chain").digest()
KEY = Keypair(hashlib.sha256(b"validator").digest())


def vote(height: int, round: int, kind: int, block: bytes | None = b"\x07" * 32) -> Vote:
    v = Vote(kind=kind, height=height, round=round, block_id=block, validator=KEY.public, sig=bytes(64))
    return sign_message(v, CHAIN, KEY)


def record_for(v: Vote) -> SignState:
    step = Step.PREVOTE if v.kind == PREVOTE else Step.PRECOMMIT
    return SignState(height=v.height, round=v.round, step=step,
                     sign_hash=compute_sign_hash(signing_bytes(CHAIN, v)), locked_round=-1, locked_id=None)


def test_frames_round_trip() -> None:
    frames = [b"", b"a", b"\x00" * 300]
    assert decode_frames(encode_frames(frames)) == frames


@pytest.mark.parametrize("cut", [1, 3, 5, 8, 12])
def test_invalid_torn_file_raises(cut: int) -> None:
    with pytest.raises(ValueError):
        decode_frames(encode_frames([b"hello", b"world"])[:-cut])


def test_messages_of_the_resumed_height_come_back(tmp_path) -> None:
    own = OwnMessages(tmp_path)
    old, prevote, precommit = vote(4, 0, PREVOTE), vote(5, 0, PREVOTE), vote(5, 0, PRECOMMIT)
    for v in (old, prevote, precommit):
        own.record(v.height, v.encode())
    restored = load_own_messages(tmp_path, CHAIN, 5, KEY.public, record_for(precommit))
    assert restored == [prevote, precommit]


def test_invalid_message_beyond_the_record_is_dropped(tmp_path) -> None:
    # Killed after the message was written and before the record was fsynced: never sent.
    prevote, precommit = vote(5, 0, PREVOTE), vote(5, 0, PRECOMMIT)
    own = OwnMessages(tmp_path)
    own.record(5, prevote.encode())
    own.record(5, precommit.encode())
    assert load_own_messages(tmp_path, CHAIN, 5, KEY.public, record_for(prevote)) == [prevote]


def test_invalid_message_at_the_record_with_other_bytes_is_dropped() -> None:
    signed, other = vote(5, 1, PREVOTE), vote(5, 1, PREVOTE, block=None)
    assert is_covered(signed, CHAIN, record_for(signed))
    assert not is_covered(other, CHAIN, record_for(signed))


def test_invalid_damaged_file_is_skipped(tmp_path) -> None:
    (tmp_path / OWN_FILE).write_bytes(b"\x00\x00\x00\x09abc")
    assert load_own_messages(tmp_path, CHAIN, 5, KEY.public, record_for(vote(5, 0, PREVOTE))) == []


def test_other_validators_messages_are_not_own(tmp_path) -> None:
    stranger = Keypair(hashlib.sha256(b"other").digest())
    v = sign_message(Vote(kind=PREVOTE, height=5, round=0, block_id=None, validator=stranger.public,
                          sig=bytes(64)), CHAIN, stranger)
    OwnMessages(tmp_path).record(5, v.encode())
    assert load_own_messages(tmp_path, CHAIN, 5, KEY.public, record_for(vote(6, 0, PREVOTE))) == []
