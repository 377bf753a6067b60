"""Wire messages of the network layer: tx batches, block sync and status (DESIGN §7).

They are ordinary registered wire messages, so decoding is as strict as for txs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from wire import KEY, SIG, U64, Bytes, List, Message, Nested, Str, field_of, register
from wire.limits import MAX_BLOCK_BYTES, MAX_TX_BYTES

FORK_HASH_BYTES = 4

MAX_BATCH_TXS = 4096
MAX_SYNC_COUNT = 256                       # DESIGN §7: GetBlocks count <= 256
MAX_COMMIT_BYTES = 1024 * 1024             # >= quorum precommits of any sane validator set
MAX_SYNC_RESPONSE_BYTES = 32 * 1024 * 1024  # one Blocks frame; at least one block always fits
MAX_REQUEST_BYTES = 256
MAX_STATE_REPLY_BYTES = 8 * 1024 * 1024    # a snapshot chunk (<= 4 MiB), a meta list, the set changes
# GetState kinds (docs/statesync.md): what a joiner asks a node that serves state sync;
# STATE_HEADERS (``index`` of them from ``height``) is how a household node follows the chain.
STATE_SNAPSHOTS, STATE_CHUNK, STATE_SET_CHANGES, STATE_HEADER, STATE_HEADERS = range(5)
MAX_LIGHT_REQUEST_BYTES = 1024 * 1024   # a household node's GetEntries (tokens/lightstate.py)


@register("net/txbatch")
@dataclass(frozen=True)
class TxBatch(Message):
    """Many signed txs in one gossip message: gossip pays per message (DESIGN §7)."""

    txs: tuple[bytes, ...] = field_of(List(Bytes(max=MAX_TX_BYTES), MAX_BATCH_TXS))


@register("net/getblocks")
@dataclass(frozen=True)
class GetBlocks(Message):
    from_height: int = field_of(U64)
    count: int = field_of(U64)


@register("net/blockentry")
@dataclass(frozen=True)
class BlockEntry(Message):
    block: bytes = field_of(Bytes(max=MAX_BLOCK_BYTES))
    commit: bytes = field_of(Bytes(max=MAX_COMMIT_BYTES))


@register("net/blocks")
@dataclass(frozen=True)
class Blocks(Message):
    """Consecutive blocks from ``from_height``; fewer than asked when the server has
    no more or the response reached its byte budget."""

    from_height: int = field_of(U64)
    entries: tuple[BlockEntry, ...] = field_of(List(Nested(BlockEntry), MAX_SYNC_COUNT))


@register("net/syncfailure")
@dataclass(frozen=True)
class SyncFailure(Message):
    """The server's answer to a request it refuses (bad count, busy, blocks pruned here)."""

    reason: str = field_of(Str(200))


@register("net/status")
@dataclass(frozen=True)
class Status(Message):
    """A node's committed height and fork id (EIP-2124: a hash of the chain id and the
    upgrade heights passed, and the next scheduled height or 0); sent by both sides of
    the status protocol, which refuses a peer whose fork id is incompatible."""

    height: int = field_of(U64)
    fork_hash: bytes = field_of(Bytes(max=FORK_HASH_BYTES))
    fork_next: int = field_of(U64)



@register("net/getstate")
@dataclass(frozen=True)
class GetState(Message):
    """A state-sync request: the snapshot list, chunk ``index`` of the snapshot of
    ``height``, the validator-set changes, or the header and commit of ``height``."""

    kind: int = field_of(U64)
    height: int = field_of(U64)
    index: int = field_of(U64)


@register("net/statereply")
@dataclass(frozen=True)
class StateReply(Message):
    """The answer's bytes, a message of the node's own (the network only moves them)."""

    data: bytes = field_of(Bytes(max=MAX_STATE_REPLY_BYTES))


MAX_HEARTBEAT_BYTES = 256


@register("net/heartbeat")
@dataclass(frozen=True)
class Heartbeat(Message):
    """A validator's signed "I am alive at this height and time" (DESIGN §12: liveness by
    gossip, not by blocks). Gossiped on ``/voisinage/<chain_id>/heartbeat/1``."""

    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = (("validator", "sig"),)
    validator: bytes = field_of(KEY)
    height: int = field_of(U64)
    time_ms: int = field_of(U64)
    sig: bytes = field_of(SIG)



@register("net/lightrequest")
@dataclass(frozen=True)
class LightRequest(Message):
    """A household node's request for proven state entries (docs/privacy.md "Household
    nodes"): a message of the node's own, moved as bytes, answered by a StateReply."""

    data: bytes = field_of(Bytes(max=MAX_LIGHT_REQUEST_BYTES))
