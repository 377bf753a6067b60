"""The commune data keys a node holds, and what they open (docs/privacy.md "Sealed payloads").

A ``Keyring`` is the one secret input of the ledger on a chain that seals payloads: the
commune data key's secret of each epoch this node may open. A validator builds it from
its own sealed copies in the state and its Ed25519 seed (``compute_keyring``); a node
without it cannot apply a sealed block nor compute such a chain's state root
(``MissingCommuneKey``, never a verdict on the block). The keyring also caches what it
opened: each household's data key and salt (by its sealed bytes), and each envelope's
inner tx (by the envelope's id). Both are content-addressed, so a block thrown away
leaves nothing wrong behind.

A cut (docs/privacy.md "Erasure") starts an epoch that links back to nothing: the
holders then delete the older secrets (``Keyring.forget_before``), and a surviving
household's older data key opens through its copy wrapped under the cut epoch in the
state (``open_any_household_key``).

A holder's copies are sealed to its *receive keys* (docs/privacy.md "Receive keys"):
X25519 key pairs kept apart from its identity key, which it publishes
(``SetReceiveKey``) and deletes at the next cut (``Keyring.forget_receive_before``), so
that its identity key, which it keeps to sign, opens no epoch before the cut. A copy
sealed to the identity key (a holder that published none) opens with its seed.

Leaf salts (``make_salt_of``): an entry a household owns (tokens/layout.py
``get_key_owner``) is hashed into the state tree with the salt the household published
in its sealed data key, once it has published one (until then, a key a household moved
to takes its former key's salt through its ``slk/`` link); an interval record not (yet) public,
the pools and the registrar's euro records with a salt derived from the commune key
(``get_aggregate_salt``); the ``meter/`` and ``prm/`` index entries and the open offers
with the salt of the household their value names; b"" otherwise.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tokens import layout as L
from tokens.genesis import Genesis
from tokens.kv import KV, decode_value
from tokens.statetree import SaltOf, no_salt
from tokens.txs import (
    COMMUNE_SEALABLE_SET, SEALABLE_TYPES, CommuneSealed, MeterReading, Sealed, SealedCosigned, SetDataKey, Tx,
    decode_sealable,
)
from wire import Keypair, sign_message
from wire.crypto import signing_bytes
from wire.seal import (
    AGGREGATE_LABEL, KEY_LEN, NO_LINK, SEALED_COSIG_LEN, SealError, compute_commune_public, compute_payload_mac,
    compute_wrap_label, derive_aggregate_key, derive_household_keys, open_commune_secret, open_data_key, open_link,
    open_payload, open_receive_secret, seal_data_key, seal_holder_secret, seal_payload, seal_to_commune,
    unwrap_under_cut,
)

MAX_OPENED = 50_000      # inner txs kept by envelope id: a full mempool (node/service/mempool.py)
AGGREGATE_SALT_PERSON = b"vsn/aggregate-s"


class MissingCommuneKey(RuntimeError):
    """This node holds no secret of the epoch a seal needs: it cannot apply the chain.
    Not the tx's fault, so never an ``InvalidTx`` of a block."""


