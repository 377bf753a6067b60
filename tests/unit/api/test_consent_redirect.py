"""node/api/consent.py: which redirect URIs a household may register for a client."""

from __future__ import annotations

import pytest

from node.api.consent import check_redirect_uri


@pytest.mark.parametrize("uri", ["https://app.example/cb", "https://app.example:8443/cb?x=1",
                                 "http://127.0.0.1:8080/cb", "http://localhost/cb", "http://[::1]:9000/cb"])
def test_https_or_loopback_http_redirects_are_taken(uri):
    assert check_redirect_uri(uri) is None


@pytest.mark.parametrize("uri, reason", [
    ("http://app.example/cb", "https://..., or http:// on 127.0.0.1"),
    ("http://127.0.0.1.evil.example/cb", "https://..., or http:// on 127.0.0.1"),
    ("https://", "https://..., or http:// on 127.0.0.1"),
    ("app.example/cb", "https://..., or http:// on 127.0.0.1"),
    ("https://app.example/cb#frag", "no fragment"),
    ("https://app.example/c\"b", "printable ASCII"),
    ("https://app.example/cé", "printable ASCII"),
    ("https://[::1/cb", "absolute URI"),
])
def test_invalid_redirect_uri(uri, reason):
    assert reason in check_redirect_uri(uri)
