"""``voisinage sim consensus`` and ``voisinage bench consensus``."""

import json

from node.cli import main

KEYS = {"committed_heights", "safety_violations", "evidence_committed", "rounds_max", "virtual_seconds",
        "wall_seconds"}


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_sim_consensus_json(capsys):
    report = run_json(capsys, ["sim", "consensus", "--validators", "4", "--byzantine", "1", "--drop", "0.2",
                               "--partition-every", "4", "--heights", "5", "--seed", "3", "--json"])
    assert KEYS <= set(report)
    assert report["committed_heights"] >= 5
    assert report["safety_violations"] == 0
    assert report["evidence_committed"] >= 1


def test_sim_consensus_reports_and_exits_zero_when_a_third_or_more_is_byzantine(capsys):
    """It reports rather than judges: with f >= n/3 nothing is promised, exit is still 0."""
    report = run_json(capsys, ["sim", "consensus", "--validators", "3", "--byzantine", "2", "--heights", "2",
                               "--seed", "1", "--json"])
    assert KEYS <= set(report)


def test_sim_consensus_text_output(capsys):
    assert main(["sim", "consensus", "--validators", "4", "--crash", "1", "--heights", "3"]) == 0
    out = capsys.readouterr().out
    assert "committed_heights" in out and "safety_violations  0" in out


def test_invalid_sim_arguments(capsys):
    assert main(["sim", "consensus", "--validators", "3", "--byzantine", "4"]) == 1
    assert "cannot exceed" in capsys.readouterr().err
    assert main(["sim", "consensus", "--drop", "1.5"]) == 2


def test_bench_consensus_json(capsys):
    report = run_json(capsys, ["bench", "consensus", "--seconds", "0.1", "--validators", "4",
                               "--validators", "7", "--json"])
    rows = report["results"]
    assert [r["validators"] for r in rows] == [4, 7]
    for row in rows:
        assert row["heights_per_s"] > 0 and row["crypto_baseline_heights_per_s"] > 0
        assert row["ratio_to_baseline"] > 0


def test_bench_consensus_text(capsys):
    assert main(["bench", "consensus", "--seconds", "0.1", "--validators", "4"]) == 0
    out = capsys.readouterr().out
    assert "n=4" in out and "heights/s" in out and "goal n=4" in out
