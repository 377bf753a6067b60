"""Who may read what through the HTTP API (issue 20; docs/privacy.md "Who sees what
through the API").

Every row of the route table (node/api/routes.py) names one access class below, and
/openapi.json shows it (``x-access`` on each operation, ``x-access-classes`` at the top).
The classes follow the issue's model: the mairie, as the organising body (PMO) of the
collective self-consumption operation, runs the validators and sees the members' data;
a household sees its own; everyone sees aggregates, the treasury, the funds and
governance; nobody else sees a household's curve, balances or trades unless the
household grants it (the consent routes).

Who asks is told by the request (``identify``):
- the **operator**: ``Authorization: Bearer <the node's --api-token>`` (node/api/auth.py);
- a **household**: a request signed by its Ed25519 key (node/consent/signed.py). A
  household's own node serves only that household; a validator's or any other node
  serves each registered household its own data by its signature;
- a **registrar** of the chain, by its signature: it reads the records it registered
  (meter, PRM, label, powers), not balances or curves;
- anyone else: the public.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from node.api.auth import verify_bearer
from node.consent.signed import ReplayGuard, SignatureRefused, is_signed, read_signer
from tokens import layout as L
from tokens.kv import decode_value
from tokens.queries import get_height, get_household
from tokens.ledger import is_registrar_at

PUBLIC = "public"
REDACTED = "redacted"
HOUSEHOLD = "household"
OWN = "own"
GRANT = "grant"
CLIENT = "client"
LOCAL = "local"

ACCESS_CLASSES: dict[str, str] = {
    PUBLIC: "Anyone: aggregates, treasury, funds, governance, validators, block headers, node status.",
    REDACTED: "Anyone, but what a household keeps private (balances, gifts, meter, PRM, label, readings, trades, "
              "payouts) is left out unless the request is signed by that household's key or carries the "
              "operator's API token; a registrar's signature shows the household records it registered.",
    HOUSEHOLD: "Only the household the path names, by a request signed with its key (a household's own node "
               "serves only that household), or the operator's API token. 401 unsigned, 403 signed by "
               "another key.",
    OWN: "Only this node's own household, by a request signed with its key (consents live on the "
         "household's node).",
    GRANT: "This node's household by a signed request, or a third party with an OAuth2 bearer token of a "
           "grant holding the route's scope and usage point.",
    CLIENT: "An OAuth2 client, by its client credentials.",
    LOCAL: "A client on this machine (loopback), or the operator's API token: writes and the backup.",
}
# The operator (the API token) reads every route in full: on the mairie's validators, the
# PMO's view. Only it reads the entries no household owns and no aggregate rule covers
# (proofs of per-interval sums, meters, PRMs, offers, payouts) and who used whose energy.
TOKEN_HINT = "the operator's API token (Authorization: Bearer <token>)"
SIGN_HINT = ("sign the request with the household's key (X-Voisinage-Key, -Time, -Nonce, -Signature; "
             "`voisinage ... --key KEY` and the dashboard do it)")


class AccessRefused(Exception):
    """A request this class of route does not serve to whoever asked; ``status`` 401 or 403."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Viewer:
    """Who asks: the operator, a household or registrar by its signature, or the public."""

    operator: bool = False
    signer: bytes | None = None         # the verified key of a signed request
    registrar: bool = False             # ``signer`` is a registrar key at this height
    token_configured: bool = False      # does the node run with --api-token at all
    served: bool = True                 # False: another household's node, which serves only its own

    def may_read(self, owner: bytes | None) -> bool:
        """May this viewer read what belongs to ``owner`` (a household's key)?"""
        return self.operator or (self.served and owner is not None and self.signer == owner)

    def may_read_records(self, owner: bytes | None) -> bool:
        """Household records (meter, PRM, label, kVA, kWc): the household, the operator, a registrar."""
        return self.registrar or self.may_read(owner)

    def require(self, owner: bytes | None, what: str) -> None:
        """Raise ``AccessRefused`` unless this viewer may read ``owner``'s ``what``."""
        if self.may_read(owner):
            return
        if self.signer is None:
            raise AccessRefused(401, f"{what} is private: {SIGN_HINT}, or send {TOKEN_HINT}")
        if not self.served:
            raise AccessRefused(403, "this is another household's node: it serves only its own household's "
                                     "data; ask your own node or a validator's")
        raise AccessRefused(403, f"{what} is private and this request is signed by {self.signer.hex()[:16]}…, "
                                 "not by the household it belongs to")

    def require_operator(self, what: str) -> None:
        if self.operator:
            return
        if not self.token_configured:
            raise AccessRefused(403, f"{what} is for the node's operator only, and this node runs without "
                                     "--api-token")
        raise AccessRefused(401 if self.signer is None else 403, f"{what} needs {TOKEN_HINT}")


