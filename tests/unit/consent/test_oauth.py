"""The OAuth2 flow of node/consent/oauth.py on a real consent store (LevelDB in tmp_path),
driven through authlib's server as the HTTP layer drives it; time is an argument."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from node.consent.oauth import (
    ACCESS_TOKEN_S, DAY_S, MAX_GRANT_DAYS, ConsentServer, Household, HttpRequest, check_token_covers,
    parse_duration_days,
)
from node.consent.store import compute_secret_hash, open_consent_store
from authlib.oauth2 import OAuth2Error

BASE = "http://127.0.0.1:8700"
REDIRECT = "https://app.example/cb"
HOUSEHOLD = Household("ab" * 32, "12345678901234")
T0 = 1_780_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


class CIHeaders(dict):
    """Header names are case-insensitive, as Starlette's."""

    def __init__(self, items: dict[str, str] | None = None) -> None:
        super().__init__({k.lower(): v for k, v in (items or {}).items()})

    def get(self, name: str, default=None):
        return super().get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return super().__contains__(str(name).lower())


@pytest.fixture
def flow(tmp_path):
    with open_consent_store(tmp_path) as store:
        clock = Clock()
        server = ConsentServer(store, clock)
        store.add_client({"client_id": "app", "name": "Watt App", "redirect_uri": REDIRECT,
                          "secret_sha256": compute_secret_hash("s3cret"), "created": T0})
        yield server, store, clock


def authorize_query(**over: str) -> list[tuple[str, str]]:
    query = {"response_type": "code", "client_id": "app", "redirect_uri": REDIRECT,
             "scope": "consumption_load_curve production_load_curve", "state": "xyz", "duration": "P1Y"}
    query.update(over)
    return [(k, v) for k, v in query.items() if v is not None]


def approve(server: ConsentServer, **over: str) -> tuple[int, str]:
    """The household approves; the status and Location of the answer."""
    query = authorize_query(**over)
    request = server.create_oauth2_request(HttpRequest("POST", f"{BASE}/oauth/authorize?{urlencode(query)}",
                                                       CIHeaders(), query))
    grant = server.get_consent_grant(request, end_user=HOUSEHOLD)
    status, _, headers = server.create_authorization_response(request, grant_user=HOUSEHOLD, grant=grant)
    return status, dict(headers).get("Location", "")


def code_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["code"][0]


def token_request(server: ConsentServer, form: dict[str, str], secret: str = "s3cret"):
    basic = base64.b64encode(f"app:{secret}".encode()).decode()
    return server.create_token_response(HttpRequest("POST", f"{BASE}/oauth/token",
                                                    CIHeaders({"Authorization": f"Basic {basic}"}), [],
                                                    list(form.items())))


def exchange(server: ConsentServer, code: str, **extra: str):
    return token_request(server, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                  **extra})


def read(server: ConsentServer, access_token: str, scope: str):
    request = HttpRequest("GET", f"{BASE}/dataconnect/x", CIHeaders({"Authorization": f"Bearer {access_token}"}),
                          [])
    return server.protector.validate_request([scope], request)


def test_code_exchange_gives_a_token_limited_to_the_granted_scopes(flow):
    server, store, _ = flow
    status, location = approve(server)
    assert status == 302 and location.startswith(REDIRECT + "?") and "state=xyz" in location
    status, body, _ = exchange(server, code_of(location))
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["expires_in"] == ACCESS_TOKEN_S and body["refresh_token"]
    token = read(server, body["access_token"], "production_load_curve")
    assert token.grant["prm"] == HOUSEHOLD.prm and token.grant["client_name"] == "Watt App"
    with pytest.raises(OAuth2Error) as refused:
        read(server, body["access_token"], "daily_consumption")
    assert (refused.value.error, refused.value.status_code) == ("insufficient_scope", 403)
    # Only hashes are kept: the raw token is no key of the store.
    assert store.db.get(b"token/" + body["access_token"].encode()) is None


