import dataclasses
import hashlib

import pytest
from hypothesis import given, strategies as st

from wire import DecodeError
from consensus.block import (
    MAX_BLOCK_LAG_MS, MAX_CLOCK_DRIFT_MS, ZERO_ID, Block, Commit, CommitSig, check_block_lag, check_block_shape,
    check_block_time, compute_block_id, compute_tx_root, get_equivocators, verify_block_evidence, verify_commit,
)
from consensus.errors import InvalidBlock
from consensus.messages import Decision, decode_consensus
from consensus.vote import PREVOTE, EVIDENCE_MAX_AGE, make_duplicate_vote
from tests.unit.consensus.harness import (
    CHAIN, KEYS, OTHER_CHAIN, OUTSIDER, Net, make_block, publics, signed_proposal, signed_vote,
)


@pytest.fixture(scope="module")
def chain():
    net = Net(4)
    net.start()
    net.run_heights(3)
    return net.chain(0)


def test_tx_root():
    assert compute_tx_root([]) == hashlib.sha256(b"").digest()
    assert compute_tx_root([b"a", b"b"]) != compute_tx_root([b"b", b"a"])
    assert compute_tx_root([b"a", b"b", b"c"]) == compute_tx_root([b"a", b"b", b"c"])
    assert compute_tx_root([b"a"]) != compute_tx_root([b"a", b"a"])


def test_block_id_is_the_header_hash(chain):
    block, commit = chain[0]
    assert compute_block_id(block) == hashlib.sha256(block.header.encode()).digest() == commit.block_id
    changed = dataclasses.replace(block.header, time_ms=block.header.time_ms + 1)
    assert compute_block_id(changed) != compute_block_id(block)


def test_block_and_decision_roundtrip(chain):
    block, commit = chain[1]
    assert decode_consensus(Decision(block=block, commit=commit).encode()) == Decision(block=block, commit=commit)
    proposal = signed_proposal(KEYS[2], 2, 0, block)
    assert decode_consensus(proposal.encode()) == proposal


@given(st.binary(max_size=300))
def test_decoder_raises_only_decode_error(data):
    try:
        decode_consensus(data)
    except DecodeError:
        pass


def test_invalid_oversize_message():
    with pytest.raises(DecodeError, match="oversize"):
        decode_consensus(bytes(5 * 1024 * 1024))


def test_commit_verifies(chain):
    block, commit = chain[0]
    verify_commit(publics(4), CHAIN, 1, compute_block_id(block), commit)
    assert len(commit.sigs) >= 3


def _with_sigs(commit: Commit, sigs) -> Commit:
    return dataclasses.replace(commit, sigs=tuple(sigs))


@pytest.mark.parametrize("mutate,reason", [
    (lambda c: dataclasses.replace(c, height=2), "height"),
    (lambda c: dataclasses.replace(c, block_id=bytes(32)), "another block"),
    (lambda c: _with_sigs(c, c.sigs[:2]), "quorum"),
    (lambda c: _with_sigs(c, (c.sigs[0], c.sigs[0], c.sigs[1])), "two signatures"),
    (lambda c: _with_sigs(c, c.sigs + (CommitSig(validator=OUTSIDER.public, sig=c.sigs[0].sig),)), "non-validator"),
    (lambda c: _with_sigs(c, (CommitSig(validator=c.sigs[0].validator, sig=c.sigs[1].sig),) + c.sigs[1:]),
     "bad precommit"),
    (lambda c: dataclasses.replace(c, round=c.round + 1), "bad precommit"),
])
def test_invalid_commit(chain, mutate, reason):
    block, commit = chain[0]
    with pytest.raises(InvalidBlock, match=reason):
        verify_commit(publics(4), CHAIN, 1, compute_block_id(block), mutate(commit))


def test_invalid_commit_from_another_chain(chain):
    block, commit = chain[0]
    with pytest.raises(InvalidBlock, match="bad precommit"):
        verify_commit(publics(4), OTHER_CHAIN, 1, compute_block_id(block), commit)


def test_invalid_missing_commit():
    with pytest.raises(InvalidBlock, match="no commit"):
        verify_commit(publics(4), CHAIN, 1, bytes(32), None)


def test_block_shape_accepts_a_good_block(chain):
    block, _ = chain[1]
    check_block_shape(block, CHAIN, 2, chain[0][1].block_id, parent_time_ms=chain[0][0].header.time_ms,
                       now_ms=block.header.time_ms)
    check_block_shape(chain[0][0], CHAIN, 1, ZERO_ID)


