"""The node's crash-safe LevelDB store (DESIGN §8): blocks, commits, ledger state and meta.

Part of node/ (it does the disk I/O); only node/ may import it. It imports plyvel,
wire and tokens (and consensus' block, for the headers pruning keeps: pruning.py),
never trio, libp2p or the CLI library.
"""

from node.store.layout import Height
from node.store.store import (
    StateView, Store, StoredBlock, StoreCorrupt, StoreError, StoreLocked, StoreReader,
)

__all__ = [
    "Height", "StateView", "Store", "StoreCorrupt", "StoreError", "StoreLocked", "StoreReader",
    "StoredBlock",
]
