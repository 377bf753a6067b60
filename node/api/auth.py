"""Who may write: DESIGN §9 serves on 127.0.0.1; writes from elsewhere need a token.

Reads are public (the ledger is public). ``POST /tx`` is accepted from a loopback
client; from any other address only when the node runs with ``--api-token`` and the
request carries ``Authorization: Bearer <token>``. Behind a reverse proxy on the same
machine every client looks local: such a proxy must do its own authentication.
"""

from __future__ import annotations

import hmac
import ipaddress

from starlette.exceptions import HTTPException
from starlette.requests import Request


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1, and IPv4-mapped loopback; anything unparseable is not."""
    if not host:
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def verify_bearer(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def verify_write_allowed(request: Request, token: str | None) -> None:
    """Raise 403 (no token configured) or 401 (wrong or missing token) for a remote writer."""
    if is_loopback(request.client.host if request.client else None):
        return
    if token is None:
        raise HTTPException(403, "writes are accepted from this machine only; "
                                 "run the node with --api-token to accept remote clients")
    if not verify_bearer(request.headers.get("authorization"), token):
        raise HTTPException(401, "a remote write needs the header Authorization: Bearer <api token>",
                            headers={"WWW-Authenticate": "Bearer"})
