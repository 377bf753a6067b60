"""Proven state entries for a household node (docs/privacy.md "Household nodes"), pure.

A household node holds only the entries it shows. It asks a validator for them at a
height h and checks every answer against the state root that the verified header of
h+1 carries (``wire.merkle.verify_proof``): a value it was sent is the value in the
state all validators committed to, and an absence is an absence. A listing under a
prefix proves each entry it holds, not that none was left out; the docs say so.

A household's delivery point entries (``prm/``, ``cons/``, ``rcs/``) are keyed on a
chain that seals by a hash under the commune key (tokens/indexkeys.py), which the
household does not hold: it asks for them by its key (``own_prm``), and the server
proves its ``prm/`` entry, whose value names the household, and the two entries under
the same tag (``verify_by_prm``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from tokens import layout as L
from tokens.indexkeys import key_by_prm_entry
from tokens.kv import decode_value
from tokens.statetree import SaltOf, no_salt
from wire import BOOL, OPT_KEY, SIG, U64, Bytes, List, Message, Nested, Opt, field_of, register
from wire.crypto import verify_message
from wire.merkle import MAX_PROOF_BYTES, verify_proof
from wire.units import Height

MAX_ENTRY_KEY_BYTES = 1024          # state keys are tens of bytes (tokens/layout.py)
MAX_PREFIX_BYTES = 64
MAX_ENTRY_VALUE_BYTES = 64 * 1024   # the largest entry is meta/params' JSON text
MAX_ENTRY_KEYS = 512                # single keys in one request
MAX_ENTRY_PREFIXES = 16
MAX_PREFIX_ENTRIES = 1024           # entries listed under one prefix; more: ``complete`` False
MAX_PEER_ID_BYTES = 64
NONCE_BYTES = 16
BY_PRM_ENTRIES = 3                  # its prm/ entry, then cons/ and rcs/ under the same tag
SALT_BYTES = 32                     # a household's leaf salt (wire/seal.py derive_household_keys)
OWN_BY_PRM = (L.PRM, L.CONSENT, L.RECONCILE_STATS)   # salted with the household the prm/ entry names
# Salted with the household its value names: an offer, by its maker (tokens/sealing.py).
OWN_BY_VALUE = (L.OFFER,)
OWN_NOT_BY_KEY = OWN_BY_PRM + OWN_BY_VALUE
# A request is good this long either side of the server's clock, and its nonce is
# remembered that long: a copy replayed later is refused.
REQUEST_WINDOW_MS = 60_000


class InvalidProof(Exception):
    """An answer that does not check out against the state root; the fault is the peer's."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@register("ls/getentries", version=2)
@dataclass(frozen=True)
class GetEntries(Message):
    """A household node asks for state entries with proofs at ``height``. Signed by the
    household key when it asks for its own entries (``requester``), and bound to the
    asker's libp2p peer id, a time and a fresh nonce, so that a copy replayed by anyone
    else, elsewhere or later is refused (the chain id is in the signed bytes, DESIGN §2).
    Anonymous (no requester, zero signature): only public entries are answered.
    ``own_prm``: also the requester's delivery point entries, which it cannot name."""

    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = (("requester", "sig"),)
    height: Height = field_of(U64)
    keys: tuple[bytes, ...] = field_of(List(Bytes(max=MAX_ENTRY_KEY_BYTES), MAX_ENTRY_KEYS))
    prefixes: tuple[bytes, ...] = field_of(List(Bytes(max=MAX_PREFIX_BYTES), MAX_ENTRY_PREFIXES))
    requester: bytes | None = field_of(OPT_KEY)
    peer: bytes = field_of(Bytes(max=MAX_PEER_ID_BYTES))
    time_ms: int = field_of(U64)
    nonce: bytes = field_of(Bytes(size=NONCE_BYTES))
    sig: bytes = field_of(SIG)
    own_prm: bool = field_of(BOOL, default=False)


@register("ls/entry")
@dataclass(frozen=True)
class ProvenEntry(Message):
    """``key`` holds ``value`` (None: is absent) in the state of the answer's height."""

    key: bytes = field_of(Bytes(max=MAX_ENTRY_KEY_BYTES))
    value: bytes | None = field_of(Opt(Bytes(max=MAX_ENTRY_VALUE_BYTES)))
    proof: bytes = field_of(Bytes(max=MAX_PROOF_BYTES))


