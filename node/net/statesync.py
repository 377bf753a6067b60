"""The state-sync request/response protocols (docs/statesync.md), as block sync's.

``/voisinage/<chain>/statesync/1``: one framed GetState in, one framed StateReply (or
SyncFailure) out, then the stream closes. The payload is the node's own bytes (a
snapshot list, a chunk, the set changes, signed headers): the network moves them and
the node checks them (tokens/snapshot.py, consensus/lightsync.py).

``/voisinage/<chain>/light/1`` is the same exchange for a household node's proven
entries (docs/privacy.md "Household nodes"): a LightRequest whose bytes, with the
asking peer's id (authenticated by the Noise handshake), go to the node's responder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio
from libp2p.abc import INetStream
from libp2p.exceptions import BaseLibp2pError

from node.net.errors import PeerUnavailable, RemoteProtocolError, StateUnavailable
from node.net.framing import read_message, write_message
from node.net.messages import (
    MAX_LIGHT_REQUEST_BYTES, MAX_REQUEST_BYTES, MAX_STATE_REPLY_BYTES, GetState, LightRequest, StateReply,
    SyncFailure,
)
from node.net.sync import MAX_CONCURRENT_SERVES, SERVE_READ_DEADLINE_S, SERVE_WRITE_DEADLINE_S, _close_quietly

log = logging.getLogger(__name__)

# (the request, the asking peer's id) -> the answer's bytes; StateUnavailable to refuse.
StateResponder = Callable[[GetState, str], bytes]
# (the request's bytes, the asking peer's id) -> the answer's bytes; StateUnavailable to refuse.
LightResponder = Callable[[bytes, str], bytes]


def get_state_response(respond: Callable[[], bytes]) -> StateReply | SyncFailure:
    try:
        data = respond()
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
    """Serves GetState streams (or, with ``light``, LightRequest streams) from the
    node's responder, a few at a time."""

    def __init__(self, respond: StateResponder | LightResponder, light: bool = False) -> None:
        self._respond = respond
        self._light = light
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
                req = await read_message(stream, *self._expect())
            if req is not None:
                answer = await trio.to_thread.run_sync(get_state_response, self._bind(req, stream))
                with trio.move_on_after(SERVE_WRITE_DEADLINE_S):
                    ok = await self._write(stream, answer)
                self.served += ok
        except (RemoteProtocolError, BaseLibp2pError) as exc:
            log.debug("state-sync request from %s dropped: %s", stream.muxed_conn.peer_id, exc)
        finally:
            self._slots.release()
            await _close_quietly(stream, reset=not ok)

    def _expect(self) -> tuple[tuple[type, ...], int]:
        return ((LightRequest,), MAX_LIGHT_REQUEST_BYTES + 64) if self._light else ((GetState,), MAX_REQUEST_BYTES)

    def _bind(self, req: GetState | LightRequest, stream: INetStream) -> Callable[[], bytes]:
        peer = stream.muxed_conn.peer_id.to_base58()
        if self._light:
            return lambda: self._respond(req.data, peer)
        return lambda: self._respond(req, peer)

    async def _write(self, stream: INetStream, msg: StateReply | SyncFailure) -> bool:
        try:
            await write_message(stream, msg)
            return True
        except BaseLibp2pError as exc:
            log.debug("state-sync answer to %s failed: %s", stream.muxed_conn.peer_id, exc)
            return False
