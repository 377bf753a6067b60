"""Sealed payloads: the crypto of docs/privacy.md "Sealed payloads", pure.

Four layers, all libsodium through PyNaCl:

- the **commune data key** of an epoch, an X25519 key pair; its secret travels as a
  *sealed box* (libsodium ``crypto_box_seal``) to each holder's (a validator's, or an
  auditor's appointed by a passed proposal) *receive key*, an X25519 key pair it keeps
  apart from its identity key and deletes at a cut; or, for a holder that published
  none, to its Ed25519 identity key converted to X25519;
- a household's **data key** (32 bytes, XSalsa20-Poly1305 ``secretbox``) and **leaf
  salt** (32 bytes), derived from the household's Ed25519 seed, sealed together to the
  epoch's commune public key;
- a payload **sealed to the commune** (``seal_to_commune``): padded, then a sealed box to
  the epoch's commune public key, for what a registrar or a co-signer must hide and has
  no household data key for (a ``Reconcile``'s official curve, a provider's co-signature);
- a **payload** (an encoded inner tx) padded to a multiple of ``PAD`` bytes and boxed
  under the household's data key; its *payload MAC* is BLAKE2b-256 keyed by the data
  key, so that only a key holder can check it (a plain sha256 of a reading would let
  anyone test guesses of its indexes).

Sealing needs fresh randomness (an ephemeral key, a box nonce): callers pass it in,
as every seed is an argument in the pure packages. ``seal_to`` builds exactly the
bytes of libsodium's sealed box, so ``crypto_box_seal_open`` opens them.
"""

from __future__ import annotations

import hashlib

import nacl.bindings as sodium
import nacl.exceptions

KEY_LEN = 32
BOX_NONCE_LEN = sodium.crypto_secretbox_NONCEBYTES          # 24
BOX_MAC_LEN = sodium.crypto_secretbox_MACBYTES              # 16
SEAL_OVERHEAD = sodium.crypto_box_SEALBYTES                 # 48: ephemeral public key + MAC
SEALED_SECRET_LEN = KEY_LEN + SEAL_OVERHEAD                 # a commune secret sealed to a validator
SEALED_DATA_KEY_LEN = 2 * KEY_LEN + SEAL_OVERHEAD           # a data key and a salt, sealed
LINK_LEN = BOX_NONCE_LEN + KEY_LEN + BOX_MAC_LEN            # an epoch's secret boxed under the next one's
NO_LINK = bytes(LINK_LEN)                                   # a cut: the new epoch links back to nothing
PAD = 64                                                    # payloads are padded to a multiple of this
SIG_LEN = 64
SEALED_COSIG_LEN = 2 * PAD + SEAL_OVERHEAD                  # a signature sealed to the commune (padded to 128)


class SealError(Exception):
    """A seal that does not open: wrong key, tampered bytes or bad padding."""


def _blake2b(data: bytes, key: bytes, person: bytes, size: int = KEY_LEN) -> bytes:
    return hashlib.blake2b(data, digest_size=size, key=key, person=person).digest()


# -- keys ------------------------------------------------------------------------------

def compute_commune_public(secret: bytes) -> bytes:
    """The X25519 public key of a commune secret."""
    return sodium.crypto_scalarmult_base(secret)


def compute_x25519_public(ed25519_public: bytes) -> bytes:
    """A validator's Ed25519 key as the X25519 key a commune secret is sealed to."""
    return sodium.crypto_sign_ed25519_pk_to_curve25519(ed25519_public)


def compute_x25519_secret(ed25519_seed: bytes) -> bytes:
    _, secret = sodium.crypto_sign_seed_keypair(ed25519_seed)
    return sodium.crypto_sign_ed25519_sk_to_curve25519(secret)


def derive_household_keys(seed: bytes, epoch: int) -> tuple[bytes, bytes]:
    """(data key of ``epoch``, leaf salt) of the household whose Ed25519 seed is ``seed``:
    the key file alone restores both. The salt does not depend on the epoch."""
    data_key = _blake2b(epoch.to_bytes(8, "big"), seed, b"vsn-data-key")
    salt = _blake2b(b"", seed, b"vsn-leaf-salt")
    return data_key, salt