class Keyring:
    """Commune secrets by epoch, with caches of what they opened."""

    def __init__(self, secrets: dict[int, bytes] | None = None, holder: tuple[bytes, bytes] | None = None,
                 receive: dict[bytes, bytes] | None = None) -> None:
        self.secrets: dict[int, bytes] = dict(secrets or {})
        # (Ed25519 seed, public key) of the holder whose copies these are: a cut opens
        # the new epoch's copy while the block applies (rules_seal.process_cut).
        self.holder = holder
        # The holder's receive keys, X25519 public -> secret, and the earliest epoch each
        # opened a copy of (docs/privacy.md "Receive keys").
        self.receive: dict[bytes, bytes] = dict(receive or {})
        self.receive_used: dict[bytes, int] = {}
        self.aggregate_key: bytes | None = None
        self._household: dict[tuple[bytes, int], tuple[bytes, bytes, bytes]] = {}
        self.opened: OrderedDict[bytes, Tx] = OrderedDict()

    def __repr__(self) -> str:
        return f"Keyring(epochs={sorted(self.secrets)})"

    def get_secret(self, epoch: int) -> bytes:
        secret = self.secrets.get(epoch)
        if secret is None:
            raise MissingCommuneKey(f"this node holds no commune data key of epoch {epoch}")
        return secret

    def open_household_key(self, addr: bytes, epoch: int, sealed: bytes) -> tuple[bytes, bytes]:
        """(data key, salt) of ``addr``'s sealed data key of ``epoch``; raises ``SealError``."""
        cached = self._household.get((addr, epoch))
        if cached is not None and cached[0] == sealed:
            return cached[1], cached[2]
        data_key, salt = open_data_key(self.get_secret(epoch), sealed)
        self._household[(addr, epoch)] = (sealed, data_key, salt)
        return data_key, salt

    def peek_household_key(self, addr: bytes, epoch: int, sealed: bytes) -> bytes | None:
        """The data key of ``addr``'s ``sealed`` data key of ``epoch`` if this keyring has
        opened it already, else None. Reads only (one dict lookup): worker threads call
        it while the node's own thread may update the keyring (node/service/txcheck.py)."""
        cached = self._household.get((addr, epoch))
        return cached[1] if cached is not None and cached[0] == sealed else None

    def recall_household_key(self, addr: bytes, epoch: int, sealed: bytes) -> tuple[bytes, bytes] | None:
        """(data key, salt) of ``sealed`` if this keyring opened it already, else None."""
        cached = self._household.get((addr, epoch))
        return (cached[1], cached[2]) if cached is not None and cached[0] == sealed else None

    def remember_household_key(self, addr: bytes, epoch: int, sealed: bytes, data_key: bytes, salt: bytes) -> None:
        """What ``open_data_key`` gave for ``sealed`` elsewhere (a worker thread)."""
        self._household[(addr, epoch)] = (sealed, data_key, salt)

    def forget_household(self, addr: bytes) -> int:
        """Drop what this keyring opened of ``addr`` (its data keys of every epoch, its
        opened txs): after its erasure (docs/privacy.md "Erasure"). Returns how many."""
        household = [k for k in self._household if k[0] == addr]
        opened = [tx_id for tx_id, inner in self.opened.items() if inner.signer == addr]
        for k in household:
            del self._household[k]
        for tx_id in opened:
            del self.opened[tx_id]
        return len(household) + len(opened)

    def forget_before(self, epoch: int) -> list[int]:
        """Delete the secrets of the epochs before ``epoch`` (a cut), and what they opened
        of households' data keys; returns the epochs deleted."""
        gone = sorted(e for e in self.secrets if e < epoch)
        for e in gone:
            del self.secrets[e]
        for k in [k for k in self._household if k[1] < epoch]:
            del self._household[k]
        return gone

    def forget_receive_before(self, epoch: int) -> list[bytes]:
        """Delete the receive keys that opened a copy of an epoch before ``epoch`` (a cut,
        whose copies went to receive keys never used before it); returns their publics."""
        gone = sorted(public for public, used in self.receive_used.items() if used < epoch)
        for public in gone:
            self.receive.pop(public, None)
            del self.receive_used[public]
        return gone

    def open_copy(self, epoch: int, sealed: bytes, commune_public: bytes, receive: Any = ...) -> bytes | None:
        """The secret of ``epoch`` in this holder's ``sealed`` copy, if it opens to the
        epoch's ``commune_public``: with the receive key ``receive`` names (None: the
        identity key), or by default with each receive key held, then the identity key.
        Records which receive key opened it; None if nothing does."""
        if receive is ...:
            tries = sorted(self.receive) + [None]
        else:
            tries = [receive] if receive is None or receive in self.receive else []
        for public in tries:
            if public is None and self.holder is None:
                continue
            try:
                secret = (open_commune_secret(self.holder[0], sealed) if public is None
                          else open_receive_secret(self.receive[public], sealed))
            except SealError:
                continue
            if compute_commune_public(secret) != commune_public:
                continue
            if public is not None:
                self.receive_used[public] = min(epoch, self.receive_used.get(public, epoch))
            return secret
        return None

    def get_aggregate_salt(self, key: bytes) -> bytes:
        """The leaf salt of an aggregate entry the public may not read (an ``int/`` record
        not yet public, the pools), or of a euro record (``payout/``, ``debtpay/``): keyed BLAKE2b of the state key under the
        aggregate key (``read_aggregate_key``: derived from epoch 0's secret, carried
        across a cut in the state). Fixed for the key's life, as a household's salt is,
        so a rebuild finds the same leaf."""
        if self.aggregate_key is None:
            raise MissingCommuneKey("this node holds no aggregate key of the commune data key")
        return hashlib.blake2b(key, digest_size=32, key=self.aggregate_key, person=AGGREGATE_SALT_PERSON).digest()

    def remember_opened(self, tx_id: bytes, inner: Tx) -> None:
        opened = self.opened
        opened[tx_id] = inner
        if len(opened) > MAX_OPENED:
            opened.popitem(last=False)