@register("ls/prefix")
@dataclass(frozen=True)
class ProvenPrefix(Message):
    """Entries under ``prefix``, each proven present; ``complete`` False when cut short."""

    prefix: bytes = field_of(Bytes(max=MAX_PREFIX_BYTES))
    entries: tuple[ProvenEntry, ...] = field_of(List(Nested(ProvenEntry), MAX_PREFIX_ENTRIES))
    complete: bool = field_of(BOOL)


@register("ls/entries", version=3)
@dataclass(frozen=True)
class ProvenEntries(Message):
    """The answer to a GetEntries: the keys and prefixes asked, in the state after
    ``height``; ``refused`` the keys and prefixes the asker may not read; ``by_prm`` (to
    ``own_prm``) the requester's ``prm/`` entry, then its ``cons/`` and ``rcs/`` entries
    (value or absence), or nothing when the state holds no household record of it.
    ``salt``: to a requester that moved to a new key and has no data key of its own at
    that height, the salt its entries inherit from its former key (docs/privacy.md
    "Moving a household to a new key"), which it cannot derive; b"" otherwise."""

    height: Height = field_of(U64)
    entries: tuple[ProvenEntry, ...] = field_of(List(Nested(ProvenEntry), MAX_ENTRY_KEYS))
    prefixes: tuple[ProvenPrefix, ...] = field_of(List(Nested(ProvenPrefix), MAX_ENTRY_PREFIXES))
    refused: tuple[bytes, ...] = field_of(List(Bytes(max=MAX_ENTRY_KEY_BYTES), MAX_ENTRY_KEYS + MAX_ENTRY_PREFIXES))
    by_prm: tuple[ProvenEntry, ...] = field_of(List(Nested(ProvenEntry), BY_PRM_ENTRIES), default=())
    salt: bytes = field_of(Bytes(max=SALT_BYTES), default=b"")


@dataclass(frozen=True)
class VerifiedEntries:
    """What an answer proved: every key asked (None: absent), and per prefix the entries
    found and whether the list is whole; ``refused`` what the server would not show."""

    values: Mapping[bytes, bytes | None]
    listed: Mapping[bytes, tuple[dict[bytes, bytes], bool]]
    refused: frozenset[bytes]
    # To ``own_prm``: the household's delivery point entries (None: absent), all there
    # are of it (empty when it holds no record); None when not asked.
    by_prm: Mapping[bytes, bytes | None] | None = None


def get_request_fault(req: GetEntries, chain_id: bytes, peer: bytes, now_ms: int) -> str | None:
    """Why a server refuses ``req`` from the libp2p peer ``peer`` at its time ``now_ms``,
    or None. (A replayed nonce is the server's memory to check.)"""
    if req.peer != peer:
        return "the request names another peer"
    if abs(req.time_ms - now_ms) > REQUEST_WINDOW_MS:
        return "the request's time is more than a minute off"
    if req.requester is None:
        return None if req.sig == bytes(64) else "an anonymous request carries a signature"
    if not verify_message(req, chain_id):
        return "bad signature"
    return None


def verify_entry(root: bytes, entry: ProvenEntry, salt_of: SaltOf = no_salt) -> None:
    if not verify_proof(root, entry.key, entry.value, entry.proof, salt_of(entry.key)):
        what = "absence" if entry.value is None else "value"
        raise InvalidProof(f"the proof of the {what} of {entry.key[:40]!r} does not reach the state root")


def verify_prefix(root: bytes, listing: ProvenPrefix, salt_of: SaltOf = no_salt) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for entry in listing.entries:
        if not entry.key.startswith(listing.prefix) or entry.value is None or entry.key in found:
            raise InvalidProof(f"the listing of {listing.prefix!r} holds an entry it should not")
        verify_entry(root, entry, salt_of)
        found[entry.key] = entry.value
    return found