# -- sealed boxes (to an X25519 public key) -------------------------------------------

def seal_to(public: bytes, message: bytes, ephemeral_seed: bytes) -> bytes:
    """libsodium's sealed box of ``message`` to ``public``, its ephemeral key pair made
    from ``ephemeral_seed`` (32 fresh random bytes)."""
    eph_public, eph_secret = sodium.crypto_box_seed_keypair(ephemeral_seed)
    nonce = hashlib.blake2b(eph_public + public, digest_size=BOX_NONCE_LEN).digest()
    return eph_public + sodium.crypto_box(message, nonce, public, eph_secret)


def open_sealed(secret: bytes, sealed: bytes) -> bytes:
    """The message of a sealed box to ``secret``'s public key; raises ``SealError``."""
    try:
        return sodium.crypto_box_seal_open(sealed, compute_commune_public(secret), secret)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise SealError("the sealed box does not open with this key") from None


def seal_commune_secret(ed25519_public: bytes, secret: bytes, ephemeral_seed: bytes) -> bytes:
    """A commune secret sealed to one validator's Ed25519 key."""
    return seal_to(compute_x25519_public(ed25519_public), secret, ephemeral_seed)


def open_commune_secret(ed25519_seed: bytes, sealed: bytes) -> bytes:
    secret = open_sealed(compute_x25519_secret(ed25519_seed), sealed)
    if len(secret) != KEY_LEN:
        raise SealError("a sealed commune secret is 32 bytes")
    return secret


def seal_holder_secret(ed25519_public: bytes, receive: bytes | None, secret: bytes, ephemeral_seed: bytes) -> bytes:
    """A commune secret sealed to one holder: to its X25519 ``receive`` key, or to its
    Ed25519 identity key when it published none (None)."""
    if receive is None:
        return seal_commune_secret(ed25519_public, secret, ephemeral_seed)
    return seal_to(receive, secret, ephemeral_seed)


def open_receive_secret(receive_secret: bytes, sealed: bytes) -> bytes:
    """A commune secret sealed to the receive key whose X25519 secret is ``receive_secret``."""
    secret = open_sealed(receive_secret, sealed)
    if len(secret) != KEY_LEN:
        raise SealError("a sealed commune secret is 32 bytes")
    return secret


def seal_data_key(commune_public: bytes, data_key: bytes, salt: bytes, ephemeral_seed: bytes) -> bytes:
    return seal_to(commune_public, data_key + salt, ephemeral_seed)


def open_data_key(commune_secret: bytes, sealed: bytes) -> tuple[bytes, bytes]:
    """(data key, salt) of a household's sealed data key."""
    opened = open_sealed(commune_secret, sealed)
    if len(opened) != 2 * KEY_LEN:
        raise SealError("a sealed data key holds 64 bytes")
    return opened[:KEY_LEN], opened[KEY_LEN:]


# -- the link from one epoch's secret back to the previous one ---------------------------

def _link_key(secret: bytes) -> bytes:
    return _blake2b(b"", secret, b"vsn-epoch-link")


def seal_link(new_secret: bytes, old_secret: bytes, nonce: bytes) -> bytes:
    """``old_secret`` boxed under a key derived from ``new_secret``: whoever holds an
    epoch's secret can walk back to every earlier one, and nobody forward."""
    return nonce + sodium.crypto_secretbox(old_secret, nonce, _link_key(new_secret))


def open_link(new_secret: bytes, link: bytes) -> bytes:
    try:
        old = sodium.crypto_secretbox_open(link[BOX_NONCE_LEN:], link[:BOX_NONCE_LEN], _link_key(new_secret))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise SealError("the epoch link does not open with this secret") from None
    if len(old) != KEY_LEN:
        raise SealError("an epoch link holds a 32-byte secret")
    return old


