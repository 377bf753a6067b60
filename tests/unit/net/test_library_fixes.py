"""py-libp2p 0.8.1 fixes of node/net/libp2p_fixes.py ``apply_library_fixes``: the signed peer
record of a pubsub RPC verified once per peer, our own record re-derived at most every
LOCAL_RECORD_RECHECK_S, and yamux credit not released on every read.

Real libp2p objects throughout: hosts from ``libp2p.new_host`` with generated keys, and
RPCs carrying a ``senderRecord`` made by libp2p's own ``env_to_send_in_RPC``. Calls to
the wrapped library functions are counted by spies that call the real function.
"""

from __future__ import annotations

import weakref

from types import SimpleNamespace

import pytest

import libp2p.pubsub.gossipsub as libp2p_gossipsub
import libp2p.pubsub.pubsub as libp2p_pubsub
import libp2p.stream_muxer.yamux.yamux as libp2p_yamux
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.envelope import consume_envelope
from libp2p.peer.peerstore import env_to_send_in_RPC, issue_and_cache_local_record
from libp2p.pubsub.pb import rpc_pb2

from node.net import gossip, libp2p_fixes


class Spy:
    """Calls the real function and counts the calls."""

    def __init__(self, real) -> None:
        self.real, self.calls = real, 0

    def __call__(self, *args):
        self.calls += 1
        return self.real(*args)


@pytest.fixture
def consume_spy(monkeypatch) -> Spy:
    monkeypatch.setattr(libp2p_fixes, "_ACCEPTED_RECORDS", weakref.WeakKeyDictionary())
    spy = Spy(libp2p_fixes._consume_signed_record)
    monkeypatch.setattr(libp2p_fixes, "_consume_signed_record", spy)
    return spy


def make_host():
    return new_host(key_pair=create_new_key_pair())


def rpc_with_record(record: bytes | None) -> rpc_pb2.RPC:
    rpc = rpc_pb2.RPC()
    if record is not None:
        rpc.senderRecord = record
    return rpc


def record_of(host) -> bytes:
    envelope, _ = env_to_send_in_RPC(host)
    return envelope


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


# ---- the patches are installed ---------------------------------------------------

def test_apply_library_fixes_installs_the_wrappers_in_both_pubsub_modules():
    libp2p_fixes.apply_library_fixes()
    libp2p_fixes.apply_library_fixes()                     # idempotent
    assert libp2p_pubsub.maybe_consume_signed_record is libp2p_fixes.consume_signed_record_once
    assert libp2p_gossipsub.maybe_consume_signed_record is libp2p_fixes.consume_signed_record_once
    assert libp2p_pubsub.env_to_send_in_RPC is libp2p_fixes.local_record_for_rpc
    assert libp2p_gossipsub.env_to_send_in_RPC is libp2p_fixes.local_record_for_rpc
    # The wrappers call the library's own functions, not themselves.
    assert libp2p_fixes._consume_signed_record is not libp2p_fixes.consume_signed_record_once
    assert libp2p_fixes._local_record_for_rpc is env_to_send_in_RPC


def test_yamux_no_longer_releases_credit_on_every_read(monkeypatch):
    libp2p_fixes.apply_library_fixes()
    # Whatever the library's own switch (PY_YAMUX_RELEASE_ON_READ) says.
    monkeypatch.setenv("PY_YAMUX_RELEASE_ON_READ", "1")
    assert libp2p_yamux._yamux_release_on_read() is False


# ---- consume_signed_record_once ----------------------------------------------------

def test_a_peer_record_is_verified_once_then_taken_as_it_is(consume_spy):
    me, peer = make_host(), make_host()
    rpc = rpc_with_record(record_of(peer))
    assert libp2p_fixes.consume_signed_record_once(rpc, me, peer.get_id()) is True
    assert consume_spy.calls == 1
    for _ in range(3):
        assert libp2p_fixes.consume_signed_record_once(rpc_with_record(record_of(peer)), me, peer.get_id()) is True
    assert consume_spy.calls == 1


def test_an_rpc_without_a_record_is_accepted_without_verifying(consume_spy):
    me, peer = make_host(), make_host()
    assert libp2p_fixes.consume_signed_record_once(rpc_with_record(None), me, peer.get_id()) is True
    assert consume_spy.calls == 0


def test_invalid_record_with_a_bad_signature_is_refused_and_not_cached(consume_spy):
    me, peer = make_host(), make_host()
    bad = rpc_with_record(flip_last_byte(record_of(peer)))
    assert libp2p_fixes.consume_signed_record_once(bad, me, peer.get_id()) is False
    assert libp2p_fixes.consume_signed_record_once(bad, me, peer.get_id()) is False
    assert consume_spy.calls == 2                    # checked again: a refusal is not remembered
    # The good record is then verified (once) and accepted.
    good = rpc_with_record(record_of(peer))
    assert libp2p_fixes.consume_signed_record_once(good, me, peer.get_id()) is True
    assert libp2p_fixes.consume_signed_record_once(good, me, peer.get_id()) is True
    assert consume_spy.calls == 3