def test_pkce_s256_is_checked(flow):
    server, _, _ = flow
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    _, location = approve(server, code_challenge=challenge, code_challenge_method="S256")
    status, body, _ = exchange(server, code_of(location), code_verifier="w" * 50)
    assert (status, body["error"]) == (400, "invalid_grant")
    _, location = approve(server, code_challenge=challenge, code_challenge_method="S256")
    status, body, _ = exchange(server, code_of(location), code_verifier=verifier)
    assert status == 200 and body["access_token"]


def test_invalid_scope_unknown_scope_is_refused(flow):
    server, _, _ = flow
    with pytest.raises(OAuth2Error) as refused:
        approve(server, scope="consumption_load_curve everything")
    assert refused.value.error == "invalid_scope"
    with pytest.raises(OAuth2Error) as refused:
        approve(server, scope="")
    assert refused.value.error == "invalid_scope"


@pytest.mark.parametrize("duration", ["P3Y1D", "P1096D", "P37M", "P0D", "1Y", None])
def test_invalid_duration_over_three_years_or_malformed_is_refused(flow, duration):
    server, _, _ = flow
    with pytest.raises(OAuth2Error) as refused:
        approve(server, duration=duration)
    assert refused.value.error == "invalid_request"


def test_durations_up_to_three_years_are_taken():
    assert parse_duration_days("P3Y") == MAX_GRANT_DAYS == 1095
    assert parse_duration_days("P1Y6M") == 545 and parse_duration_days("P90D") == 90


def test_invalid_replayed_code_is_refused_and_revokes_its_grant(flow):
    server, store, _ = flow
    _, location = approve(server)
    code = code_of(location)
    status, body, _ = exchange(server, code)
    assert status == 200
    status, replay, _ = exchange(server, code)
    assert (status, replay["error"]) == (400, "invalid_grant")
    # RFC 6749 §4.1.2: the tokens issued with that code stop working too.
    with pytest.raises(OAuth2Error) as refused:
        read(server, body["access_token"], "consumption_load_curve")
    assert refused.value.error == "invalid_token"
    assert store.list_grants()[0]["revoked"] is not None


def test_invalid_code_of_another_client_or_expired(flow):
    server, store, clock = flow
    store.add_client({"client_id": "other", "name": "Other", "redirect_uri": REDIRECT,
                      "secret_sha256": compute_secret_hash("x"), "created": T0})
    _, location = approve(server)
    basic = base64.b64encode(b"other:x").decode()
    status, body, _ = server.create_token_response(HttpRequest(
        "POST", f"{BASE}/oauth/token", CIHeaders({"Authorization": f"Basic {basic}"}), [],
        [("grant_type", "authorization_code"), ("code", code_of(location)), ("redirect_uri", REDIRECT)]))
    assert (status, body["error"]) == (400, "invalid_grant")
    _, location = approve(server)
    clock.now += 601
    status, body, _ = exchange(server, code_of(location))
    assert (status, body["error"]) == (400, "invalid_grant")


def test_invalid_client_secret_is_refused(flow):
    server, _, _ = flow
    _, location = approve(server)
    status, body, _ = token_request(server, {"grant_type": "authorization_code", "code": code_of(location),
                                             "redirect_uri": REDIRECT}, secret="wrong")
    assert (status, body["error"]) == (401, "invalid_client")


def test_invalid_revoked_grant_stops_its_tokens_at_once(flow):
    server, store, clock = flow
    _, location = approve(server)
    _, body, _ = exchange(server, code_of(location))
    read(server, body["access_token"], "consumption_load_curve")
    store.revoke_grant(store.list_grants()[0]["id"], clock())
    with pytest.raises(OAuth2Error) as refused:
        read(server, body["access_token"], "consumption_load_curve")
    assert refused.value.error == "invalid_token"
    status, refreshed, _ = token_request(server, {"grant_type": "refresh_token",
                                                  "refresh_token": body["refresh_token"]})
    assert (status, refreshed["error"]) == (400, "invalid_grant")


