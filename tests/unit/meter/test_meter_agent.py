"""node/meter/agent.py: signing, submission to a real HTTP node stub, and retry when it is down."""

from __future__ import annotations

import hashlib

import itertools
import json

import httpx
import pytest
import trio
from hypothesis import given, strategies as st

from node.meter.agent import (
    MeterAgent, NodeClient, NodeRejected, NodeUnavailable, build_reading_tx, compute_next_seq,
)
from node.meter.reading import Reading, parse_capture
from node.meter.source import FileSource
from tokens.sealing import open_own_sealed
from tokens.txs import Sealed, SetDataKey, decode_sealable, decode_tx
from tests.support.fake_node import NodeStub
from tests.support.ports import free_port
from tests.support.wait import wait_until
from tests.unit.meter.meter_helpers import TIC_DIR, historic_base_frame, load_capture, split_frames
from wire import Keypair, verify_message
from wire.seal import compute_commune_public, open_data_key, open_payload

CHAIN_ID = bytes(range(32))
KEY = Keypair(b"\x07" * 32)
READING = Reading("031428571428", 1000, 20, 300, None)
COMMUNE_SECRET = hashlib.sha256(b"commune").digest()


class StepClock:
    """A clock that moves one second per call: every frame gets a later t."""

    def __init__(self, start: int = 1_760_000_000) -> None:
        self._ticks = itertools.count(start)

    def __call__(self) -> float:
        return float(next(self._ticks))


def test_signed_reading_round_trips_and_verifies():
    tx = build_reading_tx(KEY, CHAIN_ID, READING, t=1_760_000_000, seq=5)
    decoded = decode_tx(tx.encode())
    assert decoded == tx and verify_message(decoded, CHAIN_ID)
    assert (decoded.meter, decoded.import_wh, decoded.export_wh) == ("031428571428", 1000, 20)
    assert not verify_message(decoded, b"\x00" * 32)   # domain separation by chain id


def test_seq_rises_even_when_the_clock_stands_still():
    assert compute_next_seq(0, 1_760_000_000.5) == 1_760_000_000_500
    assert compute_next_seq(1_760_000_000_500, 1_760_000_000.5) == 1_760_000_000_501


async def test_agent_submits_and_retries_while_the_node_is_down(tmp_path):
    frames = split_frames(load_capture("historic_bbr_10frames.bin"))
    expected = [r.import_wh for r in parse_capture(b"".join(frames)).readings]
    capture = tmp_path / "tic.bin"
    capture.write_bytes(b"".join(frames[:3]))
    node = NodeStub(CHAIN_ID)
    lines: list[str] = []
    async with httpx.AsyncClient() as client:
        agent = MeterAgent(FileSource(capture), KEY, NodeClient(node.url, client), 0.05,
                           now=StepClock(), out=lines.append)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(agent.run)
            # 1. The node is down: the agent reads, keeps its latest reading and keeps retrying.
            await wait_until(lambda: agent.status.failures >= 3, what="failed attempts")
            assert agent.status.reading.import_wh == expected[2] and agent.status.accepted == 0
            # 2. The node comes up: the latest reading is submitted.
            await trio.to_thread.run_sync(node.start)
            await wait_until(lambda: node.accepted, what="a first accepted reading")
            # Stop the node only once its answer reached the agent: stopped in between,
            # the agent sends the same reading again (lossless, but the stub refuses its
            # repeated t, and the check on ``node.refused`` below would fail by timing).
            await wait_until(lambda: agent.status.accepted == len(node.accepted), what="the agent's first answer")
            # 3. The node goes down while the meter moves on; then it comes back.
            await trio.to_thread.run_sync(node.stop)
            failures = agent.status.failures
            with capture.open("ab") as fh:
                fh.write(b"".join(frames[3:]))
            await wait_until(lambda: agent.status.reading.import_wh == expected[-1]
                             and agent.status.failures > failures, what="failures with the newest reading")
            await trio.to_thread.run_sync(node.start)
            await wait_until(lambda: node.accepted[-1].import_wh == expected[-1], what="the newest reading")
            # The node counts a reading when it answers; the agent only when the answer
            # arrives: cancelling in between made the final count comparison flaky.
            await wait_until(lambda: agent.status.accepted == len(node.accepted), what="the agent's last answer")
            nursery.cancel_scope.cancel()
        agent.source.close()
    await trio.to_thread.run_sync(node.stop)
    assert node.accepted[0].import_wh == expected[2] and node.refused == []
    assert all(verify_message(tx, CHAIN_ID) and tx.signer == KEY.public for tx in node.accepted)
    assert [tx.seq for tx in node.accepted] == sorted({tx.seq for tx in node.accepted})
    assert [tx.t for tx in node.accepted] == sorted({tx.t for tx in node.accepted})
    assert agent.status.accepted == len(node.accepted)
    assert any("node unreachable" in line for line in lines)
    assert lines[0] == "first frame: historic mode, 16 groups"
    assert any("accepted seq" in line and "reading: meter 031428571428" in line for line in lines)


