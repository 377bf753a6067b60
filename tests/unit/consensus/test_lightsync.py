"""consensus/lightsync.py: a header chain checked from genesis through set changes only."""

from __future__ import annotations

import dataclasses

import pytest

from consensus.block import Commit, CommitSig, Header, compute_block_id, compute_validators_hash
from consensus.errors import InvalidBlock
from consensus.lightsync import (
    SetChange, SetChanges, SignedHeader, SignedHeaders, TrustedSet, get_trusted_set, verify_header_chain,
    verify_set_changes, verify_trusted_header,
)
from consensus.vote import PRECOMMIT, Vote
from tests.unit.consensus.harness import CHAIN, KEYS, OTHER_CHAIN, OUTSIDER
from wire import decode, sign_message

A = KEYS[0:4]           # genesis set
B = KEYS[2:6]           # from height 11: overlaps A by two keys only
C = KEYS[6:10]          # from height 31: no overlap with A


def header(height: int, next_set, chain=CHAIN) -> Header:
    return Header(chain_id=chain, height=height, time_ms=1000 * height, parent=bytes(32), tx_root=bytes(32),
                  state_hash=bytes([height % 256]) * 32, proposer=next_set[0].public,
                  next_validators=compute_validators_hash([k.public for k in next_set]), version=1)


def commit(h: Header, signers, chain=CHAIN) -> Commit:
    block_id = compute_block_id(h)
    sigs = []
    for key in signers:
        vote = sign_message(Vote(kind=PRECOMMIT, height=h.height, round=0, block_id=block_id,
                                 validator=key.public, sig=bytes(64)), chain, key)
        sigs.append(CommitSig(validator=key.public, sig=vote.sig))
    return Commit(height=h.height, round=0, block_id=block_id, sigs=tuple(sigs))


def change(height: int, signers, new_set) -> SetChange:
    h = header(height, new_set)
    return SetChange(header=h, commit=commit(h, signers), validators=tuple(k.public for k in new_set))


def genesis():
    return [k.public for k in A]


def test_follows_two_changes_and_checks_a_later_header():
    changes = [change(10, A[:3], B), change(30, B[1:], C)]
    sets = verify_set_changes(CHAIN, genesis(), changes)
    assert [s.from_height for s in sets] == [1, 11, 31]
    assert get_trusted_set(sets, 10) == tuple(genesis()) and get_trusted_set(sets, 11) == tuple(k.public for k in B)
    h = header(57, C)
    verify_trusted_header(CHAIN, sets, h, commit(h, C[:3]))
    # The changes travel as one wire message and decode to the same thing.
    wire = SetChanges(changes=tuple(changes)).encode()
    assert decode(wire, SetChanges, len(wire)).changes == tuple(changes)


def test_invalid_forged_set_change_keys_do_not_match_the_header():
    forged = dataclasses.replace(change(10, A[:3], B), validators=tuple(k.public for k in C))
    with pytest.raises(InvalidBlock, match="forged set change"):
        verify_set_changes(CHAIN, genesis(), [forged])


def test_invalid_set_change_signed_by_the_new_set_not_the_trusted_one():
    # The attacker controls C and signs a header handing the chain to C.
    with pytest.raises(InvalidBlock, match="non-validator"):
        verify_set_changes(CHAIN, genesis(), [change(10, C[:3], C)])


def test_invalid_set_change_below_quorum_of_the_trusted_set():
    with pytest.raises(InvalidBlock, match="quorum"):
        verify_set_changes(CHAIN, genesis(), [change(10, A[:2], B)])


def test_invalid_second_change_checked_against_the_first_changes_set():
    # Signed by A, which no longer signs after height 10.
    with pytest.raises(InvalidBlock):
        verify_set_changes(CHAIN, genesis(), [change(10, A[:3], B), change(30, [A[0], A[1], OUTSIDER], C)])


def test_invalid_changes_out_of_order():
    with pytest.raises(InvalidBlock, match="not after"):
        verify_set_changes(CHAIN, genesis(), [change(30, A[:3], B), change(10, B[:3], C)])


def test_invalid_change_for_another_chain():
    h = header(10, B, chain=OTHER_CHAIN)
    bad = SetChange(header=h, commit=commit(h, A[:3], chain=OTHER_CHAIN), validators=tuple(k.public for k in B))
    with pytest.raises(InvalidBlock, match="another chain"):
        verify_set_changes(CHAIN, genesis(), [bad])


def test_invalid_header_when_a_change_was_left_out():
    # The peer shows no change, but the header it serves commits to another next set.
    sets = verify_set_changes(CHAIN, genesis(), [])
    h = header(20, B)
    with pytest.raises(InvalidBlock, match="a change is missing"):
        verify_trusted_header(CHAIN, sets, h, commit(h, A))
    # And a header signed by a set the client never saw verified is refused outright.
    h = header(40, C)
    with pytest.raises(InvalidBlock):
        verify_trusted_header(CHAIN, sets, h, commit(h, C))


def test_invalid_header_with_a_bad_signature():
    sets = [TrustedSet(1, tuple(genesis()))]
    h = header(5, A)
    good = commit(h, A[:3])
    tampered = dataclasses.replace(good, sigs=(dataclasses.replace(good.sigs[0], sig=bytes(64)), *good.sigs[1:]))
    with pytest.raises(InvalidBlock, match="bad precommit"):
        verify_trusted_header(CHAIN, sets, h, tampered)


def chained(start_parent: bytes, heights, next_set, signers) -> list[SignedHeader]:
    out, parent = [], start_parent
    for height in heights:
        h = dataclasses.replace(header(height, next_set), parent=parent)
        out.append(SignedHeader(header=h, commit=commit(h, signers)))
        parent = compute_block_id(h)
    return out


def test_header_chain_follows_from_genesis_one_by_one():
    sets = verify_set_changes(CHAIN, genesis(), [])
    headers = chained(bytes(32), range(1, 6), A, A[:3])
    assert verify_header_chain(CHAIN, sets, 0, bytes(32), headers) == compute_block_id(headers[-1].header)
    wire = SignedHeaders(headers=tuple(headers)).encode()
    assert decode(wire, SignedHeaders, len(wire)).headers == tuple(headers)


def test_invalid_header_chain():
    sets = verify_set_changes(CHAIN, genesis(), [])
    headers = chained(bytes(32), range(1, 4), A, A[:3])
    with pytest.raises(InvalidBlock, match="expected the header of height 1"):
        verify_header_chain(CHAIN, sets, 0, bytes(32), headers[1:])
    with pytest.raises(InvalidBlock, match="does not follow"):
        verify_header_chain(CHAIN, sets, 0, bytes([1]) * 32, headers)
    unsigned = chained(bytes(32), range(1, 3), A, [A[0], OUTSIDER, C[0]])
    with pytest.raises(InvalidBlock):
        verify_header_chain(CHAIN, sets, 0, bytes(32), unsigned)
    # A header handing the chain to a set no verified change shows.
    with pytest.raises(InvalidBlock, match="a change is missing"):
        verify_header_chain(CHAIN, sets, 0, bytes(32), chained(bytes(32), range(1, 3), C, A[:3]))
