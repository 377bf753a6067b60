"""Block-sync verification (DESIGN §7), pure: trust nothing a peer sends.

``verify_chain`` takes the last trusted block and (block, commit) pairs from an
untrusted peer and yields them one by one once verified. The caller applies each
yielded block before asking for the next, so ``validator_set(height)`` can follow
validator-set changes. The first bad pair raises ``InvalidBlock`` with the reason;
everything yielded before it stays good.

The commit of block h arrives twice: as the pair's ``commit`` and as block h+1's
``last_commit``. Both are checked against the validator set of height h.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from wire.units import BlockId, Height

from consensus.block import (
    ZERO_ID, Block, Commit, check_block_shape, compute_block_id, verify_block_evidence, verify_commit,
)
from consensus.errors import InvalidBlock

MAX_SYNC_BATCH = 256        # DESIGN §7: GetBlocks count <= 256


@dataclass(frozen=True)
class Trusted:
    """The last block the caller trusts: height 0 (genesis) has ZERO_ID and no time."""

    height: Height
    block_id: bytes = ZERO_ID
    time_ms: int | None = None


def verify_chain(trusted: Trusted, chain_id: bytes, pairs: Sequence[tuple[Block, Commit]],
                 validator_set: Callable[[Height], Sequence[bytes]]) -> Iterator[tuple[Block, Commit]]:
    """Yield each (block, commit) once it is the verified next block; raise at the first bad one."""
    if len(pairs) > MAX_SYNC_BATCH:
        raise InvalidBlock(f"more than {MAX_SYNC_BATCH} blocks in one sync response")
    tip = trusted
    for block, commit in pairs:
        block_id = verify_next_block(tip, chain_id, block, commit, validator_set)
        yield block, commit
        tip = Trusted(block.header.height, block_id, block.header.time_ms)


def verify_next_block(tip: Trusted, chain_id: bytes, block: Block, commit: Commit,
                      validator_set: Callable[[Height], Sequence[bytes]]) -> BlockId:
    """One block on top of ``tip``: no gap, right parent and chain, valid commits; its id."""
    height = tip.height + 1
    if block.header.height != height:
        raise InvalidBlock(f"gap: expected height {height}, got {block.header.height}")
    check_block_shape(block, chain_id, height, tip.block_id, parent_time_ms=tip.time_ms)
    if height > 1:
        verify_commit(validator_set(tip.height), chain_id, tip.height, tip.block_id, block.last_commit)
    validators = validator_set(height)
    if block.header.proposer not in validators:
        raise InvalidBlock("block proposer is not a validator")
    verify_block_evidence(block, chain_id, validator_set)
    block_id = compute_block_id(block)
    verify_commit(validators, chain_id, height, block_id, commit)
    return block_id