def get_own_salt_of(answer: ProvenEntries, owner: bytes, salt: bytes) -> SaltOf:
    """docs/privacy.md "Private state leaves": ``owner``'s entries are salted with its
    ``salt`` once it has a sealed data key in the state. Whether it has is read from the
    answer's listing of its data keys (proven unsalted, so a server that hides one makes
    every salted proof of the household's entries fail). Before that, a key a household
    moved to takes its former key's salt, which the answer carries (``salt``): it needs
    no trust, since a proof reaches the root only with the salt its leaf was hashed
    with, so a wrong or withheld salt fails the answer and cannot make a wrong value
    pass."""
    prefix = L.HOUSEHOLD_DATA_KEY + owner
    if not any(listing.prefix == prefix and listing.entries for listing in answer.prefixes):
        if not answer.salt:
            return no_salt
        salt = answer.salt

    def salt_of(key: bytes) -> bytes:
        # Its ``prm/`` entry too, salted by the household it names, and the ``cons/`` and
        # ``rcs/`` entries of its tag (tokens/sealing.py): ``verify_by_prm`` accepts only
        # a ``prm/`` entry that names this household. And an offer: a validator answers
        # one only to its maker (tokens/visibility.py), so an offer of another's fails
        # to verify under this salt, as it should.
        return salt if L.get_key_owner(key) == owner or key.startswith(OWN_NOT_BY_KEY) else b""
    return salt_of


def verify_by_prm(root: bytes, own: bytes, household: bytes | None, entries: Sequence[ProvenEntry],
                  salt_of: SaltOf = no_salt) -> dict[bytes, bytes | None]:
    """The delivery point entries of household ``own``, whose record at that height is
    ``household`` (None: absent), answered by its key. None without a record; with one,
    its ``prm/`` entry, proven to name ``own`` (a household has one, for its PRM now: so
    its tag is that PRM's, which the household cannot compute on a chain that seals),
    and the ``cons/`` and ``rcs/`` entries under the same tag, each value or absence
    proven against ``root``."""
    if household is None:
        if entries:
            raise InvalidProof("the answer holds delivery point entries of a household the state does not hold")
        return {}
    if len(entries) != BY_PRM_ENTRIES:
        raise InvalidProof("the answer leaves out the household's delivery point entries")
    index, consent, stats = entries
    try:
        if (consent.key, stats.key) != key_by_prm_entry(index.key):
            raise InvalidProof("the answer's consent and reconciliation entries are not its delivery point's")
        names = index.value is not None and decode_value(index.value) == own
    except (ValueError, TypeError):
        names = False
    if not names:
        raise InvalidProof("the answer's delivery point entry does not name this household")
    for entry in entries:
        verify_entry(root, entry, salt_of)
    return {entry.key: entry.value for entry in entries}


def verify_entries(root: bytes, height: Height, keys: Sequence[bytes], prefixes: Sequence[bytes],
                   answer: ProvenEntries, salt_of: SaltOf = no_salt, own_prm: bytes | None = None) -> VerifiedEntries:
    """Every key and prefix asked is answered (or refused) exactly once, and every value
    and absence is proven against ``root``, the state root after ``height`` (``salt_of``:
    the salt of each key's leaf, ``get_own_salt_of``). ``own_prm``: the household that
    asked for its delivery point entries, whose record must be among ``keys``."""
    if answer.height != height:
        raise InvalidProof(f"asked for the state of height {height}, got {answer.height}")
    refused = frozenset(answer.refused)
    if not refused <= set(keys) | set(prefixes):
        raise InvalidProof("the answer refuses something that was not asked")
    values: dict[bytes, bytes | None] = {}
    for entry in answer.entries:
        if entry.key not in keys or entry.key in values or entry.key in refused:
            raise InvalidProof(f"the answer holds {entry.key[:40]!r} twice or unasked")
        verify_entry(root, entry, salt_of)
        values[entry.key] = entry.value
    listed: dict[bytes, tuple[dict[bytes, bytes], bool]] = {}
    for listing in answer.prefixes:
        if listing.prefix not in prefixes or listing.prefix in listed or listing.prefix in refused:
            raise InvalidProof(f"the answer lists {listing.prefix!r} twice or unasked")
        listed[listing.prefix] = (verify_prefix(root, listing, salt_of), listing.complete)
    missing = [k for k in keys if k not in values and k not in refused]
    missing += [p for p in prefixes if p not in listed and p not in refused]
    if missing:
        raise InvalidProof(f"the answer leaves out {len(missing)} of what was asked, e.g. {missing[0][:40]!r}")
    by_prm = None
    if own_prm is not None:
        record = L.key_household(own_prm)
        if record not in values:
            raise InvalidProof("the household's record was refused: its delivery point entries cannot be judged")
        by_prm = verify_by_prm(root, own_prm, values[record], answer.by_prm, salt_of)
    elif answer.by_prm:
        raise InvalidProof("the answer holds delivery point entries that were not asked")
    return VerifiedEntries(values, listed, refused, by_prm)
