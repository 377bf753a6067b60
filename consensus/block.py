"""Blocks, headers and commits (DESIGN §6), with their pure checks.

block id = sha256(encoded header); tx_root = RFC 6962-style Merkle root of the tx
ids (sha256 of each raw signed tx). A commit holds >= quorum precommit signatures
for one block id; each is re-verified as the ``Vote`` it was made as.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Container, Sequence

from wire import HASH, KEY, MAX_BLOCK_BYTES, MAX_TX_BYTES, SIG, U64, Bytes, List, Message, Nested, Opt
from wire import compute_id, field_of, register, verify_message
from wire.units import BlockId, Height, Round

from consensus.errors import InvalidBlock
from consensus.vote import (
    EVIDENCE_MAX_AGE, PRECOMMIT, DuplicateVote, InvalidVote, Vote, compute_evidence_key,
    compute_quorum, verify_evidence,
)

ZERO_ID = bytes(32)
MAX_BLOCK_TXS = 65_536          # hard wire cap; the genesis block_max_txs is the policy cap
MAX_COMMIT_SIGS = 1024
MAX_EVIDENCE = 256
MAX_CLOCK_DRIFT_MS = 5_000      # DESIGN §6: at most 5 s ahead of the validator's clock
# DESIGN §6: a fresh proposal at most 30 s behind the validator's clock (check_block_lag).
MAX_BLOCK_LAG_MS = 30_000


@register("cs/header")
@dataclass(frozen=True)
class Header(Message):
    chain_id: bytes = field_of(HASH)
    height: Height = field_of(U64)
    time_ms: int = field_of(U64)        # unix milliseconds
    parent: bytes = field_of(HASH)      # block id at height-1; 32 zero bytes at height 1
    tx_root: bytes = field_of(HASH)
    state_hash: bytes = field_of(HASH)  # application state hash after the parent
    proposer: bytes = field_of(KEY)     # the validator that built the block
    # compute_validators_hash of the set that signs height+1: a light client follows
    # the set from genesis through the headers where it changes (consensus/lightsync.py).
    next_validators: bytes = field_of(HASH)
    version: int = field_of(U64)        # protocol version of the rules it was built by (tokens/upgrades.py)


@register("cs/commit-sig")
@dataclass(frozen=True)
class CommitSig(Message):
    validator: bytes = field_of(KEY)
    sig: bytes = field_of(SIG)


@register("cs/commit")
@dataclass(frozen=True)
class Commit(Message):
    """>= quorum precommits for ``block_id`` at (height, round)."""

    height: Height = field_of(U64)
    round: Round = field_of(U64)
    block_id: BlockId = field_of(HASH)
    sigs: tuple[CommitSig, ...] = field_of(List(Nested(CommitSig), MAX_COMMIT_SIGS))


@register("cs/block")
@dataclass(frozen=True)
class Block(Message):
    header: Header = field_of(Nested(Header))
    txs: tuple[bytes, ...] = field_of(List(Bytes(max=MAX_TX_BYTES), MAX_BLOCK_TXS))
    last_commit: Commit | None = field_of(Opt(Nested(Commit)))
    evidence: tuple[DuplicateVote, ...] = field_of(List(Nested(DuplicateVote), MAX_EVIDENCE))


def compute_block_id(block: Block | Header) -> BlockId:
    """block id = sha256 of the encoded header."""
    header = block.header if isinstance(block, Block) else block
    return BlockId(compute_id(header.encode()))


def compute_validators_hash(validators: Sequence[bytes]) -> bytes:
    """The hash a header commits to for a validator set: sha256 over the keys in set order
    (the order fixes proposers, DESIGN §6), with a domain tag."""
    return hashlib.sha256(b"voisinage/validators/" + b"".join(validators)).digest()


def compute_tx_root(txs: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle root over the tx ids; leaf and node hashes are domain-separated."""
    if not txs:
        return hashlib.sha256(b"").digest()
    level = [hashlib.sha256(b"\x00" + compute_id(tx)).digest() for tx in txs]
    return _merkle(level)


def _merkle(nodes: list[bytes]) -> bytes:
    if len(nodes) == 1:
        return nodes[0]
    split = 1 << ((len(nodes) - 1).bit_length() - 1)   # largest power of two < len
    return hashlib.sha256(b"\x01" + _merkle(nodes[:split]) + _merkle(nodes[split:])).digest()


def make_commit_vote(commit: Commit, sig: CommitSig) -> Vote:
    """The precommit a commit signature was made as."""
    return Vote(kind=PRECOMMIT, height=commit.height, round=commit.round,
                block_id=commit.block_id, validator=sig.validator, sig=sig.sig)


