"""The node's libp2p identity: ``p2p.key`` in its home, and peer ids of validators.

A validator's libp2p key is its validator key (from key.json), so the peer id of every
validator can be computed from its key and its multiaddr (genesis, or a
ValidatorSetChange's add_addrs) dialled with Noise checking who answers. An address
that already ends in /p2p/<peer id> names the identity to expect instead: that is how
a running household, whose identity is random, is promoted without a restart. The two signing domains cannot collide: libp2p signs with the
prefixes "noise-libp2p-static-key:", "libp2p-pubsub:" and a peer-record envelope
domain, and we sign b"voisinage/1/..." (DESIGN §2). Other nodes get a random key.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import multiaddr
from libp2p.crypto.ed25519 import Ed25519PublicKey, create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.identity_utils import load_identity, save_identity
from libp2p.peer.id import ID

from node.net.errors import NetSetupError

P2P_KEY_FILE = "p2p.key"


def peer_id_of_key(public_key: bytes) -> str:
    """The libp2p peer id (base58) of a raw 32-byte Ed25519 public key."""
    return ID.from_pubkey(Ed25519PublicKey.from_bytes(public_key)).to_base58()


def _load_existing(path: Path) -> KeyPair:
    try:
        return load_identity(path)
    except (OSError, ValueError) as exc:
        raise NetSetupError(f"corrupt libp2p identity {path}: {str(exc).splitlines()[0][:120]}") from None


def load_or_create_identity(home_dir: Path, seed: bytes | None = None) -> KeyPair:
    """Load ``<home>/p2p.key`` (mode 0600), creating it on first start.

    With ``seed`` (a validator's Ed25519 seed) the key is derived from it, and an
    existing file holding another key is refused: peers could not reach us.
    """
    path = Path(home_dir) / P2P_KEY_FILE
    if path.exists():
        key = _load_existing(path)
        if seed is not None and key.public_key.to_bytes() != create_new_key_pair(seed).public_key.to_bytes():
            raise NetSetupError(f"{path} is not this validator's key; remove it to derive it again")
        if (os.stat(path).st_mode & 0o077) != 0:
            raise NetSetupError(f"{path} is readable by others; run: chmod 600 {path}")
        return key
    if not Path(home_dir).is_dir():
        raise NetSetupError(f"home directory not found: {home_dir}")
    key = create_new_key_pair(seed)
    try:
        save_identity(key, path)
    except OSError as exc:
        raise NetSetupError(f"cannot write {path}: {exc.strerror or exc}") from None
    return key


def is_full_peer_addr(addr: str) -> bool:
    """True iff ``addr`` parses as a multiaddr ending in /p2p/<peer id>."""
    try:
        return multiaddr.Multiaddr(addr).get_peer_id() is not None
    except Exception:  # multiaddr raises several types on garbage; all mean "not valid"
        return False


class ValidatorEntry(Protocol):
    key: bytes
    addr: str


def has_explicit_peer_id(addr: str) -> bool:
    return "/p2p/" in addr


def validator_peer_addr(key: bytes, addr: str) -> str:
    """A validator's full multiaddr: ``addr`` gains /p2p/<peer id of ``key``> unless it
    already carries a peer id."""
    return addr if has_explicit_peer_id(addr) else f"{addr.rstrip('/')}/p2p/{peer_id_of_key(key)}"


def genesis_peer_addrs(validators: Iterable[ValidatorEntry]) -> list[str]:
    """Full multiaddrs of genesis validators (``Genesis.validators``)."""
    return [validator_peer_addr(v.key, v.addr) for v in validators]
