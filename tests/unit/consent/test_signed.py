"""The household's signed requests (node/consent/signed.py): good, expired, replayed,
wrong key, tampered; the node's clock is an argument."""

from __future__ import annotations

import pytest

from node.consent.signed import (
    KEY_HEADER, NONCE_HEADER, SIG_HEADER, TIME_HEADER, WINDOW_S, ReplayGuard, SignatureRefused, compute_signed_bytes,
    sign_request, verify_signed_request,
)
from wire import Keypair

HOUSEHOLD = Keypair(bytes(range(32)))
STRANGER = Keypair(bytes(range(1, 33)))
PATH = "/dataconnect/metering_data_clc/v5/consumption_load_curve"
QUERY = "usage_point_id=12345678901234&start=2026-06-21&end=2026-06-22"
NOW = 1_780_000_000
NONCE = bytes(range(16))


def verify(headers, *, method="GET", path=PATH, query=QUERY, now=NOW, guard=None):
    verify_signed_request(headers, method, path, query, now, HOUSEHOLD.public, guard or ReplayGuard())


def test_a_request_signed_by_the_household_within_the_window_is_taken():
    verify(sign_request(HOUSEHOLD, "GET", PATH, QUERY, NOW - WINDOW_S, NONCE))
    verify(sign_request(HOUSEHOLD, "GET", PATH, QUERY, NOW + WINDOW_S, NONCE))


def test_the_signed_bytes_are_domain_separated_from_ledger_signatures():
    signed = compute_signed_bytes("get", PATH, QUERY, NOW, NONCE)
    assert signed.startswith(b"voisinage/1/http:GET\n") and signed.endswith(f"\n{NOW}\n{NONCE.hex()}".encode())


def test_two_identical_requests_in_one_second_differ_by_their_nonce():
    guard = ReplayGuard()
    verify(sign_request(HOUSEHOLD, "GET", PATH, QUERY, NOW, NONCE), guard=guard)
    verify(sign_request(HOUSEHOLD, "GET", PATH, QUERY, NOW, bytes(16)), guard=guard)


@pytest.mark.parametrize("offset", [WINDOW_S + 1, -WINDOW_S - 1, 3600])
def test_invalid_expired_or_future_signature(offset):
    with pytest.raises(SignatureRefused, match="from the node's clock"):
        verify(sign_request(HOUSEHOLD, "GET", PATH, QUERY, NOW + offset, NONCE))


def test_invalid_replayed_signature():
    guard = ReplayGuard()
    headers = sign_request(HOUSEHOLD, "GET", PATH, QUERY, NOW, NONCE)
    verify(headers, guard=guard)
    with pytest.raises(SignatureRefused, match="already used"):
        verify(headers, now=NOW + 1, guard=guard)
    # Out of the window it is forgotten, and refused as too old instead.
    with pytest.raises(SignatureRefused, match="from the node's clock"):
        verify(headers, now=NOW + WINDOW_S + 1, guard=guard)
    assert guard.seen == {}


def test_invalid_wrong_key():
    with pytest.raises(SignatureRefused, match="not this node's household"):
        verify(sign_request(STRANGER, "GET", PATH, QUERY, NOW, NONCE))
    # The household's key named, a stranger's signature.
    forged = dict(sign_request(STRANGER, "GET", PATH, QUERY, NOW, NONCE), **{KEY_HEADER: HOUSEHOLD.public.hex()})
    with pytest.raises(SignatureRefused, match="bad signature"):
        verify(forged)


@pytest.mark.parametrize("change", [
    {"query": QUERY.replace("2026-06-22", "2026-06-28")},
    {"query": QUERY.replace("12345678901234", "12345678901235")},
    {"path": PATH.replace("clc", "plc").replace("consumption", "production")},
    {"method": "POST"},
])
def test_invalid_tampered_request(change):
    headers = sign_request(HOUSEHOLD, "GET", PATH, QUERY, NOW, NONCE)
    with pytest.raises(SignatureRefused, match="bad signature"):
        verify(headers, **change)


@pytest.mark.parametrize("header, value", [(TIME_HEADER, str(NOW + 1)), (NONCE_HEADER, "ff" * 16)])
def test_invalid_tampered_time_or_nonce(header, value):
    headers = dict(sign_request(HOUSEHOLD, "GET", PATH, QUERY, NOW, NONCE), **{header: value})
    with pytest.raises(SignatureRefused, match="bad signature"):
        verify(headers)


@pytest.mark.parametrize("header, value, reason", [
    (KEY_HEADER, "zz", "x-voisinage-key must be 64 hex"),
    (SIG_HEADER, "00" * 63, "x-voisinage-signature must be 128 hex"),
    (NONCE_HEADER, "00" * 8, "x-voisinage-nonce must be 32 hex"),
    (TIME_HEADER, "-5", "unix seconds"),
    (TIME_HEADER, "1" * 40, "unix seconds"),
])
def test_invalid_malformed_headers(header, value, reason):
    headers = dict(sign_request(HOUSEHOLD, "GET", PATH, QUERY, NOW, NONCE), **{header: value})
    with pytest.raises(SignatureRefused, match=reason):
        verify(headers)
