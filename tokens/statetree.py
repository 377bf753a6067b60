"""The state tree: the authenticated, versioned state root (DESIGN §4 "State hash", §12).

Every state entry but the tree's own nodes and ``meta/state_hash`` is a leaf of the
sparse Merkle tree whose hashes and proofs ``wire.merkle`` defines. Its nodes live in
the state itself, content-addressed under ``smt/`` + node hash (tokens/layout.py), so
they reach the store in the block's one write batch (DESIGN §8) and every node holds
the same ones. The ledger never deletes a node: the tree of a past root can still be
walked, which is what serves a proof or a snapshot at an earlier height. A block's
update also names the committed nodes it made unreachable from the new root
(``TreeChange.stale``); a node's store may drop them once the roots that still reach
them are older than it keeps (node/store/, docs/state.md "Pruning").

Node records, whose first 65 bytes are the node's hash preimage:

    internal  0x01 ‖ left ‖ right
    leaf      0x00 ‖ sha256(key) ‖ sha256(salt ‖ value) ‖ len(key) (2 bytes) ‖ key ‖ value

``salt`` is empty but for the entries a household owns on a chain that seals payloads
(docs/privacy.md "Private state leaves"): a ``SaltOf`` passed in from outside (the
node's keyring, tokens/sealing.py) names each key's salt, so only a holder of the
commune data key computes such a chain's root.

A block's update walks only the paths of the keys it changed, O(changes × depth).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from tokens.kv import KV
from tokens.layout import META_STATE_HASH, TREE
from wire.merkle import (
    DEPTH, EMPTY, END_EMPTY, END_LEAF, END_OTHER, HASH_LEN, INTERNAL_TAG, LEAF_TAG, Proof, compute_key_hash,
    compute_value_hash, get_bit,
)

PREIMAGE_LEN = 1 + 2 * HASH_LEN
MAX_KEY_BYTES = 2**16 - 1

# A state key -> the salt of its leaf (b"" for a public entry).
SaltOf = Callable[[bytes], bytes]


def no_salt(key: bytes) -> bytes:
    return b""


def is_proven_key(key: bytes) -> bool:
    """A leaf of the tree: every state entry but the tree's nodes and the root itself."""
    return key != META_STATE_HASH and not key.startswith(TREE)


def encode_leaf(key: bytes, value: bytes, salt: bytes = b"") -> tuple[bytes, bytes, bytes]:
    """(key hash, leaf hash, leaf record) of one entry."""
    if len(key) > MAX_KEY_BYTES:
        raise ValueError(f"a state key is at most {MAX_KEY_BYTES} bytes")
    key_hash = compute_key_hash(key)
    record = LEAF_TAG + key_hash + compute_value_hash(value, salt) + len(key).to_bytes(2, "big") + key + value
    return key_hash, hashlib.sha256(record[:PREIMAGE_LEN]).digest(), record


def decode_leaf(record: bytes) -> tuple[bytes, bytes]:
    """(key, value) of a leaf record."""
    end = PREIMAGE_LEN + 2 + int.from_bytes(record[PREIMAGE_LEN:PREIMAGE_LEN + 2], "big")
    return record[PREIMAGE_LEN + 2:end], record[end:]


class MissingTreeNode(RuntimeError):
    """A node of a committed tree is not in the state: the store is broken."""


def get_tree_record(kv: KV, node: bytes) -> bytes:
    """The record of a node of a committed tree."""
    record = kv.get(TREE + node)
    if record is None:
        raise MissingTreeNode(f"state tree node {node.hex()} is missing")
    return record


def _split(items: list[tuple[bytes, bytes | None]], lo: int, hi: int, depth: int) -> int:
    """First index in [lo, hi) whose path goes right at ``depth``. The items are sorted
    by path and share their first ``depth`` bits, so the first right one is the first
    at or above that prefix followed by a 1 and zeros."""
    shift = DEPTH - 1 - depth
    first_right = (((int.from_bytes(items[lo][0], "big") >> shift) | 1) << shift).to_bytes(HASH_LEN, "big")
    return bisect.bisect_left(items, (first_right,), lo, hi)


