"""The state tree's hashes and proofs (DESIGN §12 "Provable state", docs/state.md).

A binary sparse Merkle tree over 256-bit paths ``sha256(key)``, compressed as in
Diem/Aptos's Jellyfish Merkle Tree: a subtree holding one entry is that entry's leaf,
placed at the shortest unique prefix of its path, and an empty subtree is ``EMPTY``.

    leaf     = sha256(0x00 ‖ sha256(key) ‖ sha256(salt ‖ value))
    internal = sha256(0x01 ‖ left ‖ right)
    EMPTY    = 32 zero bytes

``salt`` is empty for a public entry; an entry owned by a household of a chain that
seals payloads is salted with that household's secret leaf salt (docs/privacy.md
"Private state leaves"), so the value hash a neighbour's proof carries cannot be
tested against guesses of the value.

This module is everything a light client needs to check a proof against a header's
state root: ``verify_proof`` and the strict, bounded proof decoder. It knows nothing
of the ledger. The proof bytes are::

    kind (1) ‖ depth (2, big-endian, ≤ 256) ‖ bitmap (⌈depth/8⌉) ‖ [other leaf (64)] ‖ siblings (32 each)

``kind`` says what the key's path reaches at ``depth``: ``END_EMPTY`` (absence),
``END_LEAF`` (the key's own leaf: inclusion), ``END_OTHER`` (another key's leaf,
given as its key hash and value hash: absence). Bit ``i`` of the bitmap (most
significant first) is set when the sibling at depth ``i`` is not ``EMPTY``; only
those siblings are sent, root first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from wire.errors import DecodeError

DEPTH = 256                 # bits of a path: sha256
HASH_LEN = 32
EMPTY = bytes(HASH_LEN)
LEAF_TAG = b"\x00"
INTERNAL_TAG = b"\x01"

END_EMPTY, END_LEAF, END_OTHER = 0, 1, 2
PROOF_HEADER = 3
# The largest valid proof: full depth, every sibling present, another key's leaf.
MAX_PROOF_BYTES = PROOF_HEADER + DEPTH // 8 + 2 * HASH_LEN + DEPTH * HASH_LEN


def compute_key_hash(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def compute_value_hash(value: bytes, salt: bytes = b"") -> bytes:
    return hashlib.sha256(salt + value).digest()


def compute_leaf_hash(key_hash: bytes, value_hash: bytes) -> bytes:
    return hashlib.sha256(LEAF_TAG + key_hash + value_hash).digest()


def compute_internal_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(INTERNAL_TAG + left + right).digest()


def get_bit(path: bytes, depth: int) -> int:
    """Bit ``depth`` of a 256-bit path, most significant first: 0 goes left, 1 right."""
    return (path[depth >> 3] >> (7 - (depth & 7))) & 1


def is_prefix_shared(a: bytes, b: bytes, depth: int) -> bool:
    """Whether paths ``a`` and ``b`` agree on their first ``depth`` bits."""
    whole, rest = divmod(depth, 8)
    if a[:whole] != b[:whole]:
        return False
    return rest == 0 or (a[whole] ^ b[whole]) >> (8 - rest) == 0


@dataclass(frozen=True)
class Proof:
    """What a key's path meets below the root: ``siblings[i]`` is the sibling at depth i."""

    kind: int
    siblings: tuple[bytes, ...]
    other_key_hash: bytes = b""     # END_OTHER only
    other_value_hash: bytes = b""


