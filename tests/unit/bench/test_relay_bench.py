"""``voisinage bench relay``: two communes on real stores, the relayer's own passes, exact books."""

from __future__ import annotations

import json

from node.bench.relay import AMOUNT_WH, run_relay_bench
from node.cli import main
from node.relay.relayer import MAX_PACKETS_PER_PASS


def test_a_tiny_run_delivers_every_packet_and_its_report_adds_up():
    n = 7
    r = run_relay_bench(n=n, households=4)
    books, relay, proofs, update = r["books"], r["relay"], r["proof_bytes"], r["client_update"]
    # Every packet sent is received on B and acknowledged on A; nothing is refused or lost.
    assert books["exact"] and books["sent"] == books["delivered"] == books["received_on_b"] == n
    assert books["escrow_on_a_wh"] == books["vouchers_on_b_wh"] == n * AMOUNT_WH and books["in_flight"] == 0
    assert relay["received"] == relay["acknowledged"] == n and relay["refused"] == {}
    # Each packet carries two proofs; the client updates go both ways.
    assert proofs["recv_mean"] > 0 and proofs["ack_mean"] > 0
    assert proofs["per_packet"] == proofs["recv_mean"] + proofs["ack_mean"]
    assert proofs["recv_tx_mean"] > proofs["recv_mean"]
    assert update["count"] == relay["client_updates"] >= 2 and update["tx_bytes"] > 0
    # Every block is accounted for: A's link, baseline, send and one a round; B's link and one a round.
    assert relay["blocks_a"] == 1 + r["baseline"]["blocks"] + r["send"]["blocks"] + relay["rounds"]
    assert relay["blocks_b"] == 1 + relay["rounds"]
    assert r["baseline"]["transfers"] == r["send"]["packets"] == r["packets"] == n
    for figure in (r["baseline"]["transfers_per_s"], r["send"]["sends_per_s"], relay["packets_per_s"],
                   update["check_us"], r["ratios"]["transfers_per_relayed_packet"]):
        assert figure > 0


def test_more_packets_than_a_pass_carries_take_several_passes():
    n = MAX_PACKETS_PER_PASS + 3
    r = run_relay_bench(n=n, households=4, validators=1)
    assert r["books"]["exact"] and r["books"]["delivered"] == n
    assert r["relay"]["passes"] >= 3      # receive and acknowledge the first page, then the rest


def test_cli_prints_json_with_the_figures(capsys):
    assert main(["bench", "relay", "--packets", "3", "--households", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["packets"] == 3 and report["books"]["exact"]
    assert {"baseline", "send", "relay", "proof_bytes", "client_update", "ratios"} <= set(report)


def test_cli_refuses_a_missing_workdir(tmp_path, capsys):
    assert main(["bench", "relay", "--packets", "1", "--workdir", str(tmp_path / "nope")]) != 0
    err = capsys.readouterr().err
    assert "is not a directory" in err and "Traceback" not in err
