"""POST /txs (node/api/app.py ``Api.submit_batch``) through the real ASGI app with a
recording node (tests/support/fake_node.py): how a body becomes ``submit_txs`` input
and how its results become the answer (202, 400, 403, 413, 503). The node side is
tests/integration/api/test_txs_batch_live.py; the recording node stands in for it
here, as in test_write_guard.py, because only the HTTP layer is under test.
"""

from __future__ import annotations

import pytest

from node.net.messages import MAX_BATCH_TXS, TxBatch
from tests.support.fake_node import BAD, FULL, RecordingNode, asgi_client
from tokens.txs import MeterReading
from wire import compute_id
from wire.limits import MAX_GOSSIP_BYTES

TOKEN = "batch-token"


def batch(*txs: bytes) -> bytes:
    return TxBatch(txs=tuple(txs)).encode()


def ids(*txs: bytes) -> list[str]:
    return [compute_id(tx).hex() for tx in txs]


async def test_a_batch_reaches_submit_txs_whole_and_in_order():
    node = RecordingNode()
    txs = [b"tx-3", b"tx-1", b"tx-2", b"tx-1"]          # order and a repeat kept as sent
    resp = await asgi_client(node).post("/txs", content=batch(*txs))
    assert resp.status_code == 202
    assert node.calls == [txs]
    assert resp.json() == {"ids": ids(*txs), "accepted": 4, "refused": []}


async def test_an_empty_batch_is_202_with_nothing_accepted():
    node = RecordingNode()
    resp = await asgi_client(node).post("/txs", content=batch())
    assert resp.status_code == 202 and resp.json() == {"ids": [], "accepted": 0, "refused": []}
    assert node.calls == [[]]


async def test_a_mixed_batch_is_202_listing_the_refused_indexes():
    node = RecordingNode()
    txs = [b"ok-0", b"bad-1", b"full-2", b"ok-3"]
    resp = await asgi_client(node).post("/txs", content=batch(*txs))
    assert resp.status_code == 202
    doc = resp.json()
    assert doc["ids"] == ids(*txs) and doc["accepted"] == 2
    assert doc["refused"] == [{"index": 1, "error": BAD.reason, "status": 400},
                              {"index": 2, "error": FULL.reason, "status": 503}]


async def test_invalid_batch_refused_only_for_a_full_mempool_is_503():
    node = RecordingNode()
    resp = await asgi_client(node).post("/txs", content=batch(b"full-0", b"full-1"))
    assert resp.status_code == 503 and resp.json() == {"error": FULL.reason}
    assert node.calls == [[b"full-0", b"full-1"]]


async def test_invalid_batch_refused_for_mixed_reasons_is_202_not_503():
    # 503 says "come back later": only right when every tx would then be taken.
    resp = await asgi_client(RecordingNode()).post("/txs", content=batch(b"full-0", b"bad-1"))
    assert resp.status_code == 202
    assert [(r["index"], r["status"]) for r in resp.json()["refused"]] == [(0, 503), (1, 400)]
    assert resp.json()["accepted"] == 0


def reading_bytes() -> bytes:
    return MeterReading(signer=bytes(32), meter="0" * 12, seq=1, t=1, import_wh=0, export_wh=0,
                        sig=bytes(64)).encode()


@pytest.mark.parametrize("body", [
    pytest.param(b"", id="empty"),
    pytest.param(b"\x93\xa1x\x01\x02", id="garbage"),
    pytest.param(b"tx-1", id="a raw tx"),
    pytest.param(reading_bytes(), id="a tx, not a batch"),
    pytest.param(TxBatch(txs=(b"x",) * (MAX_BATCH_TXS + 1)).encode(), id="too many txs"),
    pytest.param(batch(b"tx-1") + b"\x00", id="trailing byte"),
])
async def test_invalid_body_that_is_not_a_tx_batch_is_400(body):
    node = RecordingNode()
    resp = await asgi_client(node).post("/txs", content=body)
    assert resp.status_code == 400
    assert resp.headers["content-type"] == "application/json"
    assert isinstance(resp.json()["error"], str) and resp.json()["error"]
    assert node.calls == []


async def test_invalid_body_over_one_mib_is_413_before_decoding():
    node = RecordingNode()
    resp = await asgi_client(node).post("/txs", content=b"\x00" * (MAX_GOSSIP_BYTES + 1))
    assert resp.status_code == 413 and str(MAX_GOSSIP_BYTES) in resp.json()["error"]
    assert node.calls == []


async def test_a_batch_of_exactly_one_mib_is_read():
    # The limit is inclusive: a batch of MAX_GOSSIP_BYTES is decoded, not 413.
    node = RecordingNode()
    txs = [b"t" * 4000] * 261
    probe = len(batch(*txs, b"p" * 2000))
    body = batch(*txs, b"p" * (2000 + MAX_GOSSIP_BYTES - probe))
    assert len(body) == MAX_GOSSIP_BYTES
    resp = await asgi_client(node).post("/txs", content=body)
    assert resp.status_code == 202 and resp.json()["accepted"] == 262
    assert [len(call) for call in node.calls] == [262]


async def test_invalid_remote_batch_without_a_configured_token_is_403():
    node = RecordingNode()
    resp = await asgi_client(node, "192.0.2.7").post("/txs", content=batch(b"tx-1"))
    assert resp.status_code == 403 and "--api-token" in resp.json()["error"]
    assert node.calls == []


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic " + TOKEN, TOKEN, "Bearer"])
async def test_invalid_remote_batch_with_a_missing_or_wrong_token_is_401(header):
    node = RecordingNode()
    headers = {} if header is None else {"authorization": header}
    resp = await asgi_client(node, "192.0.2.7", TOKEN).post("/txs", content=batch(b"tx-1"), headers=headers)
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
    assert node.calls == []


async def test_remote_batch_with_the_token_is_accepted():
    node = RecordingNode()
    resp = await asgi_client(node, "2001:db8::1", TOKEN).post("/txs", content=batch(b"tx-1"),
                                                           headers={"authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 202 and node.calls == [[b"tx-1"]]


async def test_invalid_write_guard_applies_before_reading_a_malformed_body():
    # A remote client learns nothing about the body format without the right to write.
    node = RecordingNode()
    resp = await asgi_client(node, "192.0.2.7").post("/txs", content=b"garbage")
    assert resp.status_code == 403 and node.calls == []
