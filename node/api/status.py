"""Reading a node's ``GET /status`` answer: the one parser its clients share (DESIGN §9)."""

from __future__ import annotations

from typing import Any


def parse_status_chain_id(doc: Any) -> bytes:
    """The chain id in a status answer, which every signature is bound to.

    Raises ValueError, with the reason, when it is missing or not 32 hex-encoded bytes."""
    try:
        chain_id = bytes.fromhex(doc["chain_id"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("GET /status: no hex chain_id in the node's answer") from None
    if len(chain_id) != 32:
        raise ValueError("GET /status: chain_id is not 32 bytes")
    return chain_id