def verify_commit(validators: Sequence[bytes], chain_id: bytes, height: Height, block_id: BlockId,
                  commit: Commit | None, verified: Container[tuple[bytes, bytes]] = frozenset()) -> None:
    """A commit is >= quorum valid precommits for block_id by distinct validators of ``height``.

    ``verified`` holds (validator, signature) pairs the caller already checked.
    """
    if commit is None:
        raise InvalidBlock("no commit")
    if commit.height != height:
        raise InvalidBlock(f"commit is for height {commit.height}, expected {height}")
    if commit.block_id != block_id:
        raise InvalidBlock("commit is for another block id")
    members = frozenset(validators)
    seen: set[bytes] = set()
    for sig in commit.sigs:
        if sig.validator in seen:
            raise InvalidBlock("commit has two signatures of one validator")
        if sig.validator not in members:
            raise InvalidBlock("commit signature from a non-validator")
        if (sig.validator, sig.sig) not in verified and not verify_message(make_commit_vote(commit, sig), chain_id):
            raise InvalidBlock("commit has a bad precommit signature")
        seen.add(sig.validator)
    if len(seen) < compute_quorum(len(members)):
        raise InvalidBlock(f"commit has {len(seen)} signatures, quorum is {compute_quorum(len(members))}")


def check_block_shape(block: Block, chain_id: bytes, height: Height, parent_id: BlockId,
                       parent_time_ms: int | None = None, now_ms: int | None = None,
                       max_txs: int = MAX_BLOCK_TXS) -> None:
    """Consensus-level checks that need no validator set; time checks when times are given."""
    header = block.header
    if len(block.encode()) > MAX_BLOCK_BYTES:
        raise InvalidBlock(f"block exceeds {MAX_BLOCK_BYTES} bytes")
    if header.chain_id != chain_id:
        raise InvalidBlock("block is for another chain")
    if header.height != height:
        raise InvalidBlock(f"block height {header.height}, expected {height}")
    if header.parent != parent_id:
        raise InvalidBlock("block parent is not the previous block")
    if len(block.txs) > max_txs:
        raise InvalidBlock(f"block has {len(block.txs)} txs, at most {max_txs}")
    if header.tx_root != compute_tx_root(block.txs):
        raise InvalidBlock("tx root does not match the txs")
    check_last_commit_shape(block, height, parent_id)
    check_block_time(block, parent_time_ms, now_ms)


def check_last_commit_shape(block: Block, height: Height, parent_id: BlockId) -> None:
    """DESIGN §6: last_commit holds the precommits for the parent; none at height 1."""
    last = block.last_commit
    if height == 1:
        if last is not None:
            raise InvalidBlock("block at height 1 carries a last commit")
        return
    if last is None:
        raise InvalidBlock("block has no last commit")
    if last.height != height - 1 or last.block_id != parent_id:
        raise InvalidBlock("last commit is not for the parent block")


def check_block_time(block: Block, parent_time_ms: int | None, now_ms: int | None) -> None:
    """DESIGN §6: time above the parent's, at most 5 s ahead of the validator's clock."""
    t = block.header.time_ms
    if parent_time_ms is not None and t <= parent_time_ms:
        raise InvalidBlock("block time is not after its parent's")
    if now_ms is not None and t > now_ms + MAX_CLOCK_DRIFT_MS:
        raise InvalidBlock("block time is more than 5 s ahead of this clock")


def check_block_lag(block: Block, now_ms: int, max_lag_ms: int = MAX_BLOCK_LAG_MS) -> None:
    """DESIGN §6: a fresh proposal's time is at most ``max_lag_ms`` behind this clock, so a
    proposer cannot hold the chain's time (and settlement) back. Together with the parent
    bound the time must lie in [max(parent + 1, now − lag), now + 5 s]: after a network-wide
    halt the first block, stamped with its proposer's now, is still acceptable. Only live
    prevotes on a fresh proposal apply it (consensus/engine.py line 22): a value with a
    polka, a decision and a synced block are judged without it, as their time was fixed
    when they were fresh."""
    t = block.header.time_ms
    if t < now_ms - max_lag_ms:
        raise InvalidBlock(f"block time is {(now_ms - t) // 1000} s behind this clock, "
                           f"more than {max_lag_ms // 1000} s")


def verify_block_evidence(block: Block, chain_id: bytes, validator_set: Callable[[Height], Sequence[bytes]],
                          committed: Container[tuple] = frozenset()) -> None:
    """Evidence in a block: valid, not too old, not from the future, each slot at most once.

    ``validator_set(height)`` gives the set of the evidence's own height;
    ``committed`` holds the evidence keys already committed on this chain.
    """
    seen: set = set()
    height = block.header.height
    for ev in block.evidence:
        key = compute_evidence_key(ev)
        if key in seen or key in committed:
            raise InvalidBlock("evidence already included")
        if ev.height > height or ev.height + EVIDENCE_MAX_AGE < height:
            raise InvalidBlock("evidence height out of range")
        try:
            verify_evidence(validator_set(ev.height), chain_id, ev)
        except InvalidVote as exc:
            raise InvalidBlock(f"bad evidence: {exc.reason}") from None
        seen.add(key)


def get_equivocators(block: Block) -> tuple[bytes, ...]:
    """The validators a block's evidence convicts, sorted, each once."""
    return tuple(sorted({ev.validator for ev in block.evidence}))
