"""Who may POST /tx (node/api/auth.py), through the real ASGI app with a recording node
(tests/support/fake_node.py).

The client address is what httpx's ASGI transport reports, so a remote client can
be played without a second machine; the app and its guard are the production ones.
"""

from __future__ import annotations

import pytest

from node.api.auth import is_loopback, verify_bearer
from tests.support.fake_node import RecordingNode, asgi_client

TOKEN = "s3cret-token"


async def test_loopback_clients_write_without_a_token():
    node = RecordingNode()
    for host in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        resp = await asgi_client(node, host).post("/tx", content=b"tx")
        assert resp.status_code == 202 and resp.json() == {"id": "00" * 32}
    assert len(node.received) == 4


async def test_invalid_remote_write_without_a_configured_token_is_403():
    node = RecordingNode()
    resp = await asgi_client(node, "192.0.2.7").post("/tx", content=b"tx")
    assert resp.status_code == 403 and "--api-token" in resp.json()["error"]
    assert node.received == []


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic " + TOKEN, TOKEN, "Bearer"])
async def test_invalid_remote_write_with_a_missing_or_wrong_token_is_401(header):
    node = RecordingNode()
    headers = {} if header is None else {"authorization": header}
    resp = await asgi_client(node, "192.0.2.7", TOKEN).post("/tx", content=b"tx", headers=headers)
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
    assert node.received == []


async def test_remote_write_with_the_token_is_accepted():
    node = RecordingNode()
    resp = await asgi_client(node, "2001:db8::1", TOKEN).post("/tx", content=b"tx",
                                                       headers={"authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 202 and node.received == [b"tx"]


async def test_remote_reads_need_no_token():
    resp = await asgi_client(RecordingNode(), "192.0.2.7", TOKEN).get("/openapi.json")
    assert resp.status_code == 200 and resp.json()["openapi"].startswith("3.")


async def test_invalid_refused_tx_keeps_its_reason():
    resp = await asgi_client(RecordingNode(), "127.0.0.1").post("/tx", content=b"bad")
    assert resp.status_code == 400 and resp.json() == {"error": "malformed: test"}


async def test_invalid_oversize_body_is_413_before_submitting():
    node = RecordingNode()
    resp = await asgi_client(node, "127.0.0.1").post("/tx", content=b"x" * 4097)
    assert resp.status_code == 413 and node.received == []


def test_is_loopback_refuses_what_it_cannot_parse():
    assert not is_loopback(None) and not is_loopback("") and not is_loopback("localhost")
    assert not is_loopback("10.0.0.1") and is_loopback("127.0.0.1")
    assert verify_bearer("bearer  tok", "tok") and not verify_bearer("Bearer tok2", "tok")
