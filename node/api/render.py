"""JSON views of wire messages for the HTTP API: bytes as hex, txs decoded with their type."""

from __future__ import annotations

from typing import Any

from consensus.block import Block, Commit, compute_block_id
from tokens.txs import decode_tx
from wire import DecodeError, Message, compute_id


def to_json(value: Any) -> Any:
    if isinstance(value, Message):
        return {name: to_json(getattr(value, name)) for name, _ in value._KINDS}
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return [to_json(v) for v in value]
    return value


def tx_json(data: bytes) -> dict[str, Any]:
    try:
        tx = decode_tx(data)
    except DecodeError as exc:  # a stored block only holds valid txs; say so if not
        return {"id": compute_id(data).hex(), "type": "undecodable", "error": exc.reason}
    return {"id": compute_id(data).hex(), "type": tx.TAG, **to_json(tx)}


def block_json(block: Block, commit: Commit | None) -> dict[str, Any]:
    return {
        "id": compute_block_id(block).hex(),
        "height": block.header.height,
        "header": to_json(block.header),
        "txs": [tx_json(t) for t in block.txs],
        "last_commit": to_json(block.last_commit) if block.last_commit is not None else None,
        "evidence": [to_json(e) for e in block.evidence],
        "commit": to_json(commit) if commit is not None else None,
    }
