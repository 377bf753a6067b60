"""Block sync and status over libp2p streams: limits, deadlines, hostile answers (DESIGN §7)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError

from node.net import (
    BlockEntry, Blocks, GetBlocks, LocalProtocolError, PeerUnavailable, RemoteProtocolError,
    SyncFailure, open_network,
)
from node.net import sync as sync_module
from node.net.framing import encode_frame, read_frame, write_message
from node.net.messages import MAX_SYNC_RESPONSE_BYTES
from node.net.network import Network
from node.net.topics import status_protocol, sync_protocol
from tests.support.wait import wait_until
from wire import decode

from .conftest import CHAIN_ID, LOOPBACK

pytestmark = pytest.mark.integration

CHAIN_LENGTH = 300


def stored_block(height: int) -> tuple[bytes, bytes] | None:
    if not 1 <= height <= CHAIN_LENGTH:
        return None
    return b"block %d " % height + b"\x00" * 100, b"commit %d" % height


@asynccontextmanager
async def server_and_client(home, answer: tuple[str, Callable] | None = None,
                            **server: Any) -> AsyncIterator[tuple[Network, Network]]:
    """A network ``a`` opened with the ``server`` keywords and a network ``b`` that dials
    it. With ``answer`` = (protocol, handler), ``a`` answers that protocol by hand."""
    async with open_network(home("a"), CHAIN_ID, LOOPBACK, [], {}, **server) as a:
        if answer is not None:
            a.host.set_stream_handler(TProtocol(answer[0]), answer[1])
        async with open_network(home("b"), CHAIN_ID, LOOPBACK, a.listen_addrs(), {}) as b:
            yield a, b


async def test_sync_returns_the_requested_blocks_in_order(home):
    async with server_and_client(home, get_block=stored_block, get_height=lambda: CHAIN_LENGTH) as (a, b):
        await wait_until(lambda: a.peer_id in b.peers(), what="b connected to a")
        got = await b.request_blocks(a.peer_id, 1, 256)
        assert got == [stored_block(h) for h in range(1, 257)]
        tail = await b.request_blocks(a.peer_id, 290, 50)      # only 11 exist
        assert tail == [stored_block(h) for h in range(290, 301)]
        assert await b.request_blocks(a.peer_id, 1000, 10) == []


async def test_status_exchange_tells_each_side_the_others_height(home):
    async with open_network(home("a"), CHAIN_ID, LOOPBACK, [], {}, get_height=lambda: 42) as a:
        async with open_network(home("b"), CHAIN_ID, LOOPBACK, a.listen_addrs(), {},
                                get_height=lambda: 7) as b:
            assert await b.request_status(a.peer_id) == 42
            await wait_until(lambda: a.peer_heights().get(b.peer_id) == 7, what="a learns b's height")
            await wait_until(lambda: b.peer_heights().get(a.peer_id) == 42, what="b polls a")


async def test_invalid_fork_id_peer_is_refused_at_the_status_handshake(home):
    # EIP-2124: a peer whose fork id cannot follow our chain gets no height recorded
    # and is disconnected, on both sides of the exchange.
    ours, theirs = (b"\x0a" * 4, 0), (b"\x0b" * 4, 99)

    def judge(fork_hash: bytes, fork_next: int) -> str | None:
        return None if (fork_hash, fork_next) == ours else "another schedule"

    async with open_network(home("a"), CHAIN_ID, LOOPBACK, [], {}, get_height=lambda: 42,
                            get_fork=lambda: ours, check_fork=judge) as a:
        async with open_network(home("b"), CHAIN_ID, LOOPBACK, a.listen_addrs(), {}, get_height=lambda: 7,
                                get_fork=lambda: theirs, check_fork=lambda h, n: "another schedule") as b:
            await wait_until(lambda: b.peer_id in a.refused, what="a refuses b")
            await wait_until(lambda: b.peer_id not in a.peers(), what="a disconnects b")
            # Dialling again is answered, then refused again: or the connection is already gone.
            with pytest.raises((RemoteProtocolError, PeerUnavailable)):
                await b.request_status(a.peer_id)
            assert b.peer_id not in a.peer_heights() and a.peer_id not in b.peer_heights()


async def test_invalid_count_is_refused_locally_and_by_the_server(home):
    async with server_and_client(home, get_block=stored_block) as (a, b):
        for count in (0, 257):
            with pytest.raises(LocalProtocolError):
                await b.request_blocks(a.peer_id, 1, count)
        with pytest.raises(LocalProtocolError):
            await b.request_blocks("not-a-peer-id", 1, 1)
        # A peer that skips our client check gets a SyncFailure, not 1000 blocks.
        stream = await b.host.new_stream(a.host.get_id(), [TProtocol(sync_protocol(CHAIN_ID))])
        await write_message(stream, GetBlocks(from_height=1, count=1000))
        answer = decode(await read_frame(stream, 1024), expect=SyncFailure)
        assert "count" in answer.reason
        await stream.close()


def test_server_response_respects_its_byte_budget():
    def big(height: int):
        return b"\x01" * 1000, b"\x02" * 24

    resp = sync_module.get_blocks_response(big, GetBlocks(from_height=5, count=256), budget=10_000)
    assert isinstance(resp, Blocks) and resp.from_height == 5
    assert len(resp.entries) == 9                          # 9 * (1024 + 16) <= 10 000
    one = sync_module.get_blocks_response(big, GetBlocks(from_height=5, count=3), budget=10)
    assert len(one.entries) == 1                           # at least one block, always
    assert len(resp.encode()) < MAX_SYNC_RESPONSE_BYTES


def test_invalid_answers_are_the_remote_peers_fault():
    req = GetBlocks(from_height=10, count=2)
    entry = BlockEntry(block=b"b", commit=b"c")
    with pytest.raises(RemoteProtocolError):
        sync_module.verify_blocks_response(req, Blocks(from_height=11, entries=(entry,)))
    with pytest.raises(RemoteProtocolError):
        sync_module.verify_blocks_response(req, Blocks(from_height=10, entries=(entry,) * 3))
    with pytest.raises(PeerUnavailable):
        sync_module.verify_blocks_response(req, SyncFailure(reason="busy"))
    assert sync_module.verify_blocks_response(req, Blocks(from_height=10, entries=(entry,))) == [(b"b", b"c")]


async def test_invalid_oversize_answer_is_refused_before_it_is_read(home):
    async def huge(stream):
        await stream.read(64)
        await stream.write((MAX_SYNC_RESPONSE_BYTES + 1).to_bytes(4, "big") + b"\x00" * 1024)
        await trio.sleep(5)

    async with server_and_client(home, (sync_protocol(CHAIN_ID), huge)) as (rogue, b):
        with pytest.raises(RemoteProtocolError, match="exceeds the limit"):
            await b.request_blocks(rogue.peer_id, 1, 10)


@pytest.mark.parametrize("reply, error", [
    pytest.param(Blocks(from_height=1, entries=(BlockEntry(block=b"b", commit=b"c"),) * 3).encode(), "asked for 2",
                 id="extra blocks"),
    pytest.param(b"\x93\xa3bad", "bad message", id="garbage"),
])
async def test_invalid_answer_with_extra_blocks_or_garbage_is_refused(home, reply, error):
    async def liar(stream):
        await stream.read(64)
        await stream.write(encode_frame(reply))
        await stream.close()

    async with server_and_client(home, (sync_protocol(CHAIN_ID), liar)) as (rogue, b):
        with pytest.raises(RemoteProtocolError, match=error):
            await b.request_blocks(rogue.peer_id, 1, 2)


async def test_invalid_silent_server_hits_the_deadline(home, monkeypatch):
    monkeypatch.setattr(sync_module, "REQUEST_DEADLINE_S", 0.5)

    async def silent(stream):
        await trio.sleep(30)

    async with server_and_client(home, (status_protocol(CHAIN_ID), silent)) as (rogue, b):
        with pytest.raises(PeerUnavailable, match="no answer"):
            await b.request_status(rogue.peer_id)


async def test_invalid_oversize_request_is_dropped_by_the_server(home):
    async with server_and_client(home, get_block=stored_block) as (a, b):
        stream = await b.host.new_stream(a.host.get_id(), [TProtocol(sync_protocol(CHAIN_ID))])
        await stream.write((10**6).to_bytes(4, "big") + b"\x00" * 64)
        with pytest.raises((RemoteProtocolError, BaseLibp2pError)):   # reset, no answer
            with trio.fail_after(5):
                await read_frame(stream, 1024)
        assert a._server.served == 0
        # The server still serves well-behaved requests afterwards.
        assert len(await b.request_blocks(a.peer_id, 1, 3)) == 3


async def test_highest_peer_and_stats_report_what_the_network_knows(home):
    async with server_and_client(home, get_block=stored_block, get_height=lambda: CHAIN_LENGTH) as (a, b):
        assert b.highest_peer() in (None, (a.peer_id, CHAIN_LENGTH))
        await wait_until(lambda: b.highest_peer() == (a.peer_id, CHAIN_LENGTH), what="a's height")
        await b.request_blocks(a.peer_id, 1, 2)
        assert a.stats()["blocks_requests_served"] == 1
        assert b.stats()["peers"] == 1 and b.stats()["peer_id"] == b.peer_id
        with pytest.raises(LocalProtocolError):
            b.ban_peer("not-a-peer-id", "test")


async def test_largest_blocks_travel_whole_within_the_response_budget(home):
    from wire.limits import MAX_BLOCK_BYTES

    def largest(height: int):
        if not 1 <= height <= 6:
            return None
        return bytes([height]) * MAX_BLOCK_BYTES, b"commit" * 100

    async with server_and_client(home, get_block=largest) as (a, b):
        first = await b.request_blocks(a.peer_id, 1, 6)
        assert 1 <= len(first) < 6                 # the byte budget cut the answer short
        assert sum(len(blk) for blk, _ in first) <= MAX_SYNC_RESPONSE_BYTES
        rest = await b.request_blocks(a.peer_id, 1 + len(first), 6)
        assert first + rest == [largest(h) for h in range(1, 1 + len(first) + len(rest))]