def test_invalid_bad_record_after_a_good_one_does_not_evict_it(consume_spy):
    me, peer = make_host(), make_host()
    good = rpc_with_record(record_of(peer))
    assert libp2p_fixes.consume_signed_record_once(good, me, peer.get_id()) is True
    assert libp2p_fixes.consume_signed_record_once(rpc_with_record(flip_last_byte(good.senderRecord)), me,
                                             peer.get_id()) is False
    assert libp2p_fixes.consume_signed_record_once(good, me, peer.get_id()) is True
    assert consume_spy.calls == 2                    # the good one was not checked again


def test_invalid_record_of_another_peer_is_refused_even_if_it_was_accepted_from_that_peer(consume_spy):
    me, alice, mallory = make_host(), make_host(), make_host()
    alice_rpc = rpc_with_record(record_of(alice))
    assert libp2p_fixes.consume_signed_record_once(alice_rpc, me, alice.get_id()) is True
    # Mallory replays Alice's record over Mallory's own connection.
    assert libp2p_fixes.consume_signed_record_once(alice_rpc, me, mallory.get_id()) is False
    assert libp2p_fixes.consume_signed_record_once(alice_rpc, me, mallory.get_id()) is False
    assert consume_spy.calls == 3


def test_a_new_record_from_the_same_peer_is_verified_again(consume_spy):
    me, peer = make_host(), make_host()
    first = record_of(peer)
    assert libp2p_fixes.consume_signed_record_once(rpc_with_record(first), me, peer.get_id()) is True
    second = issue_and_cache_local_record(peer)      # a later seq, e.g. after an address change
    assert second != first
    assert libp2p_fixes.consume_signed_record_once(rpc_with_record(second), me, peer.get_id()) is True
    assert consume_spy.calls == 2
    # The older record again is no longer what we hold: the library judges it again
    # (whether it still takes it depends on what its peerstore kept).
    libp2p_fixes.consume_signed_record_once(rpc_with_record(first), me, peer.get_id())
    assert consume_spy.calls == 3


def test_each_receiving_host_verifies_a_record_itself(consume_spy):
    me, other_me, peer = make_host(), make_host(), make_host()
    rpc = rpc_with_record(record_of(peer))
    assert libp2p_fixes.consume_signed_record_once(rpc, me, peer.get_id()) is True
    assert libp2p_fixes.consume_signed_record_once(rpc, other_me, peer.get_id()) is True
    assert consume_spy.calls == 2


def test_the_accepted_records_cache_is_bounded(consume_spy, monkeypatch):
    monkeypatch.setattr(libp2p_fixes, "ACCEPTED_RECORDS_MAX", 2)
    me = make_host()
    peers = [make_host() for _ in range(3)]
    rpcs = [rpc_with_record(record_of(p)) for p in peers]
    for rpc, p in zip(rpcs, peers):
        assert libp2p_fixes.consume_signed_record_once(rpc, me, p.get_id()) is True
    assert len(libp2p_fixes._ACCEPTED_RECORDS[me]) == 2
    assert libp2p_fixes.consume_signed_record_once(rpcs[2], me, peers[2].get_id()) is True
    assert consume_spy.calls == 3                    # the newest is still held
    assert libp2p_fixes.consume_signed_record_once(rpcs[0], me, peers[0].get_id()) is True
    assert consume_spy.calls == 4                    # the oldest was dropped: checked again


# ---- local_record_for_rpc ------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def record_spy(monkeypatch) -> tuple[Spy, FakeClock]:
    clock = FakeClock()
    monkeypatch.setattr(libp2p_fixes, "time", SimpleNamespace(monotonic=clock.monotonic))
    monkeypatch.setattr(libp2p_fixes, "_LOCAL_RECORDS", weakref.WeakKeyDictionary())
    spy = Spy(libp2p_fixes._local_record_for_rpc)
    monkeypatch.setattr(libp2p_fixes, "_local_record_for_rpc", spy)
    return spy, clock


