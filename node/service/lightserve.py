"""Serving household nodes their proven entries (docs/privacy.md "Household nodes").

A validator or full node answers ``/voisinage/<chain>/light/1``: a GetEntries
(tokens/lightstate.py) at a height whose state tree it keeps, each key answered with
its value or absence and a proof against the root the header of height+1 carries.
A household's own entries go only to a request signed by that household, bound to the
peer that sent it, within a minute of this node's clock and with a nonce never seen
before; public entries go to anyone (tokens/visibility.py). Whatever the asker may not
read is listed as refused, never sent.

A household asks for its delivery point entries by its key (``own_prm``): on a chain
that seals they are keyed by a hash under the commune key (tokens/indexkeys.py), which
this node computes with its keyring from the household's record at that height.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from node.api.proofs import get_committed_root
from node.net import StateUnavailable
from node.store.store import StoreReader
from tokens import layout as L
from tokens.indexkeys import compute_prm_tag, key_by_prm_entry, read_index_key
from tokens.kv import KV, decode_value
from tokens.lightstate import (
    MAX_PREFIX_ENTRIES, REQUEST_WINDOW_MS, GetEntries, ProvenEntries, ProvenEntry, ProvenPrefix,
    get_request_fault,
)
from tokens.sealing import Keyring, MissingCommuneKey, make_kv_getter, read_salt
from tokens.statetree import compute_proof, is_proven_key
from tokens.visibility import is_hidden_interval, is_prefix_readable_by, is_readable_by
from wire import DecodeError, decode
from wire.merkle import encode_proof

MAX_SEEN_NONCES = 100_000
ANSWER_BUDGET_BYTES = 6 * 1024 * 1024   # under the state-sync frame (8 MiB): listings are cut short


class ReplayGuard:
    """The (requester, nonce) pairs of the last REQUEST_WINDOW_MS, each accepted once."""

    def __init__(self, limit: int = MAX_SEEN_NONCES) -> None:
        self._seen: OrderedDict[tuple[bytes, bytes], int] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()     # requests are answered in worker threads

    def admit(self, requester: bytes, nonce: bytes, now_ms: int) -> bool:
        with self._lock:
            return self._admit(requester, nonce, now_ms)

    def _admit(self, requester: bytes, nonce: bytes, now_ms: int) -> bool:
        while self._seen and next(iter(self._seen.values())) < now_ms - 2 * REQUEST_WINDOW_MS:
            self._seen.popitem(last=False)
        if (requester, nonce) in self._seen:
            return False
        if len(self._seen) >= self._limit:
            self._seen.popitem(last=False)
        self._seen[(requester, nonce)] = now_ms
        return True


def prove_entry(snap: StoreReader, root: bytes, key: bytes) -> ProvenEntry:
    value, proof = compute_proof(snap.state, root, key)
    return ProvenEntry(key=key, value=value, proof=encode_proof(proof))


def prove_prefix(snap: StoreReader, root: bytes, prefix: bytes, budget: list[int]) -> ProvenPrefix:
    """The entries under ``prefix`` the state of ``root`` holds. The keys are found in the
    store's current state (one block on at most): one added since is proven absent at
    ``root`` and left out, one removed since is not listed."""
    entries, complete = [], True
    for key, _ in snap.state.iter_prefix(prefix):
        if not is_proven_key(key):
            continue
        if len(entries) >= MAX_PREFIX_ENTRIES or budget[0] <= 0:
            complete = False
            break
        entry = prove_entry(snap, root, key)
        if entry.value is not None:
            entries.append(entry)
            budget[0] -= len(entry.key) + len(entry.value) + len(entry.proof)
    return ProvenPrefix(prefix=prefix, entries=tuple(entries), complete=complete)


def read_state_index_key(kv: KV, keyring: Keyring | None) -> bytes | None:
    """The index key of the chain of ``kv`` (None if it does not seal); StateUnavailable
    for a node that does not hold it."""
    try:
        return read_index_key(make_kv_getter(kv), keyring, kv.get(L.META_DATA_EPOCH) is not None)
    except MissingCommuneKey as exc:
        raise StateUnavailable(f"delivery point entries cannot be found here: {exc}") from None


def prove_by_prm(snap: StoreReader, root: bytes, requester: bytes, index_key: bytes | None) -> tuple[ProvenEntry, ...]:
    """The ``prm/`` entry of ``requester``'s delivery point at ``root`` and its ``cons/``
    and ``rcs/`` entries under the same tag (tokens/lightstate.py ``verify_by_prm``);
    nothing if the state of ``root`` holds no record of it, or no index entry naming it."""
    record = prove_entry(snap, root, L.key_household(requester)).value
    if record is None:
        return ()
    index = prove_entry(snap, root, L.PRM + compute_prm_tag(decode_value(record)[L.HH_PRM], index_key))
    if index.value is None or decode_value(index.value) != requester:
        return ()
    return (index, *(prove_entry(snap, root, key) for key in key_by_prm_entry(index.key)))


def answer_entries(snap: StoreReader, req: GetEntries, keyring: Keyring | None = None) -> ProvenEntries:
    """The proofs for ``req`` (already admitted) from one consistent view of the store
    (``keyring``: this node's, for a household's delivery point entries)."""
    if req.height < snap.tree_from():
        raise StateUnavailable(f"the state tree of height {req.height} is pruned here (kept from "
                               f"{snap.tree_from()})")
    root = get_committed_root(snap, req.height)
    if root is None:
        raise StateUnavailable(f"no committed header carries the state root of height {req.height} here yet")
    entries, refused, budget = [], [], [ANSWER_BUDGET_BYTES]
    for key in dict.fromkeys(req.keys):
        entry = prove_entry(snap, root, key) if is_readable_by(snap.state, key, req.requester) else None
        # An interval record is judged by the value proven at that height too: public now,
        # it was open (hidden) before (docs/privacy.md "Public aggregates").
        if entry is not None and not is_hidden_interval(snap.state, key, entry.value):
            entries.append(entry)
        else:
            refused.append(key)
    prefixes = []
    for prefix in dict.fromkeys(req.prefixes):
        if is_prefix_readable_by(prefix, req.requester, snap.state):
            prefixes.append(prove_prefix(snap, root, prefix, budget))
        else:
            refused.append(prefix)
    by_prm = ()
    if req.own_prm and req.requester is not None:
        by_prm = prove_by_prm(snap, root, req.requester, read_state_index_key(snap.state, keyring))
    salt = read_inherited_salt(snap, root, req.requester, keyring) if req.requester is not None else b""
    return ProvenEntries(height=req.height, entries=tuple(entries), prefixes=tuple(prefixes),
                         refused=tuple(refused), by_prm=by_prm, salt=salt)


def read_inherited_salt(snap: StoreReader, root: bytes, requester: bytes, keyring: Keyring | None) -> bytes:
    """The salt ``requester``'s entries inherit from its former key at ``root`` (its
    ``slk/`` link there: docs/privacy.md "Moving a household to a new key"), or b"". Its
    own node cannot derive it; the salt is the household's own, asked by its signature."""
    link = compute_proof(snap.state, root, L.key_salt_link(requester))[0]
    if link is None:
        return b""
    get = make_kv_getter(snap.state)
    try:
        return read_salt(get, keyring, decode_value(link))
    except MissingCommuneKey as exc:
        raise StateUnavailable(f"the salt of a moved household's entries cannot be read here: {exc}") from None


