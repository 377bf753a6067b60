"""The node's network layer: libp2p host, gossipsub with REJECT/IGNORE, tx batching, block sync.

A trio service the node plugs its handlers into (DESIGN §7). Imports libp2p, trio and
wire; it must not import consensus, tokens, governance or the rest of node except errors.
"""

from node.net.batcher import TxBatcher
from node.net.errors import (
    BlocksPruned, LocalProtocolError, NetError, NetSetupError, PeerUnavailable, RemoteProtocolError,
    StateUnavailable,
)
from node.net.identity import (
    genesis_peer_addrs, has_explicit_peer_id, is_full_peer_addr, load_or_create_identity, peer_id_of_key,
    validator_peer_addr,
)
from node.net.messages import (
    STATE_CHUNK, STATE_HEADER, STATE_HEADERS, STATE_SET_CHANGES, STATE_SNAPSHOTS, BlockEntry, Blocks, GetBlocks,
    GetState,
    Status, SyncFailure, TxBatch,
)
from node.net.network import Network, NetSettings, open_network
from node.net.topics import TopicKind, topic_name
from node.net.verdict import ACCEPT, Outcome, Verdict, ignore, reject

__all__ = [
    "BlocksPruned", "StateUnavailable", "GetState",
    "STATE_CHUNK", "STATE_HEADER", "STATE_HEADERS", "STATE_SET_CHANGES", "STATE_SNAPSHOTS",
    "TxBatcher", "LocalProtocolError", "NetError", "NetSetupError", "PeerUnavailable", "RemoteProtocolError",
    "genesis_peer_addrs", "has_explicit_peer_id", "is_full_peer_addr", "load_or_create_identity",
    "peer_id_of_key", "validator_peer_addr",
    "BlockEntry", "Blocks", "GetBlocks", "Status", "SyncFailure", "TxBatch",
    "Network", "NetSettings", "open_network", "TopicKind", "topic_name",
    "ACCEPT", "Outcome", "Verdict", "ignore", "reject",
]
