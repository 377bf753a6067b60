"""Fast checks of the e2e building blocks: delay queue, partition sides, checks, table, soak maths."""

from __future__ import annotations

from dataclasses import dataclass

from node.e2e.checks import check_txs
from node.localnet.delayline import MAX_QUEUED, DelayQueue
from node.e2e.load import Acked, AckLog, Follower
from node.localnet.netns import compute_tag
from node.e2e.perturb import compute_partition_sides
from node.e2e.soak import compute_growth
from node.e2e.table import render_table


def test_delay_queue_is_fifo_and_within_bounds():
    q = DelayQueue(delay_ms=125, jitter_ms=75, seed=3)
    for i in range(200):
        q.push(bytes([i]), now=0.0)
    due = [d for d, _, _ in sorted(q.heap)]
    assert 0.05 <= due[0] and due[-1] <= 0.2
    assert [f[0] for f in q.pop_due(1.0)] == list(range(200))   # never reordered
    assert q.wait_s(1.0) == 1.0


def test_delay_queue_is_bounded():
    q = DelayQueue(10, 0, 1)
    for _ in range(MAX_QUEUED + 5):
        q.push(b"x", 0.0)
    assert len(q.heap) == MAX_QUEUED and q.dropped == 5


def test_tag_fits_interface_names():
    assert compute_tag(0) == "0" and compute_tag(35) == "z" and int(compute_tag(4194304), 36) == 4194304
    assert len(f"vsn{compute_tag(4194304)}h199") <= 15


@dataclass
class N:
    index: int
    is_validator: bool


class C:
    nodes = [N(0, True), N(1, True), N(2, True), N(3, True), N(4, False), N(5, False), N(6, False)]


def test_partition_splits_validators_two_two_and_households_alternate():
    assert compute_partition_sides(C()) == [[0, 1, 4, 6], [2, 3, 5]]


def _acked(tx_id, kind, seq, signer="aa"):
    return Acked(tx_id, kind, signer, seq, "household-0", 0.0, b"")


def test_check_txs_committed_superseded_lost_duplicate():
    log = AckLog()
    for entry in (_acked("r1", "reading", 1), _acked("r2", "reading", 2), _acked("r4", "reading", 4),
                  _acked("t1", "transfer", 1)):
        log.add(entry)
    f = Follower()
    f.process_block({"height": 1, "txs": [{"id": "r1", "type": "tx/reading", "signer": "aa", "seq": 1},
                                          {"id": "r3", "type": "tx/reading", "signer": "aa", "seq": 3}]}, 0.0)
    f.process_block({"height": 2, "txs": [{"id": "r3", "type": "tx/reading", "signer": "aa", "seq": 3}]}, 1.0)
    out = check_txs(log, f)
    assert (out.acked, out.committed, out.superseded) == (4, 1, 1)
    assert sorted(out.lost) == ["r4", "t1"]          # a transfer is never "superseded"
    assert out.duplicates == ["r3"]


def test_soak_growth_uses_the_warm_up_median():
    samples = [(t, 100_000) for t in range(0, 61, 10)] + [(3600, 110_240)]
    g = compute_growth(samples)
    assert g["start_mib"] == round(100_000 / 1024, 1) and g["growth_mib"] == 10.0
    assert g["growth_mib_per_h"] == 10.0


def test_table_marks_failures_and_lists_problems():
    ok = {"manifest": "kill", "passed": True, "perturbations": [{"op": "kill", "node": "validator-1",
                                                                 "recovery_s": 3.5, "error": None}],
          "txs": {"acked": 10, "lost_count": 0}, "agreement": {"forks": []}}
    bad = {"manifest": "latency", "passed": False, "problems": ["fork: nodes disagree"], "netns": True}
    text = render_table([ok, bad], "x", "e2e/reports")
    assert "| kill | loopback | kill validator-1: 3.5 s |" in text
    assert "| latency | netns |" in text and "FAIL" in text and "- latency: fork: nodes disagree" in text