async def test_agent_stops_after_max_submissions(tmp_path):
    capture = tmp_path / "tic.bin"
    capture.write_bytes(load_capture("historic_bbr_10frames.bin"))
    with NodeStub(CHAIN_ID) as node:
        async with httpx.AsyncClient() as client:
            agent = MeterAgent(FileSource(capture), KEY, NodeClient(node.url, client), 0.05,
                               now=StepClock(), out=lambda _: None, max_submissions=1)
            with trio.move_on_after(20):
                await agent.run()
        agent.source.close()
    assert agent.status.accepted == 1 and len(node.accepted) == 1


async def test_invalid_signature_is_rejected_by_the_node_with_its_reason():
    with NodeStub(CHAIN_ID) as node:
        async with httpx.AsyncClient() as client:
            api = NodeClient(node.url, client)
            assert await api.get_chain_id() == CHAIN_ID
            wrong = build_reading_tx(KEY, b"\xff" * 32, READING, t=1_760_000_000, seq=1)
            with pytest.raises(NodeRejected, match="bad signature"):
                await api.submit(wrong)
    assert node.accepted == [] and node.refused == ["bad signature"]


def _mock_client(handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("status, body", [
    (500, b"{}"), (200, b"not json"), (200, b'{"height": 3}'), (200, b'{"chain_id": "abcd"}'),
    (200, b'{"chain_id": 12}'),
])
async def test_invalid_status_answers_mean_the_node_is_unavailable(status, body):
    async with _mock_client(lambda request: httpx.Response(status, content=body)) as client:
        with pytest.raises(NodeUnavailable):
            await NodeClient("http://node", client).get_chain_id()


@pytest.mark.parametrize("status, body, expected, reason", [
    (503, b"", NodeUnavailable, "answered 503"),
    (400, b'{"error": "seq too low"}', NodeRejected, "seq too low"),
    (418, b"teapot", NodeRejected, "status 418"),
], ids=["503", "400", "418"])
async def test_invalid_tx_answers_are_classified(status, body, expected, reason):
    tx = build_reading_tx(KEY, CHAIN_ID, READING, t=1_760_000_000, seq=1)
    async with _mock_client(lambda request: httpx.Response(status, content=body)) as client:
        with pytest.raises(expected, match=reason):
            await NodeClient("http://node", client).submit(tx)


async def test_tx_is_posted_as_msgpack():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["type"], seen["body"] = request.headers["content-type"], request.content
        return httpx.Response(202, content=json.dumps({"id": "ab" * 32}).encode())

    tx = build_reading_tx(KEY, CHAIN_ID, READING, t=1_760_000_000, seq=1)
    async with _mock_client(handler) as client:
        assert await NodeClient("http://node/", client).submit(tx) == "ab" * 32
    assert seen == {"type": "application/msgpack", "body": tx.encode()}


async def test_unreachable_node_is_unavailable():
    async with httpx.AsyncClient() as client:
        with pytest.raises(NodeUnavailable):
            await NodeClient(f"http://127.0.0.1:{free_port()}", client).get_chain_id()


def test_damaged_frames_are_counted_and_never_replace_the_latest_reading():
    lines: list[str] = []
    agent = MeterAgent(FileSource(TIC_DIR / "historic_base_1frame.bin"), KEY, NodeClient("http://x", None),
                       60, now=StepClock(), out=lines.append)
    good, damaged = historic_base_frame(base=1000), historic_base_frame(base=2000)
    damaged = damaged.replace(b"BASE 000002000", b"BASE 000002001")   # checksum no longer matches
    agent.process_chunk(good + damaged)
    agent.source.close()
    assert agent.status.frames == 2 and agent.status.unusable_frames == 1
    assert agent.status.reading.import_wh == 1000
    assert "2 frames (1 unusable)" in agent.status.compute_line(agent.now())


def _account_node(committed_seq: int | None, posted: list):
    """/status, /accounts/{addr} (404 when ``committed_seq`` is None) and /tx."""
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/status":
            return httpx.Response(200, json={"chain_id": CHAIN_ID.hex()})
        if request.url.path == "/commune":
            return httpx.Response(200, json={"sealing": None})
        if request.url.path.startswith("/accounts/"):
            if committed_seq is None:
                return httpx.Response(404, json={"error": "unknown account"})
            return httpx.Response(200, json={"household": {"last_reading": {"seq": committed_seq}}})
        posted.append(decode_tx(request.content))
        return httpx.Response(202, json={"id": "ab" * 32})
    return handler


@pytest.mark.parametrize("committed, expected", [
    (None, 1_760_000_000_000), (5, 1_760_000_000_000), (1_790_000_000_000, 1_790_000_000_001),
], ids=["no_account", "old_seq", "seq_signed_under_a_clock_that_ran_ahead"])
async def test_agent_starts_past_the_committed_seq(committed, expected):
    # A restarted agent whose clock was set back after a jump is not locked out.
    posted: list = []
    async with _mock_client(_account_node(committed, posted)) as client:
        agent = MeterAgent(None, KEY, NodeClient("http://node", client), 60, now=lambda: 1_760_000_000.0,
                           out=lambda line: None)
        agent.status.reading, agent.status.reading_t = READING, 1_760_000_000
        await agent.submit_latest()
    assert [tx.seq for tx in posted] == [expected]


@pytest.mark.parametrize("answer", [httpx.Response(500), httpx.Response(200, content=b"[]"),
                                    httpx.Response(200, json={"household": {"last_reading": {"seq": "1"}}})])
async def test_invalid_account_answers_mean_the_node_is_unavailable(answer):
    async with _mock_client(lambda request: answer) as client:
        with pytest.raises(NodeUnavailable):
            await NodeClient("http://node", client).get_last_seq(KEY.public)


# ---- one reading per settlement interval (docs/cadence.md) ----------------------

def test_next_reading_time_is_a_minute_before_each_interval_end():
    from node.meter.agent import compute_next_reading_s
    assert compute_next_reading_s(1_800 * 10, 1_800) == 1_800 * 11 - 60
    assert compute_next_reading_s(1_800 * 11 - 60, 1_800) == 1_800 * 12 - 60      # strictly later
    assert compute_next_reading_s(0, 30) == 27                                    # a tenth of a short one


@given(st.floats(0, 4e9), st.integers(1, 86_400))
def test_property_next_reading_is_later_and_inside_the_next_end(now, period):
    from node.meter.agent import compute_next_reading_s
    t = compute_next_reading_s(now, period)
    assert now < t <= now + period
    assert (t + min(60, period / 10)) % period == pytest.approx(0, abs=1e-6) or \
        (t + min(60, period / 10)) % period == pytest.approx(period, abs=1e-6)


def _interval_node(posted: list, down: list[bool]):
    """/commune with a 1800 s interval; /tx answers 503 while ``down[0]``."""
    account = _account_node(None, posted)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/commune":
            return httpx.Response(200, json={"params": {"settlement_interval_s": 1800, "time_scale": 1},
                                             "sealing": None})
        if request.url.path == "/tx" and down[0]:
            return httpx.Response(503, json={"error": "down"})
        return account(request)
    return handler


async def test_agent_submits_once_per_interval_and_catches_up_after_an_outage(autojump_clock):
    start = 1_760_000_000 - 1_760_000_000 % 1800 + 100
    now = lambda: start + trio.current_time()     # noqa: E731
    posted: list = []
    down = [False]
    async with _mock_client(_interval_node(posted, down)) as client:
        agent = MeterAgent(None, KEY, NodeClient("http://node", client), None, now=now, out=lambda line: None,
                           max_submissions=4)

        async def frames():        # the meter: a fresh reading every second
            while True:
                agent.status.reading, agent.status.reading_t = READING, int(now())
                await trio.sleep(1)

        async def outage():        # the node is down across the third reading time
            await trio.sleep(2 * 1800 - 100)
            down[0] = True
            await trio.sleep(1800)
            down[0] = False

        async with trio.open_nursery() as nursery:
            nursery.start_soon(frames)
            nursery.start_soon(outage)
            nursery.start_soon(agent._submit_loop)
            await agent._done.wait()
            nursery.cancel_scope.cancel()
    ts = [tx.t for tx in posted]
    boundary = start - 100
    # One per interval, a minute before its end; the one missed in the outage is
    # caught up within MAX_BACKOFF_S of the node's return, not at the next reading time.
    # (the frame of that very second may or may not have been read yet: t or t - 1)
    assert [t - boundary for t in ts[:2]] in ([a, b] for a in (1739, 1740) for b in (3539, 3540))
    back = boundary + 3 * 1800
    assert back - 1 <= ts[2] <= back + 31
    assert ts[3] - boundary in (7140, 7139)


@pytest.mark.parametrize("answer", [
    httpx.Response(500), httpx.Response(200, content=b"not json"), httpx.Response(200, json=[1]),
    httpx.Response(200, json={"params": {}}), httpx.Response(200, json={"params": {"settlement_interval_s": 0}}),
    httpx.Response(200, json={"params": {"settlement_interval_s": 1800, "time_scale": "60"}}),
], ids=["server_error", "not_json", "not_object", "no_interval", "zero_interval", "scale_not_int"])
async def test_invalid_commune_answers_mean_the_node_is_unavailable(answer):
    async with _mock_client(lambda request: answer) as client:
        with pytest.raises(NodeUnavailable):
            await NodeClient("http://node", client).get_interval_wall_s()


def _sealing_node(posted: list, refused: list):
    """A node of a chain that seals payloads: a sealed tx is refused until a SetDataKey came."""
    public = compute_commune_public(COMMUNE_SECRET)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/status":
            return httpx.Response(200, json={"chain_id": CHAIN_ID.hex()})
        if request.url.path == "/commune":
            return httpx.Response(200, json={"sealing": {"epoch": 3, "public": public.hex()}})
        if request.url.path.startswith("/accounts/"):
            return httpx.Response(404, json={"error": "unknown account"})
        tx = decode_tx(request.content)
        if isinstance(tx, Sealed) and not any(isinstance(p, SetDataKey) for p in posted):
            refused.append(tx)
            return httpx.Response(400, json={"error": "no_data_key: no data key of epoch 3"})
        posted.append(tx)
        return httpx.Response(202, json={"id": tx.id().hex()})
    return handler


async def test_agent_seals_its_reading_and_publishes_its_data_key_first():
    posted: list = []
    refused: list = []
    async with _mock_client(_sealing_node(posted, refused)) as client:
        agent = MeterAgent(None, KEY, NodeClient("http://node", client), 60, now=lambda: 1_760_000_000.0,
                           out=lambda line: None)
        agent.status.reading, agent.status.reading_t = READING, 1_760_000_000
        with pytest.raises(NodeUnavailable, match="data key of epoch 3"):
            await agent.submit_latest()
        await agent.submit_latest()       # the retry, once the key is in a block
    [first] = refused
    data_key_tx, sealed = posted
    assert isinstance(data_key_tx, SetDataKey) and data_key_tx.epoch == 3 and sealed.epoch == 3
    assert verify_message(data_key_tx, CHAIN_ID) and verify_message(sealed, CHAIN_ID)
    # The commune key's holder opens the household's data key, then the reading.
    data_key, _ = open_data_key(COMMUNE_SECRET, data_key_tx.sealed)
    reading = decode_sealable(open_payload(data_key, sealed.box))
    assert (reading.import_wh, reading.t, reading.seq) == (READING.import_wh, 1_760_000_000, sealed.nonce)
    # And the household reads it back with its key file alone.
    assert open_own_sealed(KEY.seed, sealed) == reading
    assert READING.meter.encode() not in sealed.encode() and first.box != sealed.box