def compute_keyring(kv: KV, ed25519_seed: bytes, public: bytes, keyring: Keyring | None = None,
                    receive: dict[bytes, bytes] | None = None) -> Keyring:
    """The secrets ``public`` (a validator's key, seed ``ed25519_seed``, receive keys
    ``receive``: X25519 public -> secret) can open in ``kv``: each epoch sealed to it, and
    every earlier one through the epochs' links. A copy that does not open, or opens to
    a secret of another public key, is skipped. Updates and returns ``keyring`` when
    given (its caches stay)."""
    keyring = keyring or Keyring()
    keyring.holder = (ed25519_seed, public)
    keyring.receive.update(receive or {})
    epochs = {L.from_u64(key[len(L.DATA_KEY):]): decode_value(raw) for key, raw in kv.iter_prefix(L.DATA_KEY)}
    for epoch in sorted(epochs, reverse=True):
        if epoch in keyring.secrets:
            continue
        raw = kv.get(L.key_data_key_sealed(epoch, public))
        if raw is None:
            continue
        secret = keyring.open_copy(epoch, decode_value(raw), epochs[epoch][0])
        if secret is not None:
            keyring.secrets[epoch] = secret
    _walk_links(keyring, epochs)
    return keyring


def compute_genesis_keyring(genesis: Genesis, ed25519_seed: bytes, public: bytes,
                            receive: dict[bytes, bytes] | None = None) -> Keyring:
    """The commune secret of epoch 0 that ``public`` (a genesis validator) opens from the
    genesis file itself, before any state exists: it opens the sealed genesis households
    (``genesis_writes``). Its copy is sealed to the receive key the genesis names for it
    (one of ``receive``), or else to its identity key. Empty for any other key, or on a
    chain that does not seal."""
    keyring = Keyring(holder=(ed25519_seed, public), receive=receive)
    sealing = genesis.sealing
    if sealing is None:
        return keyring
    for index, (validator, sealed) in enumerate(zip(genesis.validators, sealing.sealed)):
        if validator.key == public:
            secret = keyring.open_copy(0, sealed, sealing.public, sealing.get_receive(index))
            if secret is not None:
                keyring.secrets[0] = secret
    return keyring


def read_receive_keys(kv: KV) -> dict[bytes, tuple[bytes, int | None]]:
    """Each holder's published receive key: holder -> (X25519 public, epoch first sealed
    to it or None) (docs/privacy.md "Receive keys")."""
    out = {}
    for key, raw in kv.iter_prefix(L.RECEIVE_KEY):
        record = decode_value(raw)
        out[key[len(L.RECEIVE_KEY):]] = (record[L.RK_PUBLIC], record[L.RK_USED])
    return out