def test_client_revocation_rfc7009_revokes_the_grant(flow):
    server, store, _ = flow
    _, location = approve(server)
    _, body, _ = exchange(server, code_of(location))
    basic = base64.b64encode(b"app:s3cret").decode()
    status, _, _ = server.create_endpoint_response("revocation", HttpRequest(
        "POST", f"{BASE}/oauth/revoke", CIHeaders({"Authorization": f"Basic {basic}"}), [],
        [("token", body["refresh_token"])]))
    assert status == 200
    with pytest.raises(OAuth2Error):
        read(server, body["access_token"], "consumption_load_curve")
    assert store.list_grants()[0]["revoked"] is not None


def test_invalid_expired_grant_and_access_token(flow):
    server, _, clock = flow
    _, location = approve(server, duration="P30D")
    _, body, _ = exchange(server, code_of(location))
    clock.now += ACCESS_TOKEN_S
    with pytest.raises(OAuth2Error) as refused:
        read(server, body["access_token"], "consumption_load_curve")
    assert refused.value.error == "invalid_token"
    # The refresh token gives a new access token while the grant lasts, and rotates.
    status, fresh, _ = token_request(server, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert status == 200 and fresh["refresh_token"] != body["refresh_token"]
    read(server, fresh["access_token"], "consumption_load_curve")
    status, _, _ = token_request(server, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert status == 400
    clock.now = T0 + 30 * DAY_S
    with pytest.raises(OAuth2Error):
        read(server, fresh["access_token"], "consumption_load_curve")
    status, late, _ = token_request(server, {"grant_type": "refresh_token", "refresh_token": fresh["refresh_token"]})
    assert (status, late["error"]) == (400, "invalid_grant")


def test_invalid_wrong_usage_point_or_scope_for_the_token(flow):
    server, _, _ = flow
    _, location = approve(server, scope="production_load_curve")
    _, body, _ = exchange(server, code_of(location))
    token = read(server, body["access_token"], "production_load_curve")
    check_token_covers(token, "production_load_curve", HOUSEHOLD.prm)
    with pytest.raises(OAuth2Error) as refused:
        check_token_covers(token, "production_load_curve", "12345678901299")
    assert (refused.value.error, refused.value.status_code) == ("access_denied", 403)
    with pytest.raises(OAuth2Error) as refused:
        check_token_covers(token, "consumption_load_curve", HOUSEHOLD.prm)
    assert (refused.value.error, refused.value.status_code) == ("insufficient_scope", 403)


def test_dead_codes_and_access_tokens_are_swept_a_day_later(flow):
    server, store, clock = flow
    _, location = approve(server)
    _, body, _ = exchange(server, code_of(location))
    assert store.get_code(code_of(location)) is not None and store.get_token(body["access_token"]) is not None
    clock.now += DAY_S + ACCESS_TOKEN_S + 1
    approve(server)         # each approval sweeps
    assert store.get_code(code_of(location)) is None and store.get_token(body["access_token"]) is None
    # The refresh token lives as long as its grant: still there, still good.
    status, fresh, _ = token_request(server, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert status == 200 and fresh["access_token"]


def test_removed_client_revokes_its_grants_and_forgets_its_codes_and_tokens(flow):
    server, store, clock = flow
    store.add_client({"client_id": "other", "name": "Other", "redirect_uri": REDIRECT,
                      "secret_sha256": compute_secret_hash("x"), "created": T0})
    _, location = approve(server)
    _, body, _ = exchange(server, code_of(location))
    _, unused = approve(server)                     # a second grant, its code never exchanged
    store.put_token("theirs", {"grant_id": "g", "client_id": "other", "kind": "access", "expires": T0 + 99})
    clock.now += 10
    client, revoked = store.remove_client("app", clock())
    assert client["name"] == "Watt App" and revoked == 2
    assert store.get_client("app") is None and store.get_client("other") is not None
    assert [g["revoked"] for g in store.list_grants()] == [clock(), clock()]
    assert store.get_token(body["access_token"]) is None and store.get_token(body["refresh_token"]) is None
    assert store.get_code(code_of(unused)) is None and store.get_token("theirs") is not None
    with pytest.raises(OAuth2Error) as refused:
        read(server, body["access_token"], "consumption_load_curve")
    assert refused.value.error == "invalid_token"
    assert store.remove_client("app", clock()) is None
