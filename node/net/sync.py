"""Block sync and status request/response protocols over libp2p streams (DESIGN §7).

``/voisinage/<chain>/sync/1``: one framed GetBlocks(from, count <= 256) in, one framed
Blocks (or SyncFailure) out, then the stream closes. ``/voisinage/<chain>/status/1``:
each side sends its committed height and fork id in a framed Status, the dialler first;
a peer whose fork id is incompatible is refused. Frames are
length-prefixed; every read has a size limit and every exchange a deadline. Blocks
are returned as raw bytes: consensus/sync.py verifies them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID

from wire import Message
from wire.limits import MAX_BLOCK_BYTES

from node.net.errors import BlocksPruned, LocalProtocolError, PeerUnavailable, RemoteProtocolError
from node.net.framing import read_message, write_message
from node.net.messages import (
    MAX_COMMIT_BYTES, MAX_REQUEST_BYTES, MAX_SYNC_COUNT, MAX_SYNC_RESPONSE_BYTES, BlockEntry,
    Blocks, GetBlocks, Status, SyncFailure,
)

log = logging.getLogger(__name__)

GetBlock = Callable[[int], "tuple[bytes, bytes] | None"]
GetHeight = Callable[[], int]
# This node's fork id (hash, next), and the judge of a peer's: None if compatible, else why not.
GetFork = Callable[[], "tuple[bytes, int]"]
CheckFork = Callable[[bytes, int], "str | None"]

REQUEST_DEADLINE_S = 20.0     # whole client exchange, dial included
SERVE_READ_DEADLINE_S = 5.0   # a peer that opens a stream must ask promptly
SERVE_WRITE_DEADLINE_S = 30.0
MAX_CONCURRENT_SERVES = 4
_ENTRY_OVERHEAD = 16
_STATUS_LIMIT = 64


def get_blocks_response(get_block: GetBlock, req: GetBlocks,
                        budget: int = MAX_SYNC_RESPONSE_BYTES // 2) -> Blocks | SyncFailure:
    """DESIGN §7: up to ``count`` (<= 256) consecutive blocks with their commits from
    ``from_height``; stop at the first height we lack or when the byte budget is
    spent (at least one block is always sent, and one always fits a frame). A request
    that starts below what a pruned node keeps gets SyncFailure "pruned: ..."."""
    if not 1 <= req.count <= MAX_SYNC_COUNT:
        return SyncFailure(reason=f"count must be 1..{MAX_SYNC_COUNT}")
    entries: list[BlockEntry] = []
    size = 0
    for height in range(req.from_height, req.from_height + req.count):
        try:
            found = get_block(height)
        except BlocksPruned as exc:
            if not entries:
                return SyncFailure(reason=str(exc)[:200])
            break
        if found is None:
            break
        block, commit = found
        if len(block) > MAX_BLOCK_BYTES or len(commit) > MAX_COMMIT_BYTES:
            raise ValueError(f"stored block {height} exceeds the wire limits")
        cost = len(block) + len(commit) + _ENTRY_OVERHEAD
        if entries and size + cost > budget:
            break
        entries.append(BlockEntry(block=block, commit=commit))
        size += cost
    return Blocks(from_height=req.from_height, entries=tuple(entries))


def verify_blocks_response(req: GetBlocks, resp: Blocks | SyncFailure) -> list[tuple[bytes, bytes]]:
    """The answer must start where we asked and hold at most what we asked for."""
    if isinstance(resp, SyncFailure):
        raise PeerUnavailable(f"peer refused sync: {resp.reason}")
    if resp.from_height != req.from_height:
        raise RemoteProtocolError(f"asked from {req.from_height}, got from {resp.from_height}")
    if len(resp.entries) > req.count:
        raise RemoteProtocolError(f"asked for {req.count} blocks, got {len(resp.entries)}")
    return [(e.block, e.commit) for e in resp.entries]


def parse_peer_id(peer_id: str) -> ID:
    try:
        return ID.from_base58(peer_id)
    except Exception:  # base58 and multihash raise several types; all mean a bad id
        raise LocalProtocolError(f"not a peer id: {peer_id!r}") from None


async def _close_quietly(stream: INetStream, reset: bool) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(1):
        try:
            await (stream.reset() if reset else stream.close())
        except BaseLibp2pError:
            pass  # the stream is going away either way


async def _exchange(host: IHost, peer_id: str, protocol: str, request: Message,
                    expect: tuple[type, ...], limit: int):
    """Open a stream, send one framed request, read one framed answer."""
    pid = parse_peer_id(peer_id)
    with trio.move_on_after(REQUEST_DEADLINE_S):
        try:
            stream = await host.new_stream(pid, [TProtocol(protocol)])
        except BaseLibp2pError as exc:
            raise PeerUnavailable(f"cannot open {protocol} to {peer_id}: {exc}") from None
        ok = False
        try:
            await write_message(stream, request)
            answer = await read_message(stream, expect, limit)
            ok = True
        except BaseLibp2pError as exc:
            raise PeerUnavailable(f"{protocol} with {peer_id} failed: {exc}") from None
        finally:
            await _close_quietly(stream, reset=not ok)
        return answer
    raise PeerUnavailable(f"{protocol} with {peer_id}: no answer within {REQUEST_DEADLINE_S:.0f} s")


async def request_blocks(host: IHost, protocol: str, peer_id: str, from_height: int,
                         count: int) -> list[tuple[bytes, bytes]]:
    """Ask ``peer_id`` for blocks; return raw (block bytes, commit bytes) pairs."""
    if not 1 <= count <= MAX_SYNC_COUNT:
        raise LocalProtocolError(f"count must be 1..{MAX_SYNC_COUNT}, not {count}")
    if not 0 <= from_height < 2**64:
        raise LocalProtocolError(f"from_height out of range: {from_height}")
    req = GetBlocks(from_height=from_height, count=count)
    resp = await _exchange(host, peer_id, protocol, req, (Blocks, SyncFailure), MAX_SYNC_RESPONSE_BYTES)
    return verify_blocks_response(req, resp)


async def request_status(host: IHost, protocol: str, peer_id: str, mine: Status) -> Status:
    """Tell ``peer_id`` our height and fork id; return its own."""
    return await _exchange(host, peer_id, protocol, mine, (Status,), _STATUS_LIMIT)


class SyncServer:
    """Serves GetBlocks and Status streams from callbacks supplied by the node."""

    def __init__(self, get_block: GetBlock, get_status: Callable[[], Status],
                 on_peer_status: Callable[[str, Status], None]) -> None:
        self._get_block, self._get_status = get_block, get_status
        self._on_peer_status = on_peer_status
        self._slots = trio.Semaphore(MAX_CONCURRENT_SERVES)
        self.served = 0

    async def handle_sync(self, stream: INetStream) -> None:
        ok = False
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            ok = await self._answer(stream, SyncFailure(reason="busy"))
            await _close_quietly(stream, reset=not ok)
            return
        try:
            req = None
            with trio.move_on_after(SERVE_READ_DEADLINE_S):
                req = await read_message(stream, (GetBlocks,), MAX_REQUEST_BYTES)
            if req is not None:   # the answer gets its own, longer deadline
                ok = await self._answer(stream, get_blocks_response(self._get_block, req))
                self.served += ok
        except (RemoteProtocolError, BaseLibp2pError) as exc:
            log.debug("sync request from %s dropped: %s", stream.muxed_conn.peer_id, exc)
        finally:
            self._slots.release()
            await _close_quietly(stream, reset=not ok)

    async def handle_status(self, stream: INetStream) -> None:
        ok = False
        with trio.move_on_after(SERVE_READ_DEADLINE_S):
            try:
                theirs = await read_message(stream, (Status,), _STATUS_LIMIT)
                # Answer first, so that an incompatible peer learns why it is refused too.
                await write_message(stream, self._get_status())
                self._on_peer_status(stream.muxed_conn.peer_id.to_base58(), theirs)
                ok = True
            except (RemoteProtocolError, BaseLibp2pError) as exc:
                log.debug("status from %s dropped: %s", stream.muxed_conn.peer_id, exc)
        await _close_quietly(stream, reset=not ok)

    async def _answer(self, stream: INetStream, msg: Blocks | SyncFailure) -> bool:
        with trio.move_on_after(SERVE_WRITE_DEADLINE_S):
            try:
                await write_message(stream, msg)
                return True
            except BaseLibp2pError as exc:
                log.debug("sync answer to %s failed: %s", stream.muxed_conn.peer_id, exc)
        return False
