"""The household's own data and its consents over HTTP (issue 20; docs/privacy.md
"Consent and Data Connect"): Data Connect-shaped curves, the OAuth2 endpoints, and the
household's management of clients, grants and the access log.

The household proves itself by signing each request with its key
(node/consent/signed.py); a third party by an OAuth2 bearer token limited to its
grant's scopes, usage point and duration (node/consent/oauth.py). Every Data Connect
read is logged, with who, when, which scope and which dates.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError, MissingAuthorizationError
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from node.api.operations import Call
from node.consent.dataconnect import HALF_S, Measure, PeriodError, compute_period, render_meter_reading
from node.consent.oauth import ConsentServer, Household, HttpRequest, check_token_covers, parse_duration_days
from node.consent.signed import ReplayGuard, SignatureRefused, is_signed, verify_signed_request
from node.consent.store import ConsentError, ConsentStore, compute_secret_hash
from tokens.queries import get_household, get_household_intervals, get_interval_s

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SIGNATURE_CHALLENGE = {"WWW-Authenticate": 'Voisinage-Signature realm="household"'}
PRINTABLE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


def oauth_reply(reply: tuple[int, Any, list[tuple[str, str]]]) -> Response:
    """authlib's (status, body, headers) as a Starlette response."""
    status, body, headers = reply
    if isinstance(body, dict):
        return JSONResponse(body, status_code=status, headers=dict(headers))
    return Response(body or b"", status_code=status, headers=dict(headers))


def oauth_error(exc: OAuth2Error) -> Response:
    """The error as JSON to whoever asked (the household reading a request, or the client)."""
    exc.redirect_uri = None
    status, body, headers = exc()
    return JSONResponse(dict(body), status_code=status, headers=dict(headers))