def seal_to_holders(holders: Sequence[bytes], receive: Mapping[bytes, bytes], secret: bytes,
                    seeds: Sequence[bytes]) -> tuple[tuple[bytes, ...], tuple[bytes | None, ...]]:
    """A new epoch's ``secret`` sealed to each of ``holders`` (one ephemeral seed each):
    to the receive key ``receive`` names for it, or to its identity key. (sealed copies,
    the receive key of each or None), as ``RotateDataKey`` carries them."""
    named = tuple(receive.get(holder) for holder in holders)
    sealed = tuple(seal_holder_secret(holder, public, secret, seed) for holder, public, seed in
                   zip(holders, named, seeds, strict=True))
    return sealed, named


def require_genesis_secret(keys: Keyring | None) -> bytes:
    """The commune secret of epoch 0, which opens a sealed genesis; ``MissingCommuneKey``
    when this node holds none (it cannot compute the genesis state)."""
    if keys is None or 0 not in keys.secrets:
        raise MissingCommuneKey("this genesis seals its households' personal data and this node holds no commune "
                                "data key of epoch 0: it cannot compute the genesis state")
    return keys.secrets[0]


def _walk_links(keyring: Keyring, epochs: dict[int, list]) -> None:
    # An epoch's link boxes the previous epoch's secret under its own: walk back.
    for epoch in sorted(keyring.secrets, reverse=True):
        secret = keyring.secrets[epoch]
        while epoch > 0 and epoch - 1 not in keyring.secrets and epoch in epochs:
            if epochs[epoch][1] in (NO_LINK, b""):
                break       # a cut: no way back (docs/privacy.md "Erasure")
            try:
                older = open_link(secret, epochs[epoch][1])
            except SealError:
                break
            if epoch - 1 not in epochs or compute_commune_public(older) != epochs[epoch - 1][0]:
                break
            epoch, secret = epoch - 1, older
            keyring.secrets[epoch] = secret


# -- leaf salts ------------------------------------------------------------------------------

Getter = Callable[[bytes], Any]     # a state key -> its decoded value, or None


def get_first_data_key(get: Getter, owner: bytes) -> tuple[int, bytes] | None:
    """(epoch, sealed data key) of ``owner``'s earliest published data key, or None."""
    current = get(L.META_DATA_EPOCH)
    for epoch in range(0 if current is None else current + 1):
        sealed = get(L.key_household_data_key(owner, epoch))
        if sealed is not None:
            return epoch, sealed
    return None


def open_any_household_key(get: Getter, keyring: Keyring, addr: bytes, epoch: int,
                           sealed: bytes) -> tuple[bytes, bytes]:
    """(data key, salt) of ``addr``'s ``sealed`` data key of ``epoch``: opened with that
    epoch's secret when this keyring holds it, else (an epoch before the latest cut) from
    its copy wrapped under the cut epoch (``rdk/``). ``SealError`` if it does not open,
    ``MissingCommuneKey`` if this keyring holds neither."""
    if epoch in keyring.secrets:
        return keyring.open_household_key(addr, epoch, sealed)
    known = keyring.recall_household_key(addr, epoch, sealed)
    if known is not None:
        return known
    wrapped, cut = get(L.key_rewrapped_data_key(addr, epoch)), get(L.META_DATA_CUT)
    if wrapped is None or cut is None:
        raise MissingCommuneKey(f"this node holds no commune data key of epoch {epoch}")
    opened = unwrap_under_cut(keyring.get_secret(cut[0]), compute_wrap_label(addr, epoch), wrapped)
    if len(opened) != 2 * KEY_LEN:
        raise SealError("a wrapped data key holds 64 bytes")
    keyring.remember_household_key(addr, epoch, sealed, opened[:KEY_LEN], opened[KEY_LEN:])
    return opened[:KEY_LEN], opened[KEY_LEN:]


def read_aggregate_key(get: Getter, keyring: Keyring) -> bytes:
    """The key the hidden aggregates' salts derive from: from epoch 0's secret, or after
    a cut from its copy wrapped under the cut epoch (``meta/aggregate_key``)."""
    if keyring.aggregate_key is None:
        cut = get(L.META_DATA_CUT)
        if cut is None:
            keyring.aggregate_key = derive_aggregate_key(keyring.get_secret(0))
        else:
            keyring.aggregate_key = unwrap_under_cut(keyring.get_secret(cut[0]), AGGREGATE_LABEL,
                                                     get(L.META_AGGREGATE_KEY))
    return keyring.aggregate_key


