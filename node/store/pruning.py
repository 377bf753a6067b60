"""What a node keeps on disk (docs/state.md "Pruning"): ``node run --pruning``.

Nothing here touches the consensus state: the ledger decides which history leaves the
state (``history_retention_s``), and every node computes the same state root. What a
node keeps besides is its own choice:

- ``archive``: every block, every state tree version (proofs at any height, a full
  ``node verify`` replay, block sync for any peer);
- ``default``: the state tree of the last ``keep_states`` heights only (proofs below
  answer "pruned"; 100 heights on a validator, 10 on a household node unless set); a
  household node the headers and commits of every height but the block bodies of its
  window only: the last ``keep_block_s`` seconds of chain time (7 days), or the last
  ``keep_blocks`` heights when that is set. A validator keeps the bodies of the last
  ``archive_keep_s`` (the retention of sub-daily data, 2 years by default) and the
  headers and commits of every height: older bodies carry readings past their
  retention (docs/privacy.md "Retention and erasure"). A node joining later than that
  joins by state sync.

Windows are in chain time because the chain grows with work, not with time: a block
count means days on a busy chain and months on a quiet one.

In both modes the interval history that leaves the state is archived under ``a/``; a
household node archives only its own household's entries (and every interval's
aggregates), a validator everyone's. ``archive_keep_s`` > 0 drops archived intervals
older than that.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from consensus.block import Block
from node.store.store import Store
from tokens import layout as TL
from tokens.kv import decode_value
from tokens.settlement import HistoryLeft
from wire import MAX_BLOCK_BYTES, decode

log = logging.getLogger("voisinage.node")

PRUNING_MODES = ("archive", "default")
DEFAULT_KEEP_STATES = 100           # state tree versions on a validator (about two days of intervals)
DEFAULT_HOUSEHOLD_KEEP_STATES = 10  # ... on a household node (its own proofs are served by validators)
DEFAULT_KEEP_DAYS = 7               # a household's block window, in chain time
# Archived half-hourly history is personal data (a load curve): the CNIL's practice for
# sub-daily meter data is 2 years at most, so by default `node run` drops it after that.
DEFAULT_ARCHIVE_KEEP_DAYS = 730
PRUNE_EVERY = 10                    # heights between two pruning passes


class PruningError(ValueError):
    """A pruning setting out of range (the CLI prints it as one line)."""


@dataclass(frozen=True)
class Pruning:
    mode: str = "default"
    keep_states: int | None = None   # None: DEFAULT_KEEP_STATES or DEFAULT_HOUSEHOLD_KEEP_STATES by role
    keep_blocks: int = 0             # > 0: a household's window in heights instead of keep_block_s
    keep_block_s: int = DEFAULT_KEEP_DAYS * 86_400
    archive_keep_s: int = 0          # 0: keep the archived history forever


def parse_pruning(mode: str, keep_states: int | None, keep_blocks: int, keep_days: int,
                  archive_keep_days: int) -> Pruning:
    if mode not in PRUNING_MODES:
        raise PruningError(f"--pruning must be one of {', '.join(PRUNING_MODES)}, not {mode!r}")
    if keep_states is not None and keep_states < 2:
        raise PruningError(f"--keep-states must be at least 2 (proofs read the root of the height before "
                           f"the last), not {keep_states}")
    if keep_blocks < 0:
        raise PruningError(f"--keep-blocks must be 0 (use --keep-days) or at least 1 (the last block), "
                           f"not {keep_blocks}")
    if keep_days < 1:
        raise PruningError(f"--keep-days must be at least 1, not {keep_days}")
    if archive_keep_days < 0:
        raise PruningError(f"--archive-keep-days must be 0 (forever) or more, not {archive_keep_days}")
    return Pruning(mode, keep_states, keep_blocks, keep_days * 86_400, archive_keep_days * 86_400)


def get_header_bytes(block: bytes) -> bytes:
    """The header of a stored block, kept when its body is pruned."""
    return decode(block, Block, MAX_BLOCK_BYTES).header.encode()


def get_block_time_s(store: Store, height: int) -> int:
    """The chain time of a block whose body ``store`` keeps."""
    body = store.block(height)
    if body is None:
        raise ValueError(f"no block body at height {height}")
    return decode(body, Block, MAX_BLOCK_BYTES).header.time_ms // 1000


class Pruner:
    """Applies a ``Pruning`` to one store after each commit. ``is_validator`` follows the
    node's role (a household promoted to validator starts keeping every block)."""

    def __init__(self, pruning: Pruning, own_key: bytes, is_validator: bool) -> None:
        self.pruning = pruning
        self.own_key = own_key
        self.is_validator = is_validator
        # (height, chain time) of the blocks whose bodies are kept, oldest first: where the
        # time window starts. Read back from the store's blocks at the first commit after a
        # start (``seed_times``): a window refilled from the restart only kept every block
        # for a week after each one, so a box restarted weekly never pruned a body.
        self._times: deque[tuple[int, int]] = deque()
        self._seeded = False
        self._retained_from = 0     # a validator's: every body below was past retention

    @property
    def keep_states(self) -> int:
        if self.pruning.keep_states is not None:
            return self.pruning.keep_states
        return DEFAULT_KEEP_STATES if self.is_validator else DEFAULT_HOUSEHOLD_KEEP_STATES

    def get_blocks_from(self, height: int, time_s: int) -> int:
        """The lowest height whose block body a household node keeps."""
        if self.pruning.keep_blocks:
            return height - self.pruning.keep_blocks + 1
        self._times.append((height, time_s))
        since = time_s - self.pruning.keep_block_s
        while len(self._times) > 1 and self._times[1][1] <= since:
            self._times.popleft()
        first_height, first_time = self._times[0]
        return first_height + 1 if first_time <= since else 0

    def get_retained_from(self, store: Store, time_s: int) -> int:
        """A validator's lowest height whose block body is kept: the first one less than
        ``archive_keep_s`` older than ``time_s`` (0: every kept body is). Found by halving
        over the kept bodies' header times, from where the last pass stopped."""
        cutoff = time_s - self.pruning.archive_keep_s
        low = max(store.blocks_from(), store.state_from() + 1, self._retained_from, 1)
        high = store.height() - 1           # the last block always stays
        if low > high or get_block_time_s(store, low) > cutoff:
            return 0
        while low < high:                   # time(low) <= cutoff: find the last such height
            mid = (low + high + 1) // 2
            if get_block_time_s(store, mid) <= cutoff:
                low = mid
            else:
                high = mid - 1
        self._retained_from = low + 1
        return low + 1

    @property
    def indexes_tree(self) -> bool:
        return self.pruning.mode != "archive"

    def get_archive(self, events: list) -> list[tuple[bytes, bytes]]:
        """The entries to archive from a block's ``HistoryLeft`` events: all of them on a
        validator. A household node keeps every interval's aggregate, its own entry, and
        where it exported, the entries of the households allocated some of it (what
        "who used my energy" reads)."""
        out: list[tuple[bytes, bytes]] = []
        for event in events:
            if not isinstance(event, HistoryLeft):
                continue
            if self.is_validator:
                out.extend(event.records)
                continue
            by_start: dict[bytes, list[tuple[bytes, bytes]]] = {}
            for key, value in event.records:
                if key.startswith(TL.INTERVAL_ENTRY):
                    by_start.setdefault(key[len(TL.INTERVAL_ENTRY):-32], []).append((key, value))
                else:
                    out.append((key, value))
            for entries in by_start.values():
                out.extend(self.get_own_entries(entries))
        return out

    def get_own_entries(self, entries: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        mine = [(key, value) for key, value in entries if key.endswith(self.own_key)]
        if not mine or not decode_value(mine[0][1])[TL.IE_E]:
            return mine
        return [(key, value) for key, value in entries
                if key.endswith(self.own_key) or decode_value(value)[TL.IE_ALLOCATED]]

    def seed_times(self, store: Store, height: int) -> None:
        """The chain times of the bodies ``store`` kept below ``height``: where the window
        stood when the node stopped. One header decode per kept body, once per start."""
        self._seeded = True
        if self.pruning.keep_blocks or self._times or store.is_light():
            return
        for h in range(max(store.blocks_from(), store.state_from() + 1, 1), height):
            if store.block(h) is not None:
                self._times.append((h, get_block_time_s(store, h)))

    def process_commit(self, store: Store, height: int, time_s: int) -> None:
        """Every PRUNE_EVERY heights: drop what the settings no longer keep."""
        pruning = self.pruning
        if not (self._seeded or self.is_validator or pruning.mode == "archive"):
            self.seed_times(store, height)
        keep_from = 0 if self.is_validator or pruning.mode == "archive" else self.get_blocks_from(height, time_s)
        if height % PRUNE_EVERY:
            return
        if pruning.archive_keep_s:
            store.prune_archive(time_s - pruning.archive_keep_s)
        if pruning.mode == "archive":
            return
        nodes = store.prune_tree(self.keep_states)
        if self.is_validator and pruning.archive_keep_s:
            keep_from = self.get_retained_from(store, time_s)
        blocks = 0
        if keep_from:
            blocks = store.prune_blocks(keep_from, get_header_bytes)
        if nodes or blocks:
            log.debug("pruned %d state tree nodes and %d block bodies at height %d", nodes, blocks, height)
