"""Canonical msgpack encoding, strict decoding, Ed25519 signing and ids (DESIGN §2), and the
state tree's hashes and proof check (wire.merkle, DESIGN §12).

Pure: imports nothing of ours and no I/O, clock, randomness, trio, libp2p or plyvel.
"""

from wire.errors import DecodeError
from wire.limits import MAX_BLOCK_BYTES, MAX_GOSSIP_BYTES, MAX_TX_BYTES
from wire.message import (
    BOOL, HASH, I64, KEY, OPT_HASH, OPT_KEY, SIG, U64, Bytes, List, Message, Nested, Opt, Str, field_of,
    compute_id, decode, decode_array, register, registered,
)
from wire.crypto import (
    Keypair, signing_bytes, sign_message, slice_signing_bytes, verify_message, verify_signature,
)
from wire.units import BasisPoints, BlockId, Height, Minutes, Round, Wh

__all__ = [
    "DecodeError", "MAX_BLOCK_BYTES", "MAX_GOSSIP_BYTES", "MAX_TX_BYTES",
    "BOOL", "HASH", "I64", "KEY", "OPT_HASH", "OPT_KEY", "SIG", "U64", "Bytes", "List", "Message",
    "Nested", "Opt", "Str", "field_of", "decode", "decode_array", "register", "registered",
    "Keypair", "compute_id", "signing_bytes", "slice_signing_bytes", "sign_message", "verify_message", "verify_signature",
    "BasisPoints", "BlockId", "Height", "Minutes", "Round", "Wh",
]
