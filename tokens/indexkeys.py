"""The keys of the meter and delivery-point indexes, and of the entries keyed by a
delivery point (docs/privacy.md "What stays in the state").

``meter/`` and ``prm/`` map a meter serial and a PRM to the key of the household that has
it: a registration refuses a serial or PRM already taken, a ``Consent`` and a
``Reconcile`` find a household by its PRM, a key rotation or a move-out moves or ends
them. Every read and write of these entries takes its key from ``key_meter_entry`` and
``key_prm_entry`` (and their ``Ledger`` forms), and from nowhere else:

- on a chain that does not seal payloads, today's keys, byte for byte: ``meter/`` ‖
  serial, ``prm/`` ‖ PRM (tokens/layout.py ``key_meter``, ``key_prm``);
- on a chain that seals, the prefix ‖ a keyed BLAKE2b-256 of the prefix and the serial
  or PRM under the commune's *index key*. The state tree places a leaf by a hash of its
  key, and a proof of a neighbouring key carries that hash: keyed by the serial itself,
  anyone could try every 12-digit serial or 14-digit PRM and find a guessed one present
  in the commune. Under a commune-secret key, only the holders of the commune key can
  tell which serial an entry is for, or whether one is there at all.

The index key derives from the aggregate key (tokens/sealing.py ``read_aggregate_key``:
from epoch 0's secret, carried across a cut wrapped under the cut epoch), so it is the
same for the chain's whole life and a cut keeps every lookup working.

The reconciliation entries of a delivery point, ``cons/`` (its consent) and ``rcs/``
(its statistics), are keyed by the same *PRM tag* as its ``prm/`` entry
(``compute_prm_tag``: the PRM in clear, or its keyed hash on a chain that seals), so a
state proof or a snapshot shows no PRM there either. Every read and write takes its key
from ``key_consent_of`` / ``key_reconcile_stats_of`` (the ledger), ``key_by_prm_entry``
(a reader that holds the ``prm/`` entry but no index key: the validators' visibility
table, a household's light node) or ``find_prm_tag`` (views over a store), all through
``key_consent_at`` / ``key_reconcile_stats_at``. Sharing the tag is what lets a
household node follow its own entries without the commune key: the validators prove its
``prm/`` entry, whose value names it, and the two entries under the same tag
(tokens/lightstate.py ``own_prm``). Pure, but for the scan of ``find_prm_tag`` over the
store it is given.
"""

from __future__ import annotations

import functools
import hashlib
from typing import TYPE_CHECKING

from tokens import layout as L
from tokens.kv import KV, decode_value
from tokens.sealing import Getter, Keyring, MissingCommuneKey, read_aggregate_key

if TYPE_CHECKING:
    from tokens.ledger import Ledger

INDEX_KEY_PERSON = b"vsn/index-key"     # the index key, from the aggregate key
INDEX_ENTRY_PERSON = b"vsn/index-entry"  # an entry's hashed serial or PRM, under the index key
INDEX_PREFIXES = (L.METER, L.PRM)
# The families keyed by a delivery point's tag, as its ``prm/`` entry is.
BY_PRM_PREFIXES = (L.CONSENT, L.RECONCILE_STATS)


@functools.lru_cache(maxsize=8)
def derive_index_key(aggregate_key: bytes) -> bytes:
    """The commune's index key: keyed BLAKE2b under the aggregate key, apart (by its
    personalisation) from the aggregate salts derived from the same key."""
    return hashlib.blake2b(b"meter and prm indexes", digest_size=32, key=aggregate_key,
                           person=INDEX_KEY_PERSON).digest()


def compute_index_entry(prefix: bytes, value: str, index_key: bytes | None) -> bytes:
    """The state key of the index entry of ``value`` (a serial or a PRM) under ``prefix``
    (``meter/`` or ``prm/``): in clear without an index key (a chain that does not seal),
    else its keyed hash."""
    if prefix not in INDEX_PREFIXES:
        raise ValueError(f"{prefix!r} is not an index prefix")
    if index_key is None:
        return prefix + value.encode()
    return prefix + hashlib.blake2b(prefix + value.encode(), digest_size=32, key=index_key,
                                    person=INDEX_ENTRY_PERSON).digest()


def compute_prm_tag(prm: str, index_key: bytes | None) -> bytes:
    """What follows the prefix in the keys of delivery point ``prm``'s ``prm/``, ``cons/``
    and ``rcs/`` entries: the PRM itself on a chain that does not seal, else its keyed
    hash (the same bytes as its ``prm/`` entry's, so one proven index entry gives the
    others)."""
    return compute_index_entry(L.PRM, prm, index_key)[len(L.PRM):]


def key_consent_at(tag: bytes) -> bytes:
    """The ``cons/`` key of the delivery point of ``tag`` (``compute_prm_tag``)."""
    return L.CONSENT + tag


def key_reconcile_stats_at(tag: bytes) -> bytes:
    """The ``rcs/`` key of the delivery point of ``tag`` (``compute_prm_tag``)."""
    return L.RECONCILE_STATS + tag


def key_prm_entry_of(by_prm_key: bytes) -> bytes:
    """The ``prm/`` entry of the delivery point of a ``cons/`` or ``rcs/`` key (its value
    names the household the entry is about)."""
    for prefix in BY_PRM_PREFIXES:
        if by_prm_key.startswith(prefix) and len(by_prm_key) > len(prefix):
            return L.PRM + by_prm_key[len(prefix):]
    raise ValueError(f"{by_prm_key[:40]!r} is not keyed by a delivery point")


