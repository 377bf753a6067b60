"""The OAuth2 authorization-code flow of a household's node, on authlib's server
components (RFC 6749 code and refresh grants, RFC 7636 PKCE, RFC 7009 revocation,
RFC 6750 bearer tokens) with the consent store (node/consent/store.py) as storage.

A third party's client, registered by the household, asks for scopes (the Data
Connect measures of node/consent/dataconnect.py) for a ``duration`` (ISO 8601: P1Y,
P6M, P90D; at most 3 years); the household approves with its key; the client trades
the single-use code for an access token (3 hours) and a refresh token (until the grant
ends). A grant is revocable at once by the household or by the client, and every token
of a revoked or ended grant stops working. Time is an argument (``clock``).
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin, AuthorizationServer, ClientMixin, InvalidRequestError, InvalidScopeError,
    OAuth2Payload, OAuth2Request, ResourceProtector, TokenMixin, TokenValidator,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator, InsufficientScopeError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge

from node.consent.dataconnect import SCOPES
from node.consent.store import ConsentStore, Record, compute_secret_hash

log = logging.getLogger("voisinage.consent")

DAY_S = 86400
MAX_GRANT_DAYS = 3 * 365        # issue 20: a consent lasts at most 3 years
CODE_S = 600                    # RFC 6749 §4.1.2: a code lives at most 10 minutes
SWEEP_AFTER_S = DAY_S           # a dead code or token is forgotten a day after it stopped working
ACCESS_TOKEN_S = 3 * 3600
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
DURATION = re.compile(r"P(?:(\d{1,4})Y)?(?:(\d{1,5})M)?(?:(\d{1,6})D)?")
Reply = tuple[int, Any, list[tuple[str, str]]]


def parse_duration_days(text: str | None) -> int:
    """ISO 8601 ``PnYnMnD`` as days (a year 365, a month 30), in 1..MAX_GRANT_DAYS."""
    match = DURATION.fullmatch(text or "")
    if not text or match is None or not any(match.groups()):
        raise InvalidRequestError("'duration' must be an ISO 8601 duration such as P1Y, P6M or P90D")
    years, months, days = (int(g or 0) for g in match.groups())
    total = years * 365 + months * 30 + days
    if not 1 <= total <= MAX_GRANT_DAYS:
        raise InvalidRequestError(f"'duration' is {total} days: a consent lasts 1 to {MAX_GRANT_DAYS} days "
                                  "(3 years)")
    return total


@dataclass(frozen=True)
class Household:
    """The resource owner: this node's household, by its key and usage point."""

    address: str
    prm: str


@dataclass(frozen=True)
class HttpRequest:
    """What the HTTP layer hands over: no framework object crosses into this module."""

    method: str
    uri: str
    headers: Mapping[str, str]          # case-insensitive (Starlette's Headers)
    query: Sequence[tuple[str, str]]
    form: Sequence[tuple[str, str]] = ()


