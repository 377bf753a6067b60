"""Key layout of the node's LevelDB database (DESIGN §8 "Layout").

Every key starts with a one-letter namespace and a slash:

==========================  ============================================================
key                         value
==========================  ============================================================
``s/`` + state key          the ledger's key-value state (tokens/ owns the keys)
``b/`` + height             block bytes, exactly as committed
``c/`` + height             commit bytes: the precommits that finalised the block
``h/`` + height             block id (32 bytes) of the block at that height
``i/`` + block id           height of that block
``m/version``               layout version, ``FORMAT_VERSION`` as 8 bytes
``m/genesis``               chain id (sha256 of genesis.json): a home never changes commune
``m/height``                last committed height (0 right after genesis)
``m/state_hash``            state hash after the last committed height (32 bytes)
``m/block_id``              id of the last committed block (absent at height 0)
``x/`` + name               extra meta a caller commits with a block (e.g. validator set)
``a/`` + state key          archive: a state entry the ledger removed (``int/``, ``ie/`` of
                            intervals past ``history_retention_s``), as it last was
``t/`` + height + node      pruning index: a state tree node left out of the root of height
``T/`` + node               the last height that node was left out at (8 bytes)
``H/`` + height             header bytes of a block whose body was pruned
``m/tree_from``             lowest height whose state tree is whole (absent: all heights)
``m/blocks_from``           lowest height whose block body is kept (absent: all heights)
``m/state_from``            the snapshot height a state-synced store started at (absent:
                            genesis); no block at or below it is stored
``m/light``                 present on a household node in light mode (node/store/light.py):
                            no block body at all; ``s/`` holds only the entries it follows
``m/header_top``            light mode: the highest verified header kept (``H/``, ``c/``)
``s0``                      empty, never deleted (``STATE_END``): the one key outside the
                            namespaces. It sits between the state and the pruning index, so
                            a scan of the state's last prefix (``vset/``) stops at it instead
                            of stepping over every tombstone pruning left at the start of
                            ``t/`` (measured: 17 % of a validator's block time before)
==========================  ============================================================

Heights are 8-byte big-endian, so LevelDB's byte order is height order and a prefix
scan walks blocks from 1 upwards.
"""

from __future__ import annotations

from wire.units import Height

FORMAT_VERSION = 1
MAX_HEIGHT = 2**64 - 1

STATE = b"s/"
BLOCK = b"b/"
COMMIT = b"c/"
BLOCK_ID = b"h/"
HEIGHT_OF = b"i/"
EXTRA = b"x/"
ARCHIVE = b"a/"
STALE = b"t/"
STALE_AT = b"T/"
STATE_END = b"s0"   # sorts after every ``s/`` key and before ``t/``
STALE_STOP = b"t0"  # the first key after every ``t/`` key
HEADER = b"H/"

META_VERSION = b"m/version"
META_GENESIS = b"m/genesis"
META_HEIGHT = b"m/height"
META_STATE_HASH = b"m/state_hash"
META_BLOCK_ID = b"m/block_id"
META_TREE_FROM = b"m/tree_from"
META_BLOCKS_FROM = b"m/blocks_from"
META_STATE_FROM = b"m/state_from"
META_LIGHT = b"m/light"
META_HEADER_TOP = b"m/header_top"

HASH_LEN = 32


def encode_height(height: int) -> bytes:
    return height.to_bytes(8, "big")


def decode_height(data: bytes) -> Height:
    if len(data) != 8:
        raise ValueError(f"a stored height is 8 bytes, found {len(data)}")
    return Height(int.from_bytes(data, "big"))


def key_state(key: bytes) -> bytes:
    return STATE + key


def key_block(height: int) -> bytes:
    return BLOCK + encode_height(height)


def key_commit(height: int) -> bytes:
    return COMMIT + encode_height(height)


def key_block_id(height: int) -> bytes:
    return BLOCK_ID + encode_height(height)


def key_height_of(block_id: bytes) -> bytes:
    return HEIGHT_OF + block_id


def key_extra(name: str) -> bytes:
    return EXTRA + name.encode()


def key_archive(state_key: bytes) -> bytes:
    return ARCHIVE + state_key


def key_stale(height: int, node: bytes) -> bytes:
    return STALE + encode_height(height) + node


def key_stale_at(node: bytes) -> bytes:
    return STALE_AT + node


def key_header(height: int) -> bytes:
    return HEADER + encode_height(height)
