"""node/service/heartbeat.py: validators' gossip heartbeats, checked as DESIGN §7 says."""

from __future__ import annotations

import dataclasses

import pytest

from node.net import Outcome
from node.net.messages import MAX_HEARTBEAT_BYTES, Heartbeat
from node.service.heartbeat import FRESH_S, LIVE_S, HeartbeatBook
from wire import Keypair, decode, sign_message

CHAIN = bytes(range(32))
V = [Keypair(bytes([i + 1]) * 32) for i in range(3)]
OUTSIDER = Keypair(b"\x55" * 32)
NOW_MS = 1_760_000_000_000


class Clocks:
    def __init__(self) -> None:
        self.chain_ms, self.mono = NOW_MS, 100.0


def make_book(clocks: Clocks, scale: int = 1) -> HeartbeatBook:
    return HeartbeatBook(CHAIN, lambda: clocks.chain_ms, scale, monotonic=lambda: clocks.mono)


def heartbeat(key: Keypair, time_ms: int = NOW_MS, height: int = 7, chain: bytes = CHAIN) -> bytes:
    return sign_message(Heartbeat(validator=key.public, height=height, time_ms=time_ms, sig=b""), chain, key).encode()


def check(book: HeartbeatBook, data: bytes, was=lambda key: key == V[2].public):
    return book.check(data, [V[0].public, V[1].public], was)


def test_a_fresh_heartbeat_of_a_validator_is_accepted_and_makes_it_live():
    clocks = Clocks()
    book = make_book(clocks)
    assert book.get_age_s(V[0].public) is None and not book.is_live(V[0].public)
    assert check(book, heartbeat(V[0])).outcome is Outcome.ACCEPT
    clocks.mono += 4
    assert book.get_age_s(V[0].public) == pytest.approx(4) and book.is_live(V[0].public)
    clocks.mono += LIVE_S
    assert not book.is_live(V[0].public)


def test_own_heartbeat_is_signed_and_recorded():
    clocks = Clocks()
    book = make_book(clocks)
    data = book.build(V[1], 9)
    assert book.is_live(V[1].public)
    assert check(make_book(clocks), data).outcome is Outcome.ACCEPT


@pytest.mark.parametrize("data, reason", [
    (b"\x93garbage", "malformed"),
    (b"\x00" * (MAX_HEARTBEAT_BYTES + 1), "malformed"),
    (heartbeat(OUTSIDER), "unknown_signer"),
    (heartbeat(V[0], chain=bytes(32)), "bad_signature"),
], ids=["malformed", "oversize", "unknown_signer", "bad_signature"])
def test_invalid_heartbeats_are_rejected(data, reason):
    verdict = check(make_book(Clocks()), data)
    assert (verdict.outcome, verdict.reason) == (Outcome.REJECT, reason)


def test_invalid_forged_signature_is_rejected():
    hb = decode(heartbeat(V[0]), Heartbeat)
    forged = dataclasses.replace(hb, height=hb.height + 1).encode()
    assert check(make_book(Clocks()), forged).reason == "bad_signature"


@pytest.mark.parametrize("shift_ms, reason", [
    (int(FRESH_S * 1000) + 1, "too_far_ahead"), (-int(FRESH_S * 1000) - 1, "stale"),
])
def test_heartbeats_out_of_the_fresh_window_are_ignored(shift_ms, reason):
    verdict = check(make_book(Clocks()), heartbeat(V[0], NOW_MS + shift_ms))
    assert (verdict.outcome, verdict.reason) == (Outcome.IGNORE, reason)


def test_the_fresh_window_follows_the_time_scale():
    assert check(make_book(Clocks(), scale=60), heartbeat(V[0], NOW_MS - 600_000)).outcome is Outcome.ACCEPT


def test_a_replayed_or_older_heartbeat_is_ignored_and_a_removed_validator_is_not_scored():
    book = make_book(Clocks())
    assert check(book, heartbeat(V[0], NOW_MS)).outcome is Outcome.ACCEPT
    assert check(book, heartbeat(V[0], NOW_MS)).reason == "duplicate"
    assert check(book, heartbeat(V[0], NOW_MS - 1)).reason == "duplicate"
    verdict = check(book, heartbeat(V[2]))
    assert (verdict.outcome, verdict.reason) == (Outcome.IGNORE, "not_validator")
