"""The consensus application: the ledger over the LevelDB store (DESIGN §6 "Interface").

The engine asks it for validator sets, for a block to propose and whether a block
is valid; the node calls ``commit`` for each decided or synced block. A validated
block's ledger result is kept by block id, so committing it does not apply it again.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from consensus.block import (
    MAX_BLOCK_LAG_MS, ZERO_ID, Block, Commit, Header, compute_block_id, compute_tx_root, compute_validators_hash, check_block_lag,
    check_block_time,
)
from consensus.errors import InvalidBlock as InvalidConsensusBlock
from consensus.lightsync import HEADER_RULES
from consensus.vote import DuplicateVote
from node.service.mempool import Mempool
from node.service.sealing import (
    delete_used_receive_keys, forget_before_cut, forget_erased, get_erased, opening_keys, refresh_keyring,
)
from node.store.pruning import Pruner
from node.store import Store
from tokens import layout as L
from tokens import (
    BlockContext, BlockResult, InvalidLedgerBlock, apply_block, get_time_ms, get_validator_set, select_and_apply,
)
from tokens.genesis import Genesis
from tokens.sealing import Keyring
from tokens.settlement import HistoryLeft
from tokens.txs import Tx
from tokens.upgrades import get_protocol_version
from wire import Keypair, compute_id
from wire.limits import MAX_GOSSIP_BYTES

log = logging.getLogger(__name__)

# A proposal travels as one gossip message (<= 1 MiB): leave room for the envelope,
# the last commit and evidence.
PROPOSAL_TX_BYTES = MAX_GOSSIP_BYTES - 128 * 1024
RESULT_CACHE = 16
# What this node puts in one proposal, at most (genesis block_max_txs still caps it).
# Every validator must receive and re-execute a proposal within the propose timeout
# (1 s in round 0): smaller blocks, more often, commit sooner (docs/performance.md,
# "Constants and the runs behind them").
PROPOSAL_MAX_TXS = 2000


@dataclass(frozen=True)
class Committed:
    block: Block
    block_id: bytes
    result: BlockResult
    round: int          # the round its commit was made in (0: decided at once)


class LedgerApp:
    def __init__(self, genesis: Genesis, store: Store, mempool: Mempool, key: Keypair | None,
                 now_ms: Callable[[], int], *, trust_quorum: bool = False, pruner: Pruner | None = None,
                 keys: Keyring | None = None, receive_dir: Path | None = None) -> None:
        """``trust_quorum``: take the tx signatures of a block as checked by the validators
        (for a household node only: see Node). ``pruner``: what the store keeps
        (node/store/pruning.py); None keeps everything and archives every entry.
        ``keys``: the commune data keys on a chain that seals payloads (node/service/sealing.py);
        ``receive_dir``: where their receive keys' files are, deleted at a cut."""
        self.genesis, self.store, self.mempool, self.key = genesis, store, mempool, key
        self.keys = keys
        self.receive_dir = receive_dir
        self.pruner = pruner
        self.now_ms = now_ms
        self.trust_quorum = trust_quorum
        self._results: OrderedDict[bytes, BlockResult] = OrderedDict()
        # The last height that moved the commune key's epoch or a household's data key
        # (docs/cadence.md): a household's node in light mode reads it only through the
        # next header, so the next height is due at once (Node.get_wait_s).
        self.key_news_height: int | None = None

    # ---- consensus.events.Application ----

    def validator_set(self, height: int) -> list[bytes]:
        return get_validator_set(self.store.state, height)

    def propose(self, height: int, round: int, last_commit: Commit | None,
                evidence: tuple[DuplicateVote, ...]) -> Block:
        """Mempool txs valid together, within the block and gossip size limits."""
        parent_time = get_time_ms(self.store.state)
        time_ms = max(self.now_ms(), parent_time + 1)
        version = get_protocol_version(self.store.state, height)
        ctx = BlockContext(height, time_ms, self.key.public, version)
        max_txs = min(self.genesis.params["block_max_txs"], PROPOSAL_MAX_TXS)
        candidates, budget = [], PROPOSAL_TX_BYTES
        for entry in self.mempool.reap(max_txs * 2):
            budget -= len(entry.data) + 3
            if budget < 0:
                break
            candidates.append(entry.data)
        with opening_keys():
            txs, rejected, result = select_and_apply(self.store.state, self.genesis, ctx, candidates, max_txs,
                                                     verified=self._verified(candidates), headers=HEADER_RULES,
                                                     keys=self.keys)
        if rejected:
            self.mempool.remove(compute_ids(data for data, _ in rejected))
            log.info("dropped %d mempool txs no longer valid (%s)", len(rejected), rejected[0][1].reason)
        header = Header(chain_id=self.genesis.chain_id, height=height, time_ms=time_ms,
                        parent=self.store.last_block_id() or ZERO_ID, tx_root=compute_tx_root(txs),
                        state_hash=self.store.state_hash(), proposer=self.key.public,
                        next_validators=compute_validators_hash(self.validator_set(height + 1)), version=version)
        block = Block(header=header, txs=tuple(txs), last_commit=last_commit, evidence=evidence)
        if not evidence:
            # Our own block was just applied while selecting its txs: the engine checks
            # it before sending it, and that must not apply it a second time.
            self._remember(compute_block_id(block), result)
        return block

    def validate(self, block: Block) -> bool:
        try:
            self.compute_result(block, check_time=True)
        except (InvalidLedgerBlock, InvalidConsensusBlock) as exc:
            log.warning("invalid block %d from %s: %s", block.header.height,
                        block.header.proposer.hex()[:8], exc)
            return False
        return True

    def is_timely(self, block: Block) -> bool:
        # DESIGN §6: the lag is wall time; a development chain clock runs time_scale
        # times faster, so its bound is as many times longer in chain milliseconds.
        try:
            check_block_lag(block, self.now_ms(), MAX_BLOCK_LAG_MS * self.genesis.params["time_scale"])
        except InvalidConsensusBlock as exc:
            log.warning("prevote nil on block %d from %s: %s", block.header.height,
                        block.header.proposer.hex()[:8], exc)
            return False
        return True

    # ---- for the node ----

    def compute_result(self, block: Block, *, check_time: bool,
                       equivocators: tuple[bytes, ...] = ()) -> BlockResult:
        """Apply ``block`` to an overlay of the committed state (cached by block id)."""
        block_id = compute_block_id(block)
        cached = self._results.get(block_id)
        if cached is not None:
            return cached
        header = block.header
        if header.state_hash != self.store.state_hash():
            raise InvalidConsensusBlock("header state hash is not the state after the parent")
        # The set of height+1 is fixed by the state after the parent (changes start at h+2).
        if header.next_validators != compute_validators_hash(self.validator_set(header.height + 1)):
            raise InvalidConsensusBlock("header next validators hash is not the set of the next height")
        check_block_time(block, get_time_ms(self.store.state) if header.height > 1 else None,
                          self.now_ms() if check_time else None)
        ctx = BlockContext(header.height, header.time_ms, header.proposer, header.version)
        started = time.perf_counter()
        verified = set(compute_ids(block.txs)) if self.trust_quorum else self._verified(block.txs)
        with opening_keys():
            result = apply_block(self.store.state, self.genesis, ctx, block.txs, verified=verified,
                                 equivocators=equivocators, headers=HEADER_RULES, keys=self.keys)
        log.debug("applied block %d: %d txs (%d signatures checked before or trusted) in %.3f s", header.height,
                  len(block.txs), len(verified), time.perf_counter() - started)
        self._remember(block_id, result)
        return result

    def _remember(self, block_id: bytes, result: BlockResult) -> None:
        self._results[block_id] = result
        while len(self._results) > RESULT_CACHE:
            self._results.popitem(last=False)

    def commit(self, block: Block, commit: Commit, equivocators: tuple[bytes, ...]) -> Committed:
        """Apply and store ``block`` in one synced batch; drop its txs from the mempool."""
        block_id = compute_block_id(block)
        result = self._results.pop(block_id, None)
        if result is None or equivocators:
            # Evidence changes the state: recompute with the equivocators recorded.
            result = self.compute_result(block, check_time=False, equivocators=equivocators)
            self._results.pop(block_id, None)
        pruner = self.pruner
        archive = pruner.get_archive(result.events) if pruner else get_all_archived(result.events)
        erased = get_erased(result.events)
        self.store.commit_block(block.header.height, block_id, block.encode(), commit.encode(),
                                result.writes, result.state_hash, archive=archive,
                                stale_nodes=result.stale_nodes if pruner and pruner.indexes_tree else None,
                                erased=erased)
        self._results.clear()
        if erased:
            forget_erased(self.keys, erased)
            log.info("height %d erased the private data of %d deregistered household(s) (docs/privacy.md "
                     "\"Erasure\"): state, archived intervals and opened keys", block.header.height, len(erased))
        if self.key is not None:
            refresh_keyring(self.keys, self.store.state, self.key, result.writes)
        cut = forget_before_cut(self.keys, result.events)
        if cut is not None:
            log.info("height %d cut the commune data key at epoch %d (docs/privacy.md \"Erasure\"): deleted the "
                     "secrets of epochs %s from this node's key store; it holds epochs %s", block.header.height,
                     cut[0], cut[1] or "none", sorted(self.keys.secrets))
            deleted = delete_used_receive_keys(self.keys, cut[0], self.receive_dir)
            log.info("height %d: deleted %d receive key file(s) that opened the epochs before the cut%s",
                     block.header.height, len(deleted), "".join(f" {p.name}" for p in deleted))
        if any(key == L.META_DATA_EPOCH or key.startswith(L.HOUSEHOLD_DATA_KEY) for key in result.writes):
            self.key_news_height = block.header.height
        if pruner is not None:
            pruner.process_commit(self.store, block.header.height, block.header.time_ms // 1000)
        return Committed(block, block_id, result, commit.round)

    def _verified(self, txs) -> dict[bytes, Tx]:
        """The txs the mempool already checked, by id, decoded: apply_block neither
        decodes nor verifies them again."""
        known = {}
        for tx_id in compute_ids(txs):
            entry = self.mempool.get(tx_id)
            if entry is not None:
                known[tx_id] = entry.tx
        return known


def get_all_archived(events: list) -> list[tuple[bytes, bytes]]:
    """Every entry a block's ``HistoryLeft`` events took out of the state."""
    return [record for event in events if isinstance(event, HistoryLeft) for record in event.records]


def compute_ids(txs) -> list[bytes]:
    return [compute_id(t) for t in txs]