def key_by_prm_entry(prm_entry: bytes) -> tuple[bytes, bytes]:
    """The ``cons/`` and ``rcs/`` keys of the delivery point whose ``prm/`` entry is at
    ``prm_entry``: for a reader that holds that entry but no index key."""
    if not prm_entry.startswith(L.PRM) or len(prm_entry) == len(L.PRM):
        raise ValueError(f"{prm_entry[:40]!r} is not a prm/ entry")
    tag = prm_entry[len(L.PRM):]
    return key_consent_at(tag), key_reconcile_stats_at(tag)


def read_index_key(get: Getter, keyring: Keyring | None, seals: bool) -> bytes | None:
    """The index key of a state read by ``get`` (decoded values): None on a chain that
    does not seal; ``MissingCommuneKey`` on one that does, for a node without the key."""
    if not seals:
        return None
    if keyring is None:
        raise MissingCommuneKey("the meter and PRM indexes of a chain that seals payloads are keyed by a hash under "
                                "the commune data key, which this node does not hold")
    return derive_index_key(read_aggregate_key(get, keyring))


def key_meter_entry(get: Getter, keyring: Keyring | None, seals: bool, meter: str) -> bytes:
    return compute_index_entry(L.METER, meter, read_index_key(get, keyring, seals))


def key_prm_entry(get: Getter, keyring: Keyring | None, seals: bool, prm: str) -> bytes:
    return compute_index_entry(L.PRM, prm, read_index_key(get, keyring, seals))


def key_consent_entry(get: Getter, keyring: Keyring | None, seals: bool, prm: str) -> bytes:
    """The ``cons/`` key of delivery point ``prm``, for a holder of the commune key."""
    return key_consent_at(compute_prm_tag(prm, read_index_key(get, keyring, seals)))


def key_reconcile_stats_entry(get: Getter, keyring: Keyring | None, seals: bool, prm: str) -> bytes:
    """The ``rcs/`` key of delivery point ``prm``, for a holder of the commune key."""
    return key_reconcile_stats_at(compute_prm_tag(prm, read_index_key(get, keyring, seals)))


def key_meter_of(lg: Ledger, meter: str) -> bytes:
    """The ``meter/`` entry of ``meter`` in the state ``lg`` applies to."""
    return key_meter_entry(lg.ov.get, lg.keys, lg.genesis.seals_payloads, meter)


def key_prm_of(lg: Ledger, prm: str) -> bytes:
    """The ``prm/`` entry of ``prm`` in the state ``lg`` applies to."""
    return key_prm_entry(lg.ov.get, lg.keys, lg.genesis.seals_payloads, prm)


def key_consent_of(lg: Ledger, prm: str) -> bytes:
    """The ``cons/`` entry of delivery point ``prm`` in the state ``lg`` applies to."""
    return key_consent_entry(lg.ov.get, lg.keys, lg.genesis.seals_payloads, prm)


def key_reconcile_stats_of(lg: Ledger, prm: str) -> bytes:
    """The ``rcs/`` entry of delivery point ``prm`` in the state ``lg`` applies to."""
    return key_reconcile_stats_entry(lg.ov.get, lg.keys, lg.genesis.seals_payloads, prm)


def get_resalted_by_prm(lg: Ledger, prm: str) -> list[bytes]:
    """On a chain that seals, the committed ``cons/`` and ``rcs/`` entries of delivery
    point ``prm``, whose leaves take the salt of the household its ``prm/`` entry names
    (tokens/sealing.py ``ENTRIES_OWNED_BY_PRM``): to re-hash when that entry changes
    hands, or its household gets its salt."""
    if not lg.genesis.seals_payloads:
        return []
    keys = (key_consent_of(lg, prm), key_reconcile_stats_of(lg, prm))
    return [key for key in keys if lg.ov.original(key) is not None]


def find_prm_tag(kv: KV, addr: bytes, prm: str) -> bytes | None:
    """The tag of household ``addr``'s delivery point ``prm`` in committed state ``kv``,
    for a view that holds no index key; None if no ``prm/`` entry names ``addr`` there. On
    a chain that does not seal, the PRM itself; on one that seals, the entry naming
    ``addr`` is looked for (one per household: the validators' store holds one per
    household, a household node's light store its own only)."""
    if kv.get(L.META_DATA_EPOCH) is None:
        raw = kv.get(L.key_prm(prm))
        return prm.encode() if raw is not None and decode_value(raw) == addr else None
    for key, raw in kv.iter_prefix(L.PRM):
        if decode_value(raw) == addr:
            return key[len(L.PRM):]
    return None


__all__ = ["BY_PRM_PREFIXES", "INDEX_PREFIXES", "compute_index_entry", "compute_prm_tag", "derive_index_key",
           "find_prm_tag", "get_resalted_by_prm", "key_by_prm_entry", "key_consent_at", "key_consent_entry", "key_consent_of",
           "key_meter_entry", "key_meter_of", "key_prm_entry", "key_prm_entry_of", "key_prm_of",
           "key_reconcile_stats_at", "key_reconcile_stats_entry", "key_reconcile_stats_of", "read_index_key"]