class Payload(OAuth2Payload):
    def __init__(self, request: HttpRequest) -> None:
        self._data = dict(request.query) | dict(request.form)
        self._datalist: dict[str, list[str]] = {}
        for name, value in [*request.query, *request.form]:
            self._datalist.setdefault(name, []).append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class NodeRequest(OAuth2Request):
    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request.method, request.uri, headers=request.headers)
        self.payload = Payload(request)
        self._args, self._form = dict(request.query), dict(request.form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class Client(ClientMixin):
    """A third party the household registered: one redirect URI, a secret kept hashed."""

    def __init__(self, record: Record) -> None:
        self.record = record

    def get_client_id(self) -> str:
        return self.record["client_id"]

    def get_default_redirect_uri(self) -> str:
        return self.record["redirect_uri"]

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(s for s in scope_to_list(scope or "") if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.record["redirect_uri"]

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(compute_secret_hash(client_secret), self.record["secret_sha256"])

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in CLIENT_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


class Code(AuthorizationCodeMixin):
    def __init__(self, record: Record) -> None:
        self.record = record
        self.code_challenge = record["code_challenge"]
        self.code_challenge_method = record["code_challenge_method"]

    def get_redirect_uri(self) -> str:
        return self.record["redirect_uri"]

    def get_scope(self) -> str:
        return self.record["scope"]


class Token(TokenMixin):
    """An access or refresh token: alive while it and its grant are neither expired nor revoked."""

    def __init__(self, record: Record, grant: Record, now: int) -> None:
        self.record, self.grant, self.now = record, grant, now

    def check_client(self, client: ClientMixin) -> bool:
        return self.record["client_id"] == client.get_client_id()

    def get_scope(self) -> str:
        return self.record["scope"]

    def get_expires_in(self) -> int:
        return self.record["expires"] - self.record["issued"]

    def is_expired(self) -> bool:
        return self.now >= min(self.record["expires"], self.grant["expires"])

    def is_revoked(self) -> bool:
        return self.grant["revoked"] is not None or self.record.get("revoked") is not None

    def get_user(self) -> Household:
        return Household(self.grant["household"], self.grant["prm"])


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def validate_authorization_request(self) -> str:
        redirect_uri = super().validate_authorization_request()
        try:
            if not self.request.scope:
                raise InvalidScopeError(f"ask for at least one scope of: {' '.join(SCOPES)}")
            parse_duration_days(self.request.payload.data.get("duration"))
        except (InvalidScopeError, InvalidRequestError) as exc:
            exc.redirect_uri = redirect_uri
            raise
        return redirect_uri

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        self.server.save_code(code, request)

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        return self.server.take_code(code, client)

    def delete_authorization_code(self, authorization_code: Code) -> None:
        self.server.mark_code_used(authorization_code)

    def authenticate_user(self, authorization_code: Code) -> Household | None:
        return self.server.get_grant_user(authorization_code.record["grant_id"])


class RefreshGrant(RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        token = self.server.find_token(refresh_token, "refresh")
        return token if token is not None and not token.is_expired() and not token.is_revoked() else None

    def authenticate_user(self, refresh_token: Token) -> Household:
        return refresh_token.get_user()

    def revoke_old_credential(self, refresh_token: Token) -> None:
        self.server.revoke_token_record(refresh_token)


class Revocation(RevocationEndpoint):
    """RFC 7009 from the client: revoking any token of a grant revokes the whole grant."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return self.server.find_token(token_string, None)

    def revoke_token(self, token: Token, request: OAuth2Request) -> None:
        self.server.store.revoke_grant(token.grant["id"], self.server.clock())


class UsagePointDenied(OAuth2Error):
    """A token used for a usage point its grant does not cover."""

    error = "access_denied"
    status_code = 403


def check_token_covers(token: Token, scope: str, prm: str) -> None:
    """RFC 6750 §3.1 insufficient_scope (403) unless the token's grant holds ``scope``;
    access_denied (403) unless it covers the usage point ``prm``."""
    if TokenValidator.scope_insufficient(token.get_scope(), [scope]):
        raise InsufficientScopeError()
    if prm != token.grant["prm"]:
        raise UsagePointDenied(f"this token covers usage point {token.grant['prm']} only")


class AccessValidator(BearerTokenValidator):
    def __init__(self, server: ConsentServer) -> None:
        super().__init__()
        self.server = server

    def authenticate_token(self, token_string: str) -> Token | None:
        return self.server.find_token(token_string, "access")


class ConsentServer(AuthorizationServer):
    """authlib's authorization server over one household's consent store."""

    def __init__(self, store: ConsentStore, clock: Callable[[], int]) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.store, self.clock = store, clock
        self.register_token_generator("default", BearerTokenGenerator(
            access_token_generator=lambda **_: secrets.token_urlsafe(32),
            refresh_token_generator=lambda **_: secrets.token_urlsafe(32),
            expires_generator=lambda client, grant_type: ACCESS_TOKEN_S))
        self.register_grant(CodeGrant, [CodeChallenge(required=False)])
        self.register_grant(RefreshGrant)
        self.register_endpoint(Revocation)
        self.protector = ResourceProtector()
        self.protector.register_token_validator(AccessValidator(self))

    # -- authlib's framework hooks ---------------------------------------------------

    def create_oauth2_request(self, request: HttpRequest | NodeRequest) -> NodeRequest:
        return request if isinstance(request, NodeRequest) else NodeRequest(request)

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Reply:
        return status, body, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        log.debug("oauth2 %s", name)

    def query_client(self, client_id: str) -> Client | None:
        record = self.store.get_client(client_id) if isinstance(client_id, str) else None
        return None if record is None else Client(record)

    # -- codes, grants, tokens -------------------------------------------------------

    def save_code(self, code: str, request: OAuth2Request) -> None:
        """The household approved: its grant starts now, and the code (10 minutes) opens it."""
        now, user, client = self.clock(), request.user, request.client
        self.store.sweep(now - SWEEP_AFTER_S)
        days = parse_duration_days(request.payload.data.get("duration"))
        grant = {"id": secrets.token_hex(8), "client_id": client.get_client_id(),
                 "client_name": client.record["name"], "household": user.address, "prm": user.prm,
                 "scopes": scope_to_list(request.scope), "duration_days": days, "created": now,
                 "expires": now + days * DAY_S, "revoked": None}
        self.store.put_grant(grant)
        data = request.payload.data
        self.store.put_code(code, {"grant_id": grant["id"], "client_id": grant["client_id"],
                                   "redirect_uri": data.get("redirect_uri"), "scope": request.scope,
                                   "expires": now + CODE_S, "used": None,
                                   "code_challenge": data.get("code_challenge"),
                                   "code_challenge_method": data.get("code_challenge_method")})

    def take_code(self, code: str, client: Client) -> Code | None:
        """The code's record if it is this client's, unexpired and unused. A code used
        twice revokes its grant: RFC 6749 §4.1.2, someone else may hold it."""
        record = self.store.get_code(code) if isinstance(code, str) else None
        if record is None or record["client_id"] != client.get_client_id():
            return None
        if record["used"] is not None:
            self.store.revoke_grant(record["grant_id"], self.clock())
            log.warning("authorization code of grant %s used twice: grant revoked", record["grant_id"])
            return None
        return Code(record) if self.clock() < record["expires"] else None

    def mark_code_used(self, code: Code) -> None:
        self.store.mark_code_used(code.record, self.clock())

    def get_grant_user(self, grant_id: str) -> Household | None:
        grant = self.store.get_grant(grant_id)
        if grant is None or grant["revoked"] is not None or self.clock() >= grant["expires"]:
            return None
        return Household(grant["household"], grant["prm"])

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        now = self.clock()
        source = request.authorization_code or request.refresh_token
        grant_id = source.record["grant_id"] if isinstance(source, Code) else source.grant["id"]
        grant = self.store.get_grant(grant_id)
        common = {"grant_id": grant_id, "client_id": grant["client_id"], "scope": token.get("scope", ""),
                  "issued": now}
        self.store.put_token(token["access_token"], dict(common, kind="access", expires=now + token["expires_in"]))
        if "refresh_token" in token:
            self.store.put_token(token["refresh_token"], dict(common, kind="refresh", expires=grant["expires"]))

    def find_token(self, token_string: str, kind: str | None) -> Token | None:
        record = self.store.get_token(token_string) if isinstance(token_string, str) else None
        if record is None or (kind is not None and record["kind"] != kind):
            return None
        grant = self.store.get_grant(record["grant_id"])
        return None if grant is None else Token(dict(record, token=token_string), grant, self.clock())

    def revoke_token_record(self, token: Token) -> None:
        record = {k: v for k, v in token.record.items() if k != "token"}
        self.store.put_token(token.record["token"], dict(record, revoked=self.clock()))
