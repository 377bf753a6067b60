import dataclasses

import pytest

from consensus.block import compute_block_id
from consensus.errors import InvalidBlock
from consensus.sync import MAX_SYNC_BATCH, Trusted, verify_chain
from tests.unit.consensus.harness import CHAIN, KEYS, OTHER_CHAIN, Net, publics

HEIGHTS = 6


@pytest.fixture(scope="module")
def chain():
    net = Net(4)
    net.start()
    net.run_heights(HEIGHTS)
    return net.chain(0)[:HEIGHTS]


def _sets(h):
    return publics(4)


def test_verifies_a_whole_chain_from_genesis(chain):
    got = list(verify_chain(Trusted(0), CHAIN, chain, _sets))
    assert got == chain


def test_verifies_from_a_trusted_middle(chain):
    block, _ = chain[2]
    tip = Trusted(3, compute_block_id(block), block.header.time_ms)
    assert list(verify_chain(tip, CHAIN, chain[3:], _sets)) == chain[3:]


def with_weak_commit(chain):
    block, commit = chain[1]
    return [chain[0], (block, dataclasses.replace(commit, sigs=commit.sigs[:2]))]


def with_commit_for_another_block(chain):
    return [(chain[0][0], dataclasses.replace(chain[0][1], block_id=chain[1][1].block_id))]


def with_tampered_block(chain):
    block, commit = chain[0]
    return [(dataclasses.replace(block, txs=(b"forged",)), commit)]


@pytest.mark.parametrize("segment, chain_id, reason", [
    (lambda chain: [chain[0], chain[2]], CHAIN, "gap: expected height 2, got 3"),
    (with_weak_commit, CHAIN, "quorum"),
    (with_commit_for_another_block, CHAIN, "another block"),
    (lambda chain: chain, OTHER_CHAIN, "another chain"),
    (with_tampered_block, CHAIN, "tx root"),
    (lambda chain: chain + chain * (MAX_SYNC_BATCH // len(chain) + 1), CHAIN, "more than"),
], ids=["gap", "commit", "commit_for_another_block", "wrong_chain_id", "tampered_block", "too_many_blocks"])
def test_invalid_segment(chain, segment, chain_id, reason):
    with pytest.raises(InvalidBlock, match=reason):
        list(verify_chain(Trusted(0), chain_id, segment(chain), _sets))


def test_good_blocks_before_the_bad_one_are_yielded(chain):
    good = []
    with pytest.raises(InvalidBlock):
        for pair in verify_chain(Trusted(0), CHAIN, chain[:3] + chain[4:], _sets):
            good.append(pair)
    assert good == chain[:3]


def test_invalid_wrong_parent(chain):
    block, _ = chain[2]
    tip = Trusted(2, bytes(32), chain[1][0].header.time_ms)
    with pytest.raises(InvalidBlock, match="parent"):
        list(verify_chain(tip, CHAIN, chain[2:], _sets))


def test_invalid_commit_signed_by_a_removed_validator(chain):
    """Commits are checked against the set of their own height."""
    with pytest.raises(InvalidBlock):
        list(verify_chain(Trusted(0), CHAIN, chain, lambda h: publics(4) if h < 3 else publics(4)[1:] + [KEYS[9].public]))


def test_follows_a_validator_set_change():
    """A fifth validator joins from height 3: the chain built with it verifies with the
    same evolving callback, and not with a static one."""
    sets = lambda h: publics(4) if h < 3 else publics(5)   # noqa: E731
    net = Net(5, sets=sets)
    net.start()
    net.run_heights(5)
    chain = net.chain(0)[:5]
    assert any(s.validator == KEYS[4].public for _, c in chain[2:] for s in c.sigs)
    assert list(verify_chain(Trusted(0), CHAIN, chain, sets)) == chain
    with pytest.raises(InvalidBlock):
        list(verify_chain(Trusted(0), CHAIN, chain, lambda h: publics(4)))