PUBLIC_VIEWER = Viewer()


class Gate:
    """Tells who asks and refuses what the route's class does not serve them."""

    def __init__(self, node: Any, token: str | None, guard: ReplayGuard,
                 wall: Callable[[], float] = time.time, reads: Any = None) -> None:
        # ``reads``: where privileged reads are logged (node/consent/store.py), None: nowhere.
        self.node, self.token, self.guard, self.wall, self.reads = node, token, guard, wall, reads

    def log_read(self, access: str, viewer: Viewer, args: Mapping[str, Any], request: Request, status: int) -> None:
        """Log what the operator or a registrar read of a household's data (and its answer)."""
        read = get_privileged_read(access, viewer, args)
        if read is None or self.reads is None:
            return
        who, household = read
        self.reads.append_read({
            "t": int(self.wall()), "who": who,
            "registrar": viewer.signer.hex() if who == "registrar" else None,
            "method": request.method, "path": request.url.path, "query": request.url.query,
            "household": household.hex() if household is not None else None, "status": status,
        }, household)

    def is_registrar(self, signer: bytes) -> bool:
        """Is ``signer`` a registrar key in force at the next height?"""
        with self.node.store.snapshot() as snap:
            raw = snap.state.get(L.key_registrar(signer))
            return raw is not None and is_registrar_at(decode_value(raw), get_height(snap.state) + 1)

    def is_household_node(self) -> bool:
        """Is this node's own key a registered household (a household's own node)?"""
        with self.node.store.snapshot() as snap:
            return get_household(snap.state, self.node.key.public) is not None

    def identify(self, request: Request) -> Viewer:
        """The viewer of a request; credentials that are given must be good (401 if not)."""
        header = request.headers.get("authorization")
        operator = False
        if header is not None:
            if self.token is None or not verify_bearer(header, self.token):
                raise AccessRefused(401, "wrong or unknown API token: send the token the node runs with "
                                         "(--api-token), or no Authorization header")
            operator = True
        if not is_signed(request.headers):
            return Viewer(operator=operator, token_configured=self.token is not None)
        try:
            signer = read_signer(request.headers, request.method, request.url.path, request.url.query,
                                 int(self.wall()), self.guard)
        except SignatureRefused as exc:
            raise AccessRefused(401, str(exc)) from None
        # A household's own node serves only that household; any other node, every household.
        served = signer == self.node.key.public or not self.is_household_node()
        return Viewer(operator=operator, signer=signer, registrar=self.is_registrar(signer),
                      token_configured=self.token is not None, served=served)

    def check(self, access: str, viewer: Viewer, args: Mapping[str, Any]) -> None:
        """Refuse (AccessRefused) what ``access`` does not serve ``viewer``: a household
        route, to all but its household and the operator. REDACTED routes answer each
        viewer its part (node/api/private.py); OWN, GRANT, CLIENT and LOCAL are checked
        by their handlers (node/api/consent.py) and the write guard (node/api/auth.py)."""
        if access == HOUSEHOLD:
            viewer.require(args["addr"], "a household's data")


def get_privileged_read(access: str, viewer: Viewer, args: Mapping[str, Any]) -> tuple[str, bytes | None] | None:
    """docs/privacy.md "Privileged reads": (who, the household named or None) when the
    operator's token or a registrar's signature reads a route with a household's data
    (HOUSEHOLD and REDACTED classes); None for every other request, a household's own
    reads included."""
    if access not in (HOUSEHOLD, REDACTED) or not (viewer.operator or viewer.registrar):
        return None
    household = args.get("addr")
    if viewer.signer is not None and viewer.signer == household:
        return None
    return ("operator" if viewer.operator else "registrar"), household


def get_identified_classes() -> frozenset[str]:
    """The classes whose routes the gate identifies the viewer of (the others authenticate
    in their handlers, with a replay guard the gate must not spend first)."""
    return frozenset({PUBLIC, REDACTED, HOUSEHOLD})