def _retx(block: Block, txs) -> Block:
    return dataclasses.replace(block, txs=tuple(txs))


@pytest.mark.parametrize("mutate,reason", [
    (lambda b, p: (b, OTHER_CHAIN, 2, p), "another chain"),
    (lambda b, p: (b, CHAIN, 3, p), "height"),
    (lambda b, p: (b, CHAIN, 2, bytes(32)), "parent"),
    (lambda b, p: (_retx(b, [b"evil"]), CHAIN, 2, p), "tx root"),
    (lambda b, p: (dataclasses.replace(b, last_commit=None), CHAIN, 2, p), "no last commit"),
])
def test_invalid_block_shape(chain, mutate, reason):
    block, _ = chain[1]
    args = mutate(block, chain[0][1].block_id)
    with pytest.raises(InvalidBlock, match=reason):
        check_block_shape(*args)


def test_invalid_last_commit_at_height_one_or_for_another_block(chain):
    first, commit = chain[0]
    with pytest.raises(InvalidBlock, match="height 1 carries"):
        check_block_shape(dataclasses.replace(first, last_commit=commit), CHAIN, 1, ZERO_ID)
    second = chain[1][0]
    other = dataclasses.replace(commit, block_id=bytes(32))
    with pytest.raises(InvalidBlock, match="not for the parent"):
        check_block_shape(dataclasses.replace(second, last_commit=other), CHAIN, 2, commit.block_id)


def test_invalid_too_many_txs(chain):
    with pytest.raises(InvalidBlock, match="at most 0"):
        check_block_shape(chain[0][0], CHAIN, 1, ZERO_ID, max_txs=0)


def test_block_time_rules():
    block = make_block(2, None, KEYS[0].public, time_ms=10_000)
    check_block_time(block, 9_999, 10_000 - MAX_CLOCK_DRIFT_MS)
    with pytest.raises(InvalidBlock, match="not after"):
        check_block_time(block, 10_000, None)
    with pytest.raises(InvalidBlock, match="5 s ahead"):
        check_block_time(block, None, 10_000 - MAX_CLOCK_DRIFT_MS - 1)


def test_block_lag_accepts_up_to_the_bound():
    block = make_block(2, None, KEYS[0].public, time_ms=100_000)
    check_block_lag(block, 100_000 + MAX_BLOCK_LAG_MS)
    check_block_lag(block, 100_000 - MAX_CLOCK_DRIFT_MS)     # ahead: check_block_time's business
    check_block_lag(block, 100_000 + 60_000, max_lag_ms=60_000)


@pytest.mark.parametrize("now_ms", [100_000 + MAX_BLOCK_LAG_MS + 1, 100_000 + 86_400_000])
def test_invalid_block_lag_behind_the_clock(now_ms):
    block = make_block(2, None, KEYS[0].public, time_ms=100_000)
    with pytest.raises(InvalidBlock, match="behind this clock"):
        check_block_lag(block, now_ms)


def _evidence(height, key=KEYS[1]):
    a = signed_vote(key, PREVOTE, height, 0, None)
    b = signed_vote(key, PREVOTE, height, 0, hashlib.sha256(b"x").digest())
    return make_duplicate_vote(a, b)


def test_block_evidence_and_equivocators():
    evs = (_evidence(3, KEYS[2]), _evidence(4, KEYS[1]), _evidence(5, KEYS[1]))
    block = make_block(6, None, KEYS[0].public, evidence=evs)
    verify_block_evidence(block, CHAIN, lambda h: publics(4))
    assert get_equivocators(block) == tuple(sorted([KEYS[1].public, KEYS[2].public]))


@pytest.mark.parametrize("evs,height,reason", [
    ((_evidence(3), _evidence(3)), 6, "already included"),
    ((_evidence(7),), 6, "out of range"),
    ((_evidence(1),), 2 + EVIDENCE_MAX_AGE, "out of range"),
    ((_evidence(3, OUTSIDER),), 6, "non-validator"),
])
def test_invalid_block_evidence(evs, height, reason):
    block = make_block(height, None, KEYS[0].public, evidence=evs)
    with pytest.raises(InvalidBlock, match=reason):
        verify_block_evidence(block, CHAIN, lambda h: publics(4))


def test_invalid_evidence_already_committed():
    from consensus.vote import compute_evidence_key
    ev = _evidence(3)
    block = make_block(6, None, KEYS[0].public, evidence=(ev,))
    with pytest.raises(InvalidBlock, match="already included"):
        verify_block_evidence(block, CHAIN, lambda h: publics(4), {compute_evidence_key(ev): 3})