def get_salt_source(get: Getter, owner: bytes) -> tuple[bytes, tuple[int, bytes]] | None:
    """(key, its earliest (epoch, sealed data key)) whose salt ``owner``'s leaves take:
    its own once it published a data key; else, for a key a household moved to, the
    former key its salt link names (docs/privacy.md "Moving a household to a new key":
    the move points the link at the key that holds the salt, so one step reaches it);
    None when neither holds one (unsalted leaves)."""
    first = get_first_data_key(get, owner)
    if first is not None:
        return owner, first
    former = get(L.key_salt_link(owner))
    if former is None:
        return None
    first = get_first_data_key(get, former)
    return None if first is None else (former, first)


def read_salt(get: Getter, keyring: Keyring | None, owner: bytes) -> bytes:
    """``owner``'s leaf salt, from its sealed data key, or inherited from the former key
    its salt link names until it publishes one (``get_salt_source``); b"" when neither.
    Read from the state each time (the opening is cached by sealed bytes): a block that
    is thrown away must leave no salt behind."""
    source = get_salt_source(get, owner)
    if source is None:
        return b""
    if keyring is None:
        raise MissingCommuneKey("the state root of a chain that seals payloads needs the commune data key")
    holder, (epoch, sealed) = source
    try:
        salt = open_any_household_key(get, keyring, holder, epoch, sealed)[1]
    except SealError:
        # The ledger stores only data keys that opened (rules_seal): the key is not ours.
        raise MissingCommuneKey(f"the data key of {holder.hex()[:16]}… does not open with this keyring") from None
    return salt


def get_inherited_salt(get: Getter, keyring: Keyring | None, owner: bytes) -> bytes:
    """The salt ``owner``'s leaves inherit through its salt link (b"" when they do not:
    it has a data key of its own, or no link). What a validator hands a household's node
    that holds no data key yet (node/service/lightserve.py): the node cannot derive it
    (it lacks the former key's seed), and a salt that makes the proofs of the household's
    entries reach the header's root is the one the leaves were hashed with."""
    source = get_salt_source(get, owner)
    # The holder's own data key opens it: no second walk of the link.
    return b"" if source is None or source[0] == owner else read_salt(get, keyring, source[0])


def is_hidden_aggregate(key: bytes, value: Any) -> bool:
    """An aggregate entry of a chain that seals that the public may not read: the pools,
    the corrections waiting for enough households (``icor/``), and an interval record
    not settled as public (docs/privacy.md "Public aggregates")."""
    if key in (L.POOL, L.GIFT_POOL) or key.startswith(L.INTERVAL_CORRECTION):
        return True
    return key.startswith(L.INTERVAL) and not L.is_public_interval(value)


# docs/privacy.md "Private state leaves": the indexes that tie a meter serial or a
# delivery point (an address) to a household key are that household's leaves. Their keys
# are hashes under the commune key (tokens/indexkeys.py), their values salted: a proof of
# a neighbouring key shows neither whether a guessed serial or PRM is present nor which
# household is at it.
INDEXES_OWNED_BY_VALUE = (L.METER, L.PRM)
# An open offer (``offer/`` id -> [maker, give class, give, want class, want,
# counterparty, expires]) is its maker's leaf: unsalted, its value hash would confirm a
# guess of who offered how much of what, from known household keys and small amounts.
# Its expiry index (``oexp/`` expires ‖ id -> 1) holds a constant and is not salted.
OFFER_MAKER = 0
# The registrar's euro records (``payout/``, ``debtpay/``) name a household and an amount
# too, but are accounting that outlives the household's erasure, and its salt with it:
# they take the commune's aggregate salt instead (``read_aggregate_salt``: fixed for the
# key's life, carried across a cut in ``meta/aggregate_key``).
EURO_RECORDS = (L.PAYOUT, L.DEBT_PAYMENT)
# A delivery point's consent and reconciliation statistics (``cons/``, ``rcs/``) are keyed
# by the tag of its ``prm/`` entry (tokens/indexkeys.py) and salted with the household that
# entry names: the occupant's, which changes when the entry does (rules_household,
# rules_membership add them to ``Ledger.resalted`` then).
ENTRIES_OWNED_BY_PRM = (L.CONSENT, L.RECONCILE_STATS)


