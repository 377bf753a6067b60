"""Requests signed by the household's Ed25519 key: how the household reads its own data
and manages its consents on its node, without any password or token.

The client sends four headers: ``X-Voisinage-Key`` (the public key, hex),
``X-Voisinage-Time`` (unix seconds), ``X-Voisinage-Nonce`` (16 random bytes, hex: two
identical reads in one second are two requests) and ``X-Voisinage-Signature`` (hex) over
``b"voisinage/1/http:" + method + "\\n" + path + "\\n" + query + "\\n" + time + "\\n" + nonce``. The
prefix keeps these signatures apart from every ledger signature (DESIGN §2, whose
prefix goes on with the chain id). A signature is good for ``WINDOW_S`` either side of
the node's clock, and only once: the node remembers the signatures it took until they
are out of the window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from wire import Keypair, verify_signature

DOMAIN = b"voisinage/1/http:"
KEY_HEADER, TIME_HEADER, SIG_HEADER = "x-voisinage-key", "x-voisinage-time", "x-voisinage-signature"
NONCE_HEADER = "x-voisinage-nonce"
NONCE_BYTES = 16
WINDOW_S = 60
MAX_REMEMBERED = 100_000        # signatures remembered at once; beyond it, new ones are refused


class SignatureRefused(Exception):
    """A signed request the node does not take; the message says why (HTTP 401)."""


def compute_signed_bytes(method: str, path: str, query: str, t: int, nonce: bytes) -> bytes:
    return DOMAIN + "\n".join((method.upper(), path, query, str(t), nonce.hex())).encode()


def sign_request(key: Keypair, method: str, path: str, query: str, t: int, nonce: bytes) -> dict[str, str]:
    """The headers of a request signed at unix time ``t`` with a fresh random ``nonce``."""
    sig = key.sign(compute_signed_bytes(method, path, query, t, nonce))
    return {KEY_HEADER: key.public.hex(), TIME_HEADER: str(t), NONCE_HEADER: nonce.hex(), SIG_HEADER: sig.hex()}


def is_signed(headers: Mapping[str, str]) -> bool:
    return any(name in headers for name in (KEY_HEADER, TIME_HEADER, NONCE_HEADER, SIG_HEADER))


@dataclass
class ReplayGuard:
    """The signatures taken in the last window, each with the time it leaves it."""

    seen: dict[bytes, int] = field(default_factory=dict)

    def forget_expired(self, now: int) -> None:
        for sig in [s for s, until in self.seen.items() if until < now]:
            del self.seen[sig]

    def check_and_remember(self, sig: bytes, t: int, now: int) -> None:
        if sig in self.seen:
            raise SignatureRefused("this signed request was already used: sign each request afresh")
        if len(self.seen) >= MAX_REMEMBERED:
            raise SignatureRefused("too many signed requests in the last minute: try again shortly")
        self.seen[sig] = t + WINDOW_S


def parse_hex(text: str | None, size: int, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text or "")
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise SignatureRefused(f"header {what} must be {2 * size} hex characters")
    return raw


def read_signer(headers: Mapping[str, str], method: str, path: str, query: str, now: int, guard: ReplayGuard,
                only: bytes | None = None) -> bytes:
    """The key that signed the request, once its signature, its time (within the window
    of ``now``) and its freshness are checked; else ``SignatureRefused``. With ``only``,
    any other key is refused before its signature is even checked (a node serving one
    household); without it the caller decides what the signer may read (node/api/access.py)."""
    guard.forget_expired(now)
    key = parse_hex(headers.get(KEY_HEADER), 32, KEY_HEADER)
    sig = parse_hex(headers.get(SIG_HEADER), 64, SIG_HEADER)
    nonce = parse_hex(headers.get(NONCE_HEADER), NONCE_BYTES, NONCE_HEADER)
    text = headers.get(TIME_HEADER) or ""
    if not text.isdigit() or len(text) > 12:
        raise SignatureRefused(f"header {TIME_HEADER} must be unix seconds")
    t = int(text)
    if abs(t - now) > WINDOW_S:
        raise SignatureRefused(f"the signed time is {t - now:+d} s from the node's clock (at most ±{WINDOW_S} s): "
                               "check this computer's clock")
    if only is not None and key != only:
        raise SignatureRefused("signed by a key that is not this node's household")
    if not verify_signature(key, compute_signed_bytes(method, path, query, t, nonce), sig):
        raise SignatureRefused("bad signature over this method, path, query and time")
    guard.check_and_remember(sig, t, now)
    return key


def verify_signed_request(headers: Mapping[str, str], method: str, path: str, query: str, now: int,
                          household: bytes, guard: ReplayGuard) -> None:
    """Raise ``SignatureRefused`` unless the request is signed by ``household``'s key,
    within the window of ``now``, and was not seen before."""
    read_signer(headers, method, path, query, now, guard, only=household)


def sign_target(key: Keypair, method: str, target: str, t: int, nonce: bytes) -> dict[str, str]:
    """The headers of ``method target`` (a path with its query, as sent) signed at ``t``."""
    path, _, query = target.partition("?")
    return sign_request(key, method, path, query, t, nonce)