class TreeWriter:
    """Builds new nodes over a committed tree; ``nodes`` holds the records to write."""

    __slots__ = ("kv", "nodes", "stale", "salt_of")

    def __init__(self, kv: KV, salt_of: SaltOf = no_salt) -> None:
        self.kv = kv
        self.salt_of = salt_of
        self.nodes: dict[bytes, bytes] = {}     # node hash -> record, made by this writer
        self.stale: list[bytes] = []            # committed nodes the update left out of the new tree

    def load(self, node: bytes) -> bytes:
        record = self.nodes.get(node)
        return record if record is not None else get_tree_record(self.kv, node)

    def is_leaf(self, node: bytes) -> bool:
        return self.load(node)[0] == LEAF_TAG[0]

    def add_leaf(self, key: bytes, value: bytes) -> tuple[bytes, bytes]:
        key_hash, leaf, record = encode_leaf(key, value, self.salt_of(key))
        self.nodes[leaf] = record
        return key_hash, leaf

    def join(self, left: bytes, right: bytes) -> bytes:
        """The parent of two subtrees, compressed: a lone leaf rises to its sibling's
        parent's place (shortest unique prefix), and two EMPTY children make EMPTY."""
        if left == EMPTY and (right == EMPTY or self.is_leaf(right)):
            return right
        if right == EMPTY and self.is_leaf(left):
            return left
        record = INTERNAL_TAG + left + right
        node = hashlib.sha256(record).digest()
        self.nodes[node] = record
        return node

    def build(self, depth: int, leaves: list[tuple[bytes, bytes | None]], lo: int, hi: int) -> bytes:
        """The subtree at ``depth`` of the sorted (key hash, leaf hash) ``leaves[lo:hi]``."""
        if lo == hi:
            return EMPTY
        if hi - lo == 1:
            return leaves[lo][1]
        if depth == DEPTH:
            raise RuntimeError("two state keys have the same sha256")
        mid = _split(leaves, lo, hi, depth)
        return self.join(self.build(depth + 1, leaves, lo, mid), self.build(depth + 1, leaves, mid, hi))

    def update(self, node: bytes, depth: int, changes: list[tuple[bytes, bytes | None]], lo: int, hi: int) -> bytes:
        """``node`` (at ``depth``) after ``changes[lo:hi]``: (key hash, new leaf hash or
        None to delete), sorted. Untouched subtrees are kept as they are."""
        if lo == hi:
            return node
        merged: dict[bytes, bytes | None] = {}
        if node != EMPTY:
            record = self.load(node)
            if record[0] == INTERNAL_TAG[0]:
                mid = _split(changes, lo, hi, depth)
                new = self.join(self.update(record[1:33], depth + 1, changes, lo, mid),
                                self.update(record[33:65], depth + 1, changes, mid, hi))
                # An internal node's place is fixed by its leaves' common prefix: once
                # replaced here it is nowhere in the new tree.
                if new != node:
                    self.stale.append(node)
                return new
            if hi - lo == 1 and changes[lo][0] == record[1:33]:
                new = changes[lo][1] or EMPTY       # the key's own leaf, changed in place
                if new != node:
                    self.stale.append(node)
                return new
            merged[record[1:33]] = node
        elif hi - lo == 1:
            return changes[lo][1] or EMPTY
        merged.update(changes[lo:hi])
        # A leaf that only moves deeper keeps its hash; one whose key changed is stale.
        if node != EMPTY and merged[record[1:33]] != node:
            self.stale.append(node)
        leaves = sorted((kh, leaf) for kh, leaf in merged.items() if leaf is not None)
        return self.build(depth, leaves, 0, len(leaves))


@dataclass(frozen=True)
class TreeChange:
    """One block's update of the tree: the new root, the node entries to commit with the
    block (``smt/`` + hash -> record), and the hashes of the committed nodes that are
    not in the new root's tree (a later root may reach one again: same content)."""

    root: bytes
    nodes: dict[bytes, bytes]
    stale: tuple[bytes, ...]


def compute_tree_change(kv: KV, root: bytes, writes: Mapping[bytes, bytes | None],
                        salt_of: SaltOf = no_salt) -> TreeChange:
    """The tree after a block's ``writes`` (None deletes) on the committed tree of
    ``root`` in ``kv``."""
    writer = TreeWriter(kv, salt_of)
    changes = []
    for key, value in writes.items():
        if is_proven_key(key):
            changes.append(writer.add_leaf(key, value) if value is not None else (compute_key_hash(key), None))
    changes.sort()
    new_root = writer.update(root, 0, changes, 0, len(changes))
    nodes = {TREE + node: record for node, record in writer.nodes.items()}
    return TreeChange(new_root, nodes, tuple(writer.stale))


def compute_tree_update(kv: KV, root: bytes, writes: Mapping[bytes, bytes | None],
                        salt_of: SaltOf = no_salt) -> tuple[bytes, dict[bytes, bytes]]:
    """The root after a block's ``writes`` and the new node entries to commit with it."""
    change = compute_tree_change(kv, root, writes, salt_of)
    return change.root, change.nodes


def compute_tree_build(items: Iterable[tuple[bytes, bytes]],
                       salt_of: SaltOf = no_salt) -> tuple[bytes, dict[bytes, bytes]]:
    """The root of the tree of ``items`` built from nothing (genesis, audits), and its nodes."""
    writer = TreeWriter(_NO_NODES, salt_of)
    leaves = sorted(writer.add_leaf(key, value) for key, value in items if is_proven_key(key))
    root = writer.build(0, leaves, 0, len(leaves))
    return root, {TREE + node: record for node, record in writer.nodes.items()}


class _NoNodes:
    """The committed tree of a build from nothing: it has no nodes."""

    def get(self, key: bytes) -> None:
        return None

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return iter(())


_NO_NODES = _NoNodes()


def compute_proof(kv: KV, root: bytes, key: bytes) -> tuple[bytes | None, Proof]:
    """The value of ``key`` in the tree of ``root`` (None if absent), with its proof."""
    key_hash = compute_key_hash(key)
    node, siblings = root, []
    for depth in range(DEPTH + 1):
        if node == EMPTY:
            return None, Proof(END_EMPTY, tuple(siblings))
        record = get_tree_record(kv, node)
        if record[0] == LEAF_TAG[0]:
            if record[1:33] == key_hash:
                return decode_leaf(record)[1], Proof(END_LEAF, tuple(siblings))
            return None, Proof(END_OTHER, tuple(siblings), record[1:33], record[33:65])
        left, right = record[1:33], record[33:65]
        node, sibling = (right, left) if get_bit(key_hash, depth) else (left, right)
        siblings.append(sibling)
    raise RuntimeError("a state tree path is deeper than 256")


def iter_tree_entries(kv: KV, root: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of the tree of ``root``, in path order: the state at the
    height this root commits to, read from the tree alone (snapshots, audits)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node == EMPTY:
            continue
        record = get_tree_record(kv, node)
        if record[0] == LEAF_TAG[0]:
            yield decode_leaf(record)
        else:
            stack.extend((record[33:65], record[1:33]))
