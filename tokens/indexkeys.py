"""The keys of the meter and delivery-point indexes (docs/privacy.md "What stays in the state").

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
same for the chain's whole life and a cut keeps every lookup working. Pure: no I/O.
"""

from __future__ import annotations

import functools
import hashlib
from typing import TYPE_CHECKING

from tokens import layout as L
from tokens.sealing import Getter, Keyring, MissingCommuneKey, read_aggregate_key

if TYPE_CHECKING:
    from tokens.ledger import Ledger

INDEX_KEY_PERSON = b"vsn/index-key"     # the index key, from the aggregate key
INDEX_ENTRY_PERSON = b"vsn/index-entry"  # an entry's hashed serial or PRM, under the index key
INDEX_PREFIXES = (L.METER, L.PRM)


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


def key_meter_of(lg: Ledger, meter: str) -> bytes:
    """The ``meter/`` entry of ``meter`` in the state ``lg`` applies to."""
    return key_meter_entry(lg.ov.get, lg.keys, lg.genesis.seals_payloads, meter)


def key_prm_of(lg: Ledger, prm: str) -> bytes:
    """The ``prm/`` entry of ``prm`` in the state ``lg`` applies to."""
    return key_prm_entry(lg.ov.get, lg.keys, lg.genesis.seals_payloads, prm)


__all__ = ["INDEX_PREFIXES", "compute_index_entry", "derive_index_key", "key_meter_entry", "key_meter_of",
           "key_prm_entry", "key_prm_of", "read_index_key"]
