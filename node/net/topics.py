"""Topic names, protocol ids and the content-addressed message id (DESIGN §7)."""

from __future__ import annotations

import enum
import hashlib


class TopicKind(enum.Enum):
    TX = "tx"
    CONSENSUS = "consensus"
    EVIDENCE = "evidence"
    HEARTBEAT = "heartbeat"


def topic_name(chain_id: bytes, kind: TopicKind) -> str:
    """DESIGN §7: ``/voisinage/<chain_id hex>/<kind>/1``."""
    return f"/voisinage/{chain_id.hex()}/{kind.value}/1"


def sync_protocol(chain_id: bytes) -> str:
    """DESIGN §7 block sync: ``/voisinage/<chain_id hex>/sync/1``."""
    return f"/voisinage/{chain_id.hex()}/sync/1"


def status_protocol(chain_id: bytes) -> str:
    """Height exchange, so a node knows when it is more than 2 heights behind."""
    return f"/voisinage/{chain_id.hex()}/status/1"


def state_protocol(chain_id: bytes) -> str:
    """State sync (docs/statesync.md): snapshots, their chunks and the light-client headers."""
    return f"/voisinage/{chain_id.hex()}/statesync/1"


def light_protocol(chain_id: bytes) -> str:
    """A household node's proven entries (docs/privacy.md "Household nodes")."""
    return f"/voisinage/{chain_id.hex()}/light/1"


def compute_message_id(data: bytes) -> bytes:
    """DESIGN §7: the message id is sha256(data)[:20], so copies of the same bytes
    from different publishers are one message."""
    return hashlib.sha256(data).digest()[:20]