class EntriesServer:
    """The responder a node gives its network for the light protocol."""

    def __init__(self, open_snapshot: Callable[[], StoreReader], chain_id: bytes,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 rewrite: Callable[[bytes], bytes] | None = None,
                 keyring: Callable[[], Keyring | None] = lambda: None) -> None:
        """``rewrite``: None when honest; the e2e and live tests' ``--byzantine
        lie-proofs`` passes one that forges answers (node/e2e/byzantine.py). ``keyring``:
        the node's (on a chain that seals, the index key of households' delivery points)."""
        self.open_snapshot, self.chain_id, self.now_ms = open_snapshot, chain_id, now_ms
        self.rewrite, self.keyring = rewrite, keyring
        self.guard = ReplayGuard()
        self.served = 0

    def respond(self, data: bytes, peer: str) -> bytes:
        """The answer's bytes; StateUnavailable (sent back as a refusal) when the request
        is malformed, badly signed, for another peer, stale or replayed."""
        try:
            req = decode(data, GetEntries, len(data))
        except DecodeError as exc:
            raise StateUnavailable(f"malformed entries request: {exc.reason}") from None
        now = self.now_ms()
        fault = get_request_fault(req, self.chain_id, peer.encode(), now)
        if fault is not None:
            raise StateUnavailable(f"entries request refused: {fault}")
        if req.requester is not None and not self.guard.admit(req.requester, req.nonce, now):
            raise StateUnavailable("entries request refused: replayed nonce")
        with self.open_snapshot() as snap:
            answer = answer_entries(snap, req, self.keyring())
        self.served += 1
        return answer.encode() if self.rewrite is None else self.rewrite(answer.encode())