# -- a cut: keys kept across it, wrapped under the new epoch (docs/privacy.md "Erasure") ------

def _cut_key(cut_secret: bytes) -> bytes:
    return _blake2b(b"", cut_secret, b"vsn-cut-wrap")


def _cut_nonce(label: bytes) -> bytes:
    # Deterministic, so every holder writes the same state; unique per label under one
    # cut's key (a later cut wraps under another key).
    return hashlib.blake2b(label, digest_size=BOX_NONCE_LEN, person=b"vsn-cut-nonce").digest()


def compute_wrap_label(addr: bytes, epoch: int) -> bytes:
    """What a household's data key of ``epoch`` is wrapped under at a cut: its address ‖ epoch."""
    return addr + epoch.to_bytes(8, "big")


AGGREGATE_LABEL = b"aggregate"


def wrap_under_cut(cut_secret: bytes, label: bytes, message: bytes) -> bytes:
    """``message`` boxed under a key derived from the cut epoch's secret, with a nonce
    derived from ``label``: the same bytes on every holder."""
    return sodium.crypto_secretbox(message, _cut_nonce(label), _cut_key(cut_secret))


def unwrap_under_cut(cut_secret: bytes, label: bytes, wrapped: bytes) -> bytes:
    try:
        return sodium.crypto_secretbox_open(wrapped, _cut_nonce(label), _cut_key(cut_secret))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise SealError("the wrapped key does not open with the cut epoch's secret") from None


def derive_aggregate_key(secret0: bytes) -> bytes:
    """The key the hidden aggregates' leaf salts derive from, from epoch 0's secret: a
    cut can carry it into the new epoch without carrying epoch 0's secret."""
    return _blake2b(b"", secret0, b"vsn-aggregate-k")


# -- payloads ------------------------------------------------------------------------------

def seal_to_commune(commune_public: bytes, payload: bytes, ephemeral_seed: bytes) -> bytes:
    """``payload``, padded, in a sealed box to the epoch's commune public key: only the
    holders of that epoch's secret (validators, auditors) open it. The sealer need hold no
    key of its own; what it sealed is bound to it by the signature over the box."""
    return seal_to(commune_public, pad(payload), ephemeral_seed)


def open_from_commune(commune_secret: bytes, box: bytes) -> bytes:
    """The payload of a ``seal_to_commune`` box; raises ``SealError``."""
    return unpad(open_sealed(commune_secret, box))


def compute_payload_mac(data_key: bytes, payload: bytes) -> bytes:
    """What the envelope signs in place of the payload: only data key holders can check it."""
    return _blake2b(payload, data_key, b"vsn-payload")


def pad(payload: bytes) -> bytes:
    """ISO/IEC 7816-4 padding to a multiple of ``PAD``: a box's size tells little of its type."""
    padded = payload + b"\x80"
    return padded + bytes(-len(padded) % PAD)


def unpad(padded: bytes) -> bytes:
    end = padded.rstrip(b"\x00")
    if not end or end[-1] != 0x80 or len(padded) % PAD:
        raise SealError("bad padding")
    return end[:-1]


def seal_payload(data_key: bytes, payload: bytes, nonce: bytes) -> tuple[bytes, bytes]:
    """(payload MAC, box) of ``payload`` under the data key; ``nonce``: 24 fresh bytes."""
    box = nonce + sodium.crypto_secretbox(pad(payload), nonce, data_key)
    return compute_payload_mac(data_key, payload), box


def open_payload(data_key: bytes, box: bytes) -> bytes:
    """The payload in ``box``; raises ``SealError`` if it does not open."""
    if len(box) < BOX_NONCE_LEN + BOX_MAC_LEN:
        raise SealError("a box is shorter than its nonce and MAC")
    try:
        padded = sodium.crypto_secretbox_open(box[BOX_NONCE_LEN:], box[:BOX_NONCE_LEN], data_key)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise SealError("the box does not open with the household's data key") from None
    return unpad(padded)