def error(status: int, code: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An OAuth2-style error: ``error`` is the code, ``error_description`` the sentence."""
    return JSONResponse({"error": code, "error_description": description}, status_code=status, headers=headers)


def to_http_request(request: Request, form: list[tuple[str, str]] = ()) -> HttpRequest:
    """RFC 6749 appendix A: OAuth2 parameters are printable ASCII; we also refuse the quote
    and the backslash, which no parameter of ours needs and no error description may carry."""
    query = parse_qsl(request.url.query, keep_blank_values=True)
    for name, value in [*query, *form]:
        if not PRINTABLE.fullmatch(name + value):
            raise InvalidRequestError("every parameter must be printable ASCII, without quote or backslash")
    return HttpRequest(request.method, str(request.url), request.headers, query, form)


def parse_form(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequestError("the body must be application/x-www-form-urlencoded") from None


def check_redirect_uri(uri: str) -> str | None:
    """RFC 6749 §3.1.2 and RFC 8252 §7.3: an absolute https URI, or http on loopback; no
    fragment; printable ASCII as every OAuth2 parameter here. None if it is one."""
    if not PRINTABLE.fullmatch(uri) or " " in uri:
        return "a redirect URI is printable ASCII, without space, quote or backslash"
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        return "a redirect URI must be an absolute URI"
    if parts.fragment or "#" in uri:
        return "a redirect URI has no fragment"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and host in LOOPBACK_HOSTS:
        return None
    return "a redirect URI is https://..., or http:// on 127.0.0.1, localhost or [::1]"


class ConsentApi:
    """The handlers; ``store`` is None on a node run without a home (unit tests of the API)."""

    def __init__(self, node: Any, store: ConsentStore | None, wall: Callable[[], float] = time.time,
                 guard: ReplayGuard | None = None) -> None:
        self.node, self.store, self.wall = node, store, wall
        self.guard = guard if guard is not None else ReplayGuard()
        self.server = ConsentServer(store, self.now) if store is not None else None

    def now(self) -> int:
        return int(self.wall())

    def read_household(self) -> Household | None:
        """This node's household (its key is the node's), if registered and consents are kept."""
        key = self.node.key.public
        with self.node.store.snapshot() as snap:
            household = get_household(snap.state, key)
        if household is None or self.store is None:
            return None
        return Household(key.hex(), household["prm"])

    def check_household(self, request: Request) -> Household | Response:
        """The node's household, if the request is signed by its key; else the refusal."""
        household = self.read_household()
        if household is None:
            return error(404, "not_found", "this node keeps no consents: it serves no registered household")
        try:
            verify_signed_request(request.headers, request.method, request.url.path, request.url.query,
                                  self.now(), bytes.fromhex(household.address), self.guard)
        except SignatureRefused as exc:
            return error(401, "invalid_request", str(exc), SIGNATURE_CHALLENGE)
        return household

    # -- the household: clients, grants, log -----------------------------------------

    async def add_client(self, call: Call) -> Response:
        household = self.check_household(call.request)
        if isinstance(household, Response):
            return household
        name, uri = call["name"].strip(), call["redirect_uri"]
        problem = check_redirect_uri(uri) if name else "give the client a name"
        if problem is not None:
            return error(400, "invalid_request", problem)
        secret = secrets.token_urlsafe(32)
        client = {"client_id": secrets.token_urlsafe(16), "name": name, "redirect_uri": uri,
                  "secret_sha256": compute_secret_hash(secret), "created": self.now()}
        try:
            self.store.add_client(client)
        except ConsentError as exc:
            return error(409, "invalid_request", str(exc))
        return JSONResponse({"client_id": client["client_id"], "client_secret": secret, "name": name,
                             "redirect_uri": uri, "created": client["created"]}, status_code=201)

    def describe_grant(self, grant: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        status = "revoked" if grant["revoked"] is not None else "expired" if now >= grant["expires"] else "active"
        return dict(grant, status=status)

    async def grants(self, call: Call) -> Response:
        household = self.check_household(call.request)
        if isinstance(household, Response):
            return household
        clients = [{k: v for k, v in c.items() if k != "secret_sha256"} for c in self.store.list_clients()]
        return JSONResponse({"address": household.address, "usage_point_id": household.prm,
                             "grants": [self.describe_grant(g) for g in self.store.list_grants()],
                             "clients": clients})

    async def revoke_grant(self, call: Call) -> Response:
        household = self.check_household(call.request)
        if isinstance(household, Response):
            return household
        grant = self.store.revoke_grant(call["id"], self.now())
        if grant is None:
            return error(404, "not_found", f"no grant {call['id']}")
        return JSONResponse(self.describe_grant(grant))

    async def remove_client(self, call: Call) -> Response:
        household = self.check_household(call.request)
        if isinstance(household, Response):
            return household
        removed = self.store.remove_client(call["client_id"], self.now())
        if removed is None:
            return error(404, "not_found", f"no client {call['client_id']}")
        client, revoked = removed
        return JSONResponse({"client_id": client["client_id"], "name": client["name"], "revoked_grants": revoked})

    async def access_log(self, call: Call) -> Response:
        household = self.check_household(call.request)
        if isinstance(household, Response):
            return household
        entries = self.store.read_log(call["before"], call["limit"] + 1)
        page = entries[:call["limit"]]
        return JSONResponse({"entries": page, "next_before": page[-1]["seq"] if len(entries) > len(page) else None})

    # -- OAuth2 -------------------------------------------------------------------------

    async def authorize_show(self, call: Call) -> Response:
        """What the client asks, for the household to read (signed: it names its usage point).
        A browser sent here by the client, unsigned, is sent on to the dashboard's approval
        panel, which asks the same question signed with the household's key."""
        request = call.request
        if not is_signed(request.headers) and request.headers.get("accept", "").startswith("text/html"):
            return RedirectResponse("/?authorize=" + quote(request.url.query, safe=""), status_code=303)
        household = self.check_household(request)
        if isinstance(household, Response):
            return household
        try:
            grant = self.server.get_consent_grant(to_http_request(call.request), end_user=household)
            days = parse_duration_days(grant.request.payload.data.get("duration"))
        except OAuth2Error as exc:
            return oauth_error(exc)
        client = grant.request.client
        return JSONResponse({"client_id": client.get_client_id(), "client_name": client.record["name"],
                             "redirect_uri": grant.redirect_uri, "scopes": grant.request.scope.split(),
                             "duration_days": days, "usage_point_id": household.prm, "household": household.address,
                             "approve": "POST this same URL, signed with the household's key "
                                        "(voisinage consent approve --url URL)"})

    async def authorize_approve(self, call: Call) -> Response:
        """The household's signed decision: a 302 to the client with the code (or access_denied)."""
        household = self.check_household(call.request)
        if isinstance(household, Response):
            return household
        try:
            request = self.server.create_oauth2_request(to_http_request(call.request))
            grant = self.server.get_consent_grant(request, end_user=household)
        except OAuth2Error as exc:
            return oauth_error(exc)
        user = None if call["decision"] == "deny" else household
        reply = oauth_reply(self.server.create_authorization_response(request, grant_user=user, grant=grant))
        if reply.status_code == 302 and "application/json" in call.request.headers.get("accept", ""):
            # The dashboard's fetch cannot read a redirect: it gets the location and shows it.
            return JSONResponse({"location": reply.headers["location"]})
        return reply

    async def token(self, call: Call) -> Response:
        if self.server is None or self.read_household() is None:
            return error(404, "not_found", "this node serves no registered household")
        try:
            request = to_http_request(call.request, parse_form(call.body))
            return oauth_reply(self.server.create_token_response(request))
        except OAuth2Error as exc:
            return oauth_error(exc)

    async def revoke(self, call: Call) -> Response:
        if self.server is None or self.read_household() is None:
            return error(404, "not_found", "this node serves no registered household")
        try:
            request = to_http_request(call.request, parse_form(call.body))
            return oauth_reply(self.server.create_endpoint_response("revocation", request))
        except OAuth2Error as exc:
            return oauth_error(exc)

    # -- Data Connect ---------------------------------------------------------------------

    def authorize_reader(self, request: Request, measure: Measure,
                         prm: str) -> tuple[dict[str, Any], Response | None]:
        """Who reads (for the log) and the refusal, if any: the household by a signed
        request, or a client by a bearer token holding the scope and this usage point."""
        if is_signed(request.headers):
            household = self.check_household(request)
            if isinstance(household, Response):
                return {"who": "unknown"}, household
            return {"who": "household", "client_id": None, "client_name": None}, None
        try:
            # The scope is checked below, once the token says who asks, so that the refusal is logged.
            token = self.server.protector.validate_request(None, to_http_request(request))
        except OAuth2Error as exc:
            if isinstance(exc, MissingAuthorizationError):
                exc.description = ("sign the request with the household's key, "
                                   "or send Authorization: Bearer <access token>")
            return {"who": "unknown"}, oauth_error(exc)
        grant = token.grant
        who = {"who": "client", "client_id": grant["client_id"], "client_name": grant["client_name"],
               "grant_id": grant["id"]}
        try:
            check_token_covers(token, measure.scope, prm)
        except OAuth2Error as exc:
            return who, oauth_error(exc)
        return who, None

    def read_wh_by_start(self, household: Household, measure: Measure, first: int, end: int) -> dict[int, int]:
        """Settled intervals of the household in [first, end): Wh imported or exported."""
        field = "import_wh" if measure.direction == "import" else "export_wh"
        with self.node.store.snapshot() as snap:
            rows = get_household_intervals(snap.history, bytes.fromhex(household.address), first, end - 1,
                                           own_entries_only=snap.is_light())
        return {row["start"]: row[field] for row in rows if row["settled"]}

    def read_interval_s(self) -> int:
        with self.node.store.snapshot() as snap:
            return get_interval_s(snap.state)

    async def dataconnect(self, call: Call, measure: Measure) -> Response:
        household = self.read_household()
        if household is None:
            return error(404, "not_found", "this node serves no registered household")
        who, refusal = self.authorize_reader(call.request, measure, call["usage_point_id"])
        if refusal is None and call["usage_point_id"] != household.prm:
            refusal = error(404, "not_found", f"usage point {call['usage_point_id']} is not this node's household")
        if refusal is None and self.read_interval_s() != HALF_S:
            refusal = error(404, "not_found", "this commune does not settle by the half hour: no Data Connect curve")
        try:
            first, end = compute_period(call["start"], call["end"], measure.max_days)
        except PeriodError as exc:
            refusal = refusal or error(400, "invalid_request", str(exc))
        if who["who"] != "unknown":
            self.store.append_log(dict(who, t=self.now(), scope=measure.scope, usage_point_id=call["usage_point_id"],
                                       start=call["start"].isoformat(), end=call["end"].isoformat(),
                                       status=200 if refusal is None else refusal.status_code))
        if refusal is not None:
            return refusal
        points = self.read_wh_by_start(household, measure, first, end)
        return JSONResponse(render_meter_reading(measure, household.prm, call["start"], call["end"], points))

    def dataconnect_handler(self, measure: Measure) -> Callable[[Call], Any]:
        async def handler(call: Call) -> Response:
            return await self.dataconnect(call, measure)
        return handler
