"""Domain-separated Ed25519 signatures (DESIGN §2).

Signed bytes are ``b"voisinage/1/" + chain_id + b"/" + type_tag + b"/" + body``, so a
signature cannot be replayed in another commune or as another message type.
Key generation needs randomness, so it lives in node/; here a key comes from a seed.
"""

from __future__ import annotations

import dataclasses

import nacl.bindings
import nacl.exceptions

from wire.message import Message

DOMAIN = b"voisinage/1/"


def signing_bytes(chain_id: bytes, msg: Message) -> bytes:
    return DOMAIN + chain_id + b"/" + msg.TAG.encode() + b"/" + msg.body()


# A 64-byte signature as the encoding's last item: msgpack bin 8, length 64.
_SIG_ITEM_HEAD = b"\xc4\x40"
_SIG_ITEM_LEN = 2 + 64


def slice_signing_bytes(chain_id: bytes, msg: Message, data: bytes) -> bytes:
    """``signing_bytes(chain_id, msg)`` where ``data`` is ``msg``'s encoding (as strict
    decoding leaves it: canonical): when the one signature is the last field, the body is
    ``data`` less that last item, with the array's length one less, cut out rather than
    encoded again. Any other message is encoded as ``signing_bytes`` does."""
    head = msg._SIG_LAST_HEAD
    if head and data[0] == head and data[-_SIG_ITEM_LEN:-64] == _SIG_ITEM_HEAD:
        return DOMAIN + chain_id + b"/" + msg.TAG.encode() + b"/" + bytes((head - 1,)) + data[1:-_SIG_ITEM_LEN]
    return signing_bytes(chain_id, msg)


class Keypair:
    """An Ed25519 key pair derived from a 32-byte seed."""

    __slots__ = ("seed", "public", "_secret")

    def __init__(self, seed: bytes) -> None:
        if type(seed) is not bytes or len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        self.seed = seed
        self.public, self._secret = nacl.bindings.crypto_sign_seed_keypair(seed)

    def sign(self, data: bytes) -> bytes:
        return nacl.bindings.crypto_sign(data, self._secret)[:64]

    def __repr__(self) -> str:
        return f"Keypair(public={self.public.hex()})"


def verify_signature(public: bytes, data: bytes, sig: bytes) -> bool:
    """True iff ``sig`` is ``public``'s signature of ``data``. Never raises."""
    if len(public) != 32 or len(sig) != 64:
        return False
    try:
        nacl.bindings.crypto_sign_open(sig + data, public)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        return False
    return True


def sign_message(msg: Message, chain_id: bytes, key: Keypair, sig_field: str = "sig") -> Message:
    """Return ``msg`` with ``sig_field`` set to ``key``'s signature of its body."""
    return dataclasses.replace(msg, **{sig_field: key.sign(signing_bytes(chain_id, msg))})


def verify_message(msg: Message, chain_id: bytes, encoded: bytes | None = None) -> bool:
    """Check every (key field, signature field) pair the message type declares.
    ``encoded``: ``msg``'s own canonical encoding, if at hand (see slice_signing_bytes)."""
    if not msg.SIGNERS:
        return False
    data = signing_bytes(chain_id, msg) if encoded is None else slice_signing_bytes(chain_id, msg, encoded)
    return all(verify_signature(getattr(msg, k), data, getattr(msg, s)) for k, s in msg.SIGNERS)