def encode_proof(proof: Proof) -> bytes:
    depth = len(proof.siblings)
    bitmap = bytearray((depth + 7) // 8)
    present = []
    for i, sibling in enumerate(proof.siblings):
        if sibling != EMPTY:
            bitmap[i >> 3] |= 0x80 >> (i & 7)
            present.append(sibling)
    other = proof.other_key_hash + proof.other_value_hash if proof.kind == END_OTHER else b""
    return bytes([proof.kind]) + depth.to_bytes(2, "big") + bytes(bitmap) + other + b"".join(present)


def decode_proof(data: bytes) -> Proof:
    """Strict: the exact length, a known kind, depth ≤ 256, no stray bitmap bits."""
    if type(data) is not bytes:
        raise DecodeError("proof: expected bytes")
    if not PROOF_HEADER <= len(data) <= MAX_PROOF_BYTES:
        raise DecodeError(f"proof: {len(data)} bytes is outside [{PROOF_HEADER}, {MAX_PROOF_BYTES}]")
    kind, depth = data[0], int.from_bytes(data[1:3], "big")
    if kind not in (END_EMPTY, END_LEAF, END_OTHER):
        raise DecodeError(f"proof: unknown kind {kind}")
    if depth > DEPTH:
        raise DecodeError(f"proof: depth {depth} exceeds {DEPTH}")
    pos = PROOF_HEADER + (depth + 7) // 8
    bitmap = int.from_bytes(data[PROOF_HEADER:pos], "big") if depth else 0
    if bitmap & ((1 << (-depth % 8)) - 1):
        raise DecodeError("proof: bitmap bits set beyond the depth")
    other_key_hash = other_value_hash = b""
    if kind == END_OTHER:
        other_key_hash, other_value_hash = data[pos:pos + HASH_LEN], data[pos + HASH_LEN:pos + 2 * HASH_LEN]
        pos += 2 * HASH_LEN
    count = bin(bitmap).count("1")
    if len(data) != pos + count * HASH_LEN:
        raise DecodeError(f"proof: {len(data)} bytes, expected {pos + count * HASH_LEN}")
    siblings = []
    for i in range(depth):
        if bitmap >> ((-depth % 8) + depth - 1 - i) & 1:
            siblings.append(data[pos:pos + HASH_LEN])
            pos += HASH_LEN
        else:
            siblings.append(EMPTY)
    return Proof(kind, tuple(siblings), other_key_hash, other_value_hash)


def compute_proof_bottom(key_hash: bytes, value: bytes | None, proof: Proof, salt: bytes = b"") -> bytes | None:
    """The hash the key's path meets at the proof's depth, or None if the proof cannot
    show what is claimed (inclusion when ``value`` is given, absence otherwise)."""
    depth = len(proof.siblings)
    # A compressed tree has no internal node with one EMPTY child and one leaf, nor
    # one with two EMPTY children: whatever ends a path has a non-empty sibling.
    if depth and proof.siblings[-1] == EMPTY:
        return None
    if value is not None:
        if proof.kind != END_LEAF:
            return None
        return compute_leaf_hash(key_hash, compute_value_hash(value, salt))
    if proof.kind == END_EMPTY:
        return EMPTY
    if proof.kind != END_OTHER or proof.other_key_hash == key_hash:
        return None
    # Another key's leaf sits at this position only if its path starts the same way.
    if not is_prefix_shared(proof.other_key_hash, key_hash, depth):
        return None
    return compute_leaf_hash(proof.other_key_hash, proof.other_value_hash)


def compute_root_from_proof(key_hash: bytes, bottom: bytes, siblings: tuple[bytes, ...]) -> bytes:
    node = bottom
    for depth in range(len(siblings) - 1, -1, -1):
        sibling = siblings[depth]
        node = compute_internal_hash(sibling, node) if get_bit(key_hash, depth) else \
            compute_internal_hash(node, sibling)
    return node


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: bytes, salt: bytes = b"") -> bool:
    """True iff ``proof`` shows that, in the tree of ``root``, ``key`` holds ``value``
    (inclusion) or, when ``value`` is None, that ``key`` is absent. ``salt``: the owning
    household's leaf salt for a private entry (it knows its own), empty for a public one.
    Never raises on a hostile proof: malformed bytes are simply not a proof."""
    if type(root) is not bytes or len(root) != HASH_LEN or type(key) is not bytes or type(salt) is not bytes:
        return False
    if value is not None and type(value) is not bytes:
        return False
    try:
        decoded = decode_proof(proof)
    except DecodeError:
        return False
    key_hash = compute_key_hash(key)
    bottom = compute_proof_bottom(key_hash, value, decoded, salt)
    return bottom is not None and compute_root_from_proof(key_hash, bottom, decoded.siblings) == root
