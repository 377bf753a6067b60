"""Peers: keep bootstrap peers connected with backoff, and ban peers that misbehave.

A ban lasts ``ban_base_s``, doubling with each offence up to ``ban_max_s``, so a peer
that keeps sending invalid messages stays out longer each time ("persistently bad").
py-libp2p forgets a peer's score when it disconnects; the offence count here does not.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass

import multiaddr
import trio
from libp2p.abc import IHost
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.pubsub.pubsub import Pubsub

from node.net.errors import NetSetupError

log = logging.getLogger(__name__)

DIAL_DEADLINE_S = 5.0
CONNECTED_POLL_S = 1.0


@dataclass(frozen=True)
class PeerPolicy:
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    ban_base_s: float = 60.0
    ban_max_s: float = 3600.0


def parse_peer_addr(addr: str) -> PeerInfo:
    """A full multiaddr with /p2p/<peer id>; anything else is a one-line NetSetupError."""
    try:
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
    except Exception as exc:  # multiaddr and base58 raise many types; all mean bad input
        raise NetSetupError(f"bad peer address {addr!r}: {str(exc)[:100] or type(exc).__name__}") from None
    if not info.addrs:
        raise NetSetupError(f"bad peer address {addr!r}: no transport address before /p2p/")
    return info


def compute_backoff(previous: float, policy: PeerPolicy) -> float:
    """Exponential backoff with +-20 % jitter, so restarted peers are not dialled in step."""
    return min(previous * 2, policy.backoff_max_s) * random.uniform(0.8, 1.2)


def compute_ban_duration(offences: int, policy: PeerPolicy) -> float:
    return min(policy.ban_base_s * 2 ** (offences - 1), policy.ban_max_s)


class PeerManager:
    """Dials and redials bootstrap peers; keeps the ban list."""

    def __init__(self, host: IHost, pubsub: Pubsub, policy: PeerPolicy) -> None:
        self._host, self._pubsub, self._policy = host, pubsub, policy
        self._banned_until: dict[ID, float] = {}
        self._offences: Counter[ID] = Counter()
        self.ban_reasons: Counter[str] = Counter()
        self.dial_failures = 0

    def is_connected(self, peer: ID) -> bool:
        return any(not c.is_closed for c in self._host.get_network().get_connections(peer))

    def is_banned(self, peer: ID) -> bool:
        return self._banned_until.get(peer, 0.0) > trio.current_time()

    def banned(self) -> list[str]:
        return sorted(p.to_base58() for p in self._banned_until if self.is_banned(p))

    def ban(self, peer: ID, reason: str, nursery: trio.Nursery) -> None:
        """Blacklist ``peer`` in pubsub and drop its connections for the ban's length."""
        if self.is_banned(peer) or peer == self._host.get_id():
            return
        self._offences[peer] += 1
        duration = compute_ban_duration(self._offences[peer], self._policy)
        self._banned_until[peer] = trio.current_time() + duration
        self.ban_reasons[reason] += 1
        log.warning("banned peer %s for %.0f s: %s", peer, duration, reason)
        self._pubsub.add_to_blacklist(peer)
        nursery.start_soon(self._disconnect, peer)

    def process_expired_bans(self) -> None:
        now = trio.current_time()
        for peer in [p for p, until in self._banned_until.items() if until <= now]:
            del self._banned_until[peer]
            self._pubsub.remove_from_blacklist(peer)

    async def enforce_bans(self) -> None:
        """A banned peer that dialled us again is dropped."""
        for peer in list(self._host.get_connected_peers()):
            if self.is_banned(peer):
                await self._disconnect(peer)

    async def _disconnect(self, peer: ID) -> None:
        try:
            await self._host.disconnect(peer)
        except BaseLibp2pError as exc:
            log.debug("disconnecting %s: %s", peer, exc)

    async def keep_connected(self, info: PeerInfo) -> None:
        """Forever: dial ``info`` when it is not connected, backing off on failure."""
        backoff = self._policy.backoff_initial_s
        while True:
            if self.is_banned(info.peer_id):
                await trio.sleep(self._banned_until[info.peer_id] - trio.current_time())
                continue
            if self.is_connected(info.peer_id):
                backoff = self._policy.backoff_initial_s
                await trio.sleep(CONNECTED_POLL_S)
                continue
            if await self._dial(info):
                continue
            self.dial_failures += 1
            await trio.sleep(backoff)
            backoff = compute_backoff(backoff, self._policy)

    async def _dial(self, info: PeerInfo) -> bool:
        # py-libp2p refuses to redial a peer for 60 s after a failed dial; our own
        # backoff decides instead, so a restarted validator is found within seconds.
        network = self._host.get_network()
        network.unblock_peer(info.peer_id)
        # host.connect returns at once, without a checkpoint, while the swarm still
        # lists a closed connection to the peer: drop those, or keep_connected spins
        # without ever yielding (the node then ignores even SIGTERM).
        if network.get_connections(info.peer_id):
            await self._disconnect(info.peer_id)
        with trio.move_on_after(DIAL_DEADLINE_S):
            try:
                await self._host.connect(info)
                return self.is_connected(info.peer_id)
            except (BaseLibp2pError, OSError) as exc:
                log.debug("dial %s failed: %s", info.peer_id, exc)
        return False