def get_prm_entry_owner(get: Getter, key: bytes) -> Any:
    """The household named by the ``prm/`` entry of the same tag as ``key`` (``cons/`` or
    ``rcs/``), or None (a delivery point nobody occupies)."""
    for prefix in ENTRIES_OWNED_BY_PRM:
        if key.startswith(prefix):
            return get(L.PRM + key[len(prefix):])
    return None


def read_aggregate_salt(get: Getter, keyring: Keyring | None, key: bytes) -> bytes:
    if keyring is None:
        raise MissingCommuneKey("the state root of a chain that seals payloads needs the commune data key")
    read_aggregate_key(get, keyring)
    return keyring.get_aggregate_salt(key)


def get_commune_salt(get: Getter, keyring: Keyring | None, key: bytes, value: Any) -> bytes | None:
    """The commune's salt of ``key``'s leaf when it holds ``value`` (decoded), if that leaf
    takes one (``make_salt_of``: a hidden aggregate, a euro record); None otherwise (a
    household's own entry, salted with what it derives itself, or an unsalted one). One
    key's salt (keyed BLAKE2b of that key) tells nothing of any other leaf: a node may
    hand it to whoever may read the value, so that it can check the value's proof."""
    if key.startswith(EURO_RECORDS) or is_hidden_aggregate(key, value):
        return read_aggregate_salt(get, keyring, key)
    return None


def get_offer_maker(get: Getter, key: bytes) -> Any:
    """The household that made the open offer at ``key``, or None (none there)."""
    offer = get(key)
    return None if offer is None else offer[OFFER_MAKER]


def get_leaf_owner(get: Getter, key: bytes) -> Any:
    """The household whose salt ``key``'s leaf takes, if any: the owner its key names
    (tokens/layout.py ``get_key_owner``), or for the meter and PRM indexes, the offers
    and a delivery point's ``cons/`` and ``rcs/`` entries the one their value names."""
    if key.startswith(INDEXES_OWNED_BY_VALUE):
        return get(key)
    if key.startswith(L.OFFER):
        return get_offer_maker(get, key)
    if key.startswith(ENTRIES_OWNED_BY_PRM):
        return get_prm_entry_owner(get, key)
    return L.get_key_owner(key)


def make_salt_of(get: Getter, keyring: Keyring | None, seals: bool) -> SaltOf:
    """The state tree's salt lookup over a state read by ``get`` (decoded values): a
    household's entries (and the meter and PRM indexes and offers naming it) under its
    salt, hidden aggregates and the euro records under the commune's."""
    if not seals:
        return no_salt
    found: dict[bytes, bytes] = {}

    def salt_of(key: bytes) -> bytes:
        if key in (L.POOL, L.GIFT_POOL) or key.startswith((L.INTERVAL, L.INTERVAL_CORRECTION)):
            return read_aggregate_salt(get, keyring, key) if is_hidden_aggregate(key, get(key)) else b""
        if key.startswith(EURO_RECORDS):
            return read_aggregate_salt(get, keyring, key)
        owner = get_leaf_owner(get, key)
        if owner is None:
            return b""
        salt = found.get(owner)
        if salt is None:
            salt = found[owner] = read_salt(get, keyring, owner)
        return salt
    return salt_of


def make_kv_getter(kv: KV) -> Getter:
    """A ``Getter`` over ``kv``: a state key -> its decoded value (None: absent)."""
    def get(key: bytes) -> Any:
        raw = kv.get(key)
        return None if raw is None else decode_value(raw)
    return get


def make_kv_salt_of(kv: KV, keyring: Keyring | None) -> SaltOf:
    """``make_salt_of`` over committed state (audits, rebuilds, snapshots)."""
    return make_salt_of(make_kv_getter(kv), keyring, kv.get(L.META_DATA_EPOCH) is not None)