def test_own_record_is_derived_once_per_recheck_period(record_spy):
    spy, clock = record_spy
    host = make_host()
    envelope, _ = libp2p_fixes.local_record_for_rpc(host)
    assert spy.calls == 1
    _, record = consume_envelope(envelope, "libp2p-peer-record")
    assert record.peer_id == host.get_id()           # a real signed record of this host
    clock.now += libp2p_fixes.LOCAL_RECORD_RECHECK_S - 0.5
    assert libp2p_fixes.local_record_for_rpc(host) == (envelope, False)
    assert spy.calls == 1
    clock.now += 0.5                                 # LOCAL_RECORD_RECHECK_S since the first
    again, _ = libp2p_fixes.local_record_for_rpc(host)
    assert spy.calls == 2
    assert again == envelope                         # addresses unchanged: the same record
    assert libp2p_fixes.local_record_for_rpc(host) == (envelope, False)
    assert spy.calls == 2


def test_a_record_changed_by_the_library_shows_after_the_recheck_period(record_spy):
    spy, clock = record_spy
    host = make_host()
    first, _ = libp2p_fixes.local_record_for_rpc(host)
    newer = issue_and_cache_local_record(host)       # what the library would now send
    assert newer != first
    assert libp2p_fixes.local_record_for_rpc(host)[0] == first
    clock.now += libp2p_fixes.LOCAL_RECORD_RECHECK_S
    assert libp2p_fixes.local_record_for_rpc(host)[0] == newer


def test_each_host_gets_its_own_record(record_spy):
    spy, _ = record_spy
    a, b = make_host(), make_host()
    rec_a, _ = libp2p_fixes.local_record_for_rpc(a)
    rec_b, _ = libp2p_fixes.local_record_for_rpc(b)
    assert spy.calls == 2
    assert consume_envelope(rec_a, "libp2p-peer-record")[1].peer_id == a.get_id()
    assert consume_envelope(rec_b, "libp2p-peer-record")[1].peer_id == b.get_id()


def test_an_unchanged_peer_record_is_consumed_again_hourly(consume_spy, monkeypatch):
    """libp2p forgets certified addresses 2 h after a record was consumed: the same
    record is verified and consumed again once RECORD_RECONSUME_S has passed."""
    clock = FakeClock()
    monkeypatch.setattr(libp2p_fixes, "time", SimpleNamespace(monotonic=clock.monotonic))
    me, peer = make_host(), make_host()
    record = record_of(peer)
    assert libp2p_fixes.consume_signed_record_once(rpc_with_record(record), me, peer.get_id()) is True
    clock.now += libp2p_fixes.RECORD_RECONSUME_S - 1
    assert libp2p_fixes.consume_signed_record_once(rpc_with_record(record), me, peer.get_id()) is True
    assert consume_spy.calls == 1
    clock.now += 2
    assert libp2p_fixes.consume_signed_record_once(rpc_with_record(record), me, peer.get_id()) is True
    assert consume_spy.calls == 2
    assert libp2p_fixes.consume_signed_record_once(rpc_with_record(record), me, peer.get_id()) is True
    assert consume_spy.calls == 2


# ---- why a peer is banned ------------------------------------------------------------

@pytest.mark.parametrize("cause", ["invalid_messages", "graft_flood", "equivocation", "iwant_spam", "ihave_spam"])
def test_the_ban_reason_names_what_brought_the_score_down(cause):
    router = gossip.make_router()
    scorer, peer, topics = router.scorer, make_host().get_id(), ["/t/a", "/t/b"]
    scorer.on_first_delivery(peer, "/t/a")         # some credit, as an honest peer has
    if cause == "invalid_messages":
        for _ in range(6):
            scorer.on_invalid_message(peer, "/t/b")
    else:
        penalize = getattr(scorer, {"graft_flood": "penalize_graft_flood", "equivocation": "penalize_equivocation",
                                    "iwant_spam": "penalize_iwant_spam", "ihave_spam": "penalize_ihave_spam"}[cause])
        for _ in range(10):                        # past the behaviour threshold
            penalize(peer)
        scorer.penalize_behavior(peer, 0.5)        # a smaller, other penalty
    assert scorer.score(peer, topics) < 0
    assert gossip.get_low_score_reason(scorer, peer, topics) == cause


def test_a_peer_regrafting_its_three_topics_twice_is_not_banned_but_an_equivocator_is():
    router = gossip.make_router()
    scorer, topics = router.scorer, ["/t/tx", "/t/consensus", "/t/evidence"]
    churned, equivocator = make_host().get_id(), make_host().get_id()
    for _ in range(2):
        for _topic in topics:
            scorer.penalize_graft_flood(churned)
    assert scorer.score(churned, topics) > gossip.BAN_THRESHOLD
    for _ in range(3):                              # three more rounds: a flood
        for _topic in topics:
            scorer.penalize_graft_flood(churned)
    assert scorer.score(churned, topics) < gossip.BAN_THRESHOLD
    scorer.penalize_equivocation(equivocator)
    assert scorer.score(equivocator, topics) < gossip.BAN_THRESHOLD
