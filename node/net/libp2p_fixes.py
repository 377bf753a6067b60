"""Every patch of py-libp2p 0.8.1 that we apply, in one place (DEPENDENCIES.md).

Module defaults that silently drop messages or stall, and per-RPC work done twice,
are fixed here before any host or Pubsub is created. Our own gossip behaviour
(verdicts, priorities, scoring) lives in gossip.py as subclasses, not as patches.
"""

from __future__ import annotations

import socket
import time
import weakref
from collections import OrderedDict

import trio

import libp2p.network.swarm as libp2p_swarm
import libp2p.pubsub.gossipsub as libp2p_gossipsub
import libp2p.pubsub.pubsub as libp2p_pubsub
import libp2p.pubsub.rpc_queue as libp2p_rpc_queue
import libp2p.pubsub.utils as libp2p_pubsub_utils
import libp2p.stream_muxer.yamux.yamux as libp2p_yamux
import libp2p.transport.tcp.tcp as libp2p_tcp
from libp2p.abc import IHost
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from wire.limits import MAX_GOSSIP_BYTES

# DEPENDENCIES.md pitfall 2: both library buffers default to 32 and overflow silently.
OUTBOUND_QUEUE_RPCS = 4096
SUBSCRIPTION_CHANNEL_MESSAGES = 4096
# An RPC carries one gossip message (<= 1 MiB, DESIGN §2) plus its envelope. Accepting a
# little more than 1 MiB lets an oversize message reach our validator, which REJECTs
# (and so penalises) it, instead of the library resetting the stream unscored.
MAX_RPC_BYTES = MAX_GOSSIP_BYTES + 64 * 1024


def _set_reuse_addr_only(sock: trio.socket.SocketType) -> None:
    """py-libp2p 0.8.1 sets SO_REUSEPORT on its TCP listeners (for hole punching,
    which we do not use): a second node then listens on a taken port without error
    and the kernel splits incoming connections between the two. Only SO_REUSEADDR
    is kept, so a port in use fails to listen and we can say so."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)


def _never() -> bool:
    return False


# Both caches are per host object, not per peer id: a node reopened with the same key
# in the same process (tests, a harness restarting a validator) has a new peerstore and
# new listen addresses, and must neither skip records nor send its predecessor's.
_ACCEPTED_RECORDS: weakref.WeakKeyDictionary[IHost, OrderedDict[ID, tuple[bytes, float]]] = \
    weakref.WeakKeyDictionary()
ACCEPTED_RECORDS_MAX = 4096
# libp2p keeps a consumed record's certified addresses for 2 h: an unchanged record is
# consumed again (and so verified again) once an hour to keep them.
RECORD_RECONSUME_S = 3600.0


def consume_signed_record_once(msg: rpc_pb2.RPC, host: IHost, peer_id: ID) -> bool:
    """py-libp2p attaches the sender's signed peer record to every pubsub RPC and
    checks it twice per RPC received (pubsub and gossipsub): two Ed25519
    verifications per gossip RPC. A record is checked once (and again hourly); the
    same bytes again from the same peer, over its authenticated connection, are
    taken as they are."""
    if not msg.HasField("senderRecord"):
        return True
    records, now = _ACCEPTED_RECORDS.setdefault(host, OrderedDict()), time.monotonic()
    accepted = records.get(peer_id)
    if accepted is not None and accepted[0] == msg.senderRecord and now - accepted[1] < RECORD_RECONSUME_S:
        return True
    if not _consume_signed_record(msg, host, peer_id):
        return False
    records[peer_id] = (msg.senderRecord, now)
    records.move_to_end(peer_id)
    while len(records) > ACCEPTED_RECORDS_MAX:
        records.popitem(last=False)
    return True


_consume_signed_record = libp2p_pubsub_utils.maybe_consume_signed_record

# py-libp2p also rebuilds the host's listen multiaddrs from its sockets for every
# RPC it sends, to see whether its own signed record is still current: 1 % of a
# loaded validator's CPU. Addresses are re-read every LOCAL_RECORD_RECHECK_S instead.
LOCAL_RECORD_RECHECK_S = 10.0
_LOCAL_RECORDS: weakref.WeakKeyDictionary[IHost, tuple[float, bytes]] = weakref.WeakKeyDictionary()


def local_record_for_rpc(host: IHost) -> tuple[bytes, bool]:
    now = time.monotonic()
    cached = _LOCAL_RECORDS.get(host)
    if cached is not None and now - cached[0] < LOCAL_RECORD_RECHECK_S:
        return cached[1], False
    envelope, fresh = _local_record_for_rpc(host)
    _LOCAL_RECORDS[host] = (now, envelope)
    return envelope, fresh


_local_record_for_rpc = libp2p_pubsub.env_to_send_in_RPC


def apply_library_fixes() -> None:
    """Patch py-libp2p 0.8.1 module defaults before any host or Pubsub is created
    (idempotent).

    DEPENDENCIES.md pitfalls 2 and 4: per-peer outbound queue and subscription channel
    of 32 that drop silently, and a fixed 250 ms sleep on every dial. Also the
    SO_REUSEPORT listener above, yamux's window update after every read, and the
    signed peer record verified twice in every RPC and re-derived for every RPC sent.
    """
    libp2p_tcp._set_reuse_flags = _set_reuse_addr_only
    # By default yamux answers every read with a WINDOW_UPDATE frame (another Noise
    # frame and send): a third of an idle validator's CPU. Credit is then released
    # only once half the window is consumed, as the yamux spec and go-yamux do.
    libp2p_yamux._yamux_release_on_read = _never
    libp2p_pubsub.maybe_consume_signed_record = consume_signed_record_once
    libp2p_gossipsub.maybe_consume_signed_record = consume_signed_record_once
    libp2p_pubsub.env_to_send_in_RPC = local_record_for_rpc
    libp2p_gossipsub.env_to_send_in_RPC = local_record_for_rpc
    libp2p_swarm._HAPPY_EYEBALLS_DELAY = 0
    libp2p_pubsub.SUBSCRIPTION_CHANNEL_SIZE = SUBSCRIPTION_CHANNEL_MESSAGES
    # RpcQueue() is called with no arguments, so its default arguments are the knob.
    libp2p_rpc_queue.RpcQueue.__init__.__defaults__ = (OUTBOUND_QUEUE_RPCS, MAX_RPC_BYTES)
