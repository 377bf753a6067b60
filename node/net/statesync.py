"""The state-sync request/response protocol (docs/statesync.md), as block sync's.

``/voisinage/<chain>/statesync/1``: one framed GetState in, one framed StateReply (or
SyncFailure) out, then the stream closes. The payload is the node's own bytes (a
snapshot list, a chunk, the set changes, a signed header): the network moves them and
the node checks them (tokens/snapshot.py, consensus/lightsync.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio
from libp2p.abc import INetStream
from libp2p.exceptions import BaseLibp2pError

from node.net.errors import PeerUnavailable, RemoteProtocolError, StateUnavailable
from node.net.framing import read_message, write_message
from node.net.messages import MAX_REQUEST_BYTES, MAX_STATE_REPLY_BYTES, GetState, StateReply, SyncFailure
from node.net.sync import MAX_CONCURRENT_SERVES, SERVE_READ_DEADLINE_S, SERVE_WRITE_DEADLINE_S, _close_quietly

log = logging.getLogger(__name__)

StateResponder = Callable[[GetState], bytes]


def get_state_response(respond: StateResponder, req: GetState) -> StateReply | SyncFailure:
    try:
        data = respond(req)
    except StateUnavailable as exc:
        return SyncFailure(reason=str(exc)[:200])
    if len(data) > MAX_STATE_REPLY_BYTES:
        return SyncFailure(reason="answer exceeds the state-sync frame limit")
    return StateReply(data=data)


def verify_state_reply(resp: StateReply | SyncFailure) -> bytes:
    if isinstance(resp, SyncFailure):
        raise PeerUnavailable(f"peer refused state sync: {resp.reason}")
    return resp.data


class StateSyncServer:
    """Serves GetState streams from the node's responder, a few at a time."""

    def __init__(self, respond: StateResponder) -> None:
        self._respond = respond
        self._slots = trio.Semaphore(MAX_CONCURRENT_SERVES)
        self.served = 0

    async def handle(self, stream: INetStream) -> None:
        ok = False
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            with trio.move_on_after(SERVE_WRITE_DEADLINE_S):
                await self._write(stream, SyncFailure(reason="busy"))
            await _close_quietly(stream, reset=True)
            return
        try:
            req = None
            with trio.move_on_after(SERVE_READ_DEADLINE_S):
                req = await read_message(stream, (GetState,), MAX_REQUEST_BYTES)
            if req is not None:
                answer = await trio.to_thread.run_sync(get_state_response, self._respond, req)
                with trio.move_on_after(SERVE_WRITE_DEADLINE_S):
                    ok = await self._write(stream, answer)
                self.served += ok
        except (RemoteProtocolError, BaseLibp2pError) as exc:
            log.debug("state-sync request from %s dropped: %s", stream.muxed_conn.peer_id, exc)
        finally:
            self._slots.release()
            await _close_quietly(stream, reset=not ok)

    async def _write(self, stream: INetStream, msg: StateReply | SyncFailure) -> bool:
        try:
            await write_message(stream, msg)
            return True
        except BaseLibp2pError as exc:
            log.debug("state-sync answer to %s failed: %s", stream.muxed_conn.peer_id, exc)
            return False