# -- the household's side: building and reading its own sealed txs ------------------------------

def build_set_data_key(key: Keypair, chain_id: bytes, nonce: int, epoch: int, commune_public: bytes,
                       ephemeral_seed: bytes) -> SetDataKey:
    """The signed SetDataKey of ``key``'s household for ``epoch`` (derived from its seed)."""
    data_key, salt = derive_household_keys(key.seed, epoch)
    tx = SetDataKey(signer=key.public, nonce=nonce, epoch=epoch,
                    sealed=seal_data_key(commune_public, data_key, salt, ephemeral_seed), sig=bytes(64))
    return sign_message(tx, chain_id, key)


def build_sealed(inner: Tx, key: Keypair, chain_id: bytes, epoch: int, box_nonce: bytes) -> Sealed:
    """``inner`` (signed by its other signers, if any; its ``sig`` is not checked) sealed
    under ``key``'s data key of ``epoch`` and signed by ``key``."""
    if type(inner) not in SEALABLE_TYPES or getattr(inner, "signer", None) != key.public:
        raise ValueError(f"{inner.TAG} is not a household tx of this key that can be sealed")
    data_key, _ = derive_household_keys(key.seed, epoch)
    mac, box = seal_payload(data_key, inner.encode(), box_nonce)
    order = inner.seq if isinstance(inner, MeterReading) else inner.nonce
    return sign_message(Sealed(signer=key.public, nonce=order, epoch=epoch, mac=mac, box=box, sig=bytes(64)),
                        chain_id, key)


def build_sealed_cosigned(inner: Tx, key: Keypair, chain_id: bytes, epoch: int, box_nonce: bytes) -> SealedCosigned:
    """``inner`` (its second signature still empty) sealed as ``build_sealed`` does, in an
    envelope the co-signer completes on its own machine (``add_cosig``)."""
    sealed = build_sealed(inner, key, chain_id, epoch, box_nonce)
    envelope = SealedCosigned(signer=sealed.signer, nonce=sealed.nonce, epoch=epoch, mac=sealed.mac, box=sealed.box,
                              cosig=bytes(SEALED_COSIG_LEN), sig=bytes(64))
    return sign_message(envelope, chain_id, key)


def add_cosig(envelope: SealedCosigned, inner: Tx, cosigner: Keypair, chain_id: bytes, commune_public: bytes,
              ephemeral_seed: bytes) -> SealedCosigned:
    """The co-signer's signature over ``inner`` (the tx it read in clear), sealed to the
    envelope's epoch's commune key. The ledger checks it against the inner tx it opens:
    an envelope holding anything else is refused."""
    sig = cosigner.sign(signing_bytes(chain_id, inner))
    return dataclasses.replace(envelope, cosig=seal_to_commune(commune_public, sig, ephemeral_seed))


def build_commune_sealed(inner: Tx, key: Keypair, chain_id: bytes, epoch: int, commune_public: bytes,
                         ephemeral_seed: bytes) -> CommuneSealed:
    """A registrar tx that names a household's personal data (``COMMUNE_SEALABLE_TYPES``)
    sealed to the commune key of ``epoch``, signed by ``key``."""
    if type(inner) not in COMMUNE_SEALABLE_SET or inner.signer != key.public:
        raise ValueError(f"{inner.TAG} is not a registrar tx of this key that is sealed to the commune")
    box = seal_to_commune(commune_public, inner.encode(), ephemeral_seed)
    return sign_message(CommuneSealed(signer=key.public, nonce=inner.nonce, epoch=epoch, box=box, sig=bytes(64)),
                        chain_id, key)


def open_own_sealed(seed: bytes, tx: Sealed | SealedCosigned) -> Tx:
    """A household reads back one of its own sealed txs; raises ``SealError`` or ``DecodeError``."""
    data_key, _ = derive_household_keys(seed, tx.epoch)
    payload = open_payload(data_key, tx.box)
    if compute_payload_mac(data_key, payload) != tx.mac:
        raise SealError("the payload is not the one the envelope signs")
    return decode_sealable(payload)