def test_double_sign_rewrite_adds_a_provable_twin_after_each_own_vote():
    import pytest
    from consensus.events import Broadcast
    from consensus.vote import PREVOTE, Vote, make_duplicate_vote, verify_evidence
    from node.e2e.byzantine import make_effects_rewrite
    from wire import Keypair, sign_message

    chain_id, me, other = bytes(32), Keypair(bytes([1]) * 32), Keypair(bytes([2]) * 32)
    own = sign_message(Vote(kind=PREVOTE, height=3, round=0, block_id=bytes([7]) * 32, validator=me.public,
                            sig=bytes(64)), chain_id, me)
    relayed = sign_message(Vote(kind=PREVOTE, height=3, round=0, block_id=None, validator=other.public,
                                sig=bytes(64)), chain_id, other)
    out = make_effects_rewrite("double-sign")([Broadcast(own), Broadcast(relayed)], chain_id, me)
    assert [e.message for e in out[:1] + out[2:]] == [own, relayed]     # another's vote gets no twin
    twin = out[1].message
    assert (twin.height, twin.round, twin.kind, twin.block_id) == (3, 0, PREVOTE, None)
    verify_evidence([me.public, other.public], chain_id, make_duplicate_vote(own, twin))
    with pytest.raises(ValueError):
        make_effects_rewrite("lie")


def test_follower_opens_the_loads_sealed_txs_to_tell_readings_from_transfers():
    # docs/privacy.md "Sealed payloads": blocks show envelopes; the load opens its own
    # (household keys) so a later sealed reading still supersedes an earlier one.
    from node.localnet.meters import Meter
    from node.home.keyfile import new_keypair
    from tokens.txs import MeterReading, Transfer, decode_tx

    chain_id, key, other = bytes(32), new_keypair(), new_keypair()
    meter = Meter(spec=None, key=key, url="", sim=None, seal_epoch=0)

    def envelope_json(tx, tx_id: str) -> dict:
        env = decode_tx(meter.encode(tx, chain_id))
        return {"id": tx_id, "type": "tx/sealed", "signer": env.signer.hex(), "nonce": env.nonce,
                "epoch": env.epoch, "mac": env.mac.hex(), "box": env.box.hex(), "sig": env.sig.hex()}

    reading = MeterReading(signer=key.public, meter="m", seq=5, t=10, import_wh=1, export_wh=0, sig=b"")
    transfer = Transfer(signer=key.public, nonce=9, to=other.public, cls="kwh", amount=1, memo="", sig=b"")
    log = AckLog()
    log.add(_acked("r1", "reading", 2, signer=key.public.hex()))
    log.add(_acked("t1", "transfer", 3, signer=key.public.hex()))
    # Acknowledged in an envelope of the old epoch; its node re-sealed the same reading
    # (seq 5) and transfer (nonce 9) after a rotation: other ids, committed all the same.
    log.add(_acked("r5-old-epoch", "reading", 5, signer=key.public.hex()))
    log.add(_acked("t9-old-epoch", "transfer", 9, signer=key.public.hex()))
    f = Follower(seeds={key.public.hex(): key.seed})
    f.process_block({"height": 1, "txs": [envelope_json(reading, "r5"), envelope_json(transfer, "t9")]}, 0.0)
    assert f.max_seq == {("reading", key.public.hex()): 5, ("transfer", key.public.hex()): 9}
    assert f.commit_times == [(0.0, 1, 1)]
    out = check_txs(log, f)
    assert out.superseded == 1 and out.lost == ["t1"]     # a transfer is never superseded
    assert out.resealed == 2 and all(f.is_done(e) for e in log.acked.values() if e.tx_id != "t1")
    # Without the household's key an envelope is neither a reading nor a transfer.
    blind = Follower()
    blind.process_block({"height": 1, "txs": [envelope_json(reading, "r5")]}, 0.0)
    assert blind.max_seq == {} and blind.committed == {"r5": [1]}


def test_judge_wants_a_settled_interval_in_every_store():
    from pathlib import Path

    from node.e2e.manifest import parse_manifest
    from node.e2e.runner import judge

    m = parse_manifest(b"validators = 1\nhouseholds = 1\n", Path("m.toml"))
    agreement = {"forks": [], "state_hash_mismatches": [], "missing": [], "light_mismatches": [], "unreachable": [],
                 "lagging": [], "common_height": 9}
    report = {"agreement": agreement, "txs": {"lost": [], "duplicates": []}, "honest_bans": [],
              "blocks_during_load": 5, "perturbations": [], "evidence": {}, "hostile": [],
              "intervals": [{"node": "validator-0", "settled": 3, "violations": []},
                            {"node": "household-0", "settled": 2, "violations": []}]}
    assert judge(m, report) == []
    report["intervals"][1]["settled"] = 0
    assert judge(m, report) == ["household-0: no settled interval in its store (the settlement check held of "
                                "nothing)"]
    report["intervals"][0]["violations"] = ["interval 0: minted 1 - allocated 0 != ΣE 0 - M 0"]
    assert judge(m, report)[0] == "validator-0: interval 0: minted 1 - allocated 0 != ΣE 0 - M 0"
