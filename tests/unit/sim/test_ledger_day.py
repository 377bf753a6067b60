"""``voisinage demo ledger``: a simulated day through the real state machine."""

from __future__ import annotations

import json

import pytest

from node.cli import main
from node.sim.ledger_day import format_summary, run_ledger_demo


@pytest.fixture(scope="module")
def summary():
    return run_ledger_demo(4, seed=1)


def test_demo_day_settles_every_interval_and_conserves_value(summary):
    assert len(summary["intervals"]) == 48
    assert summary["rejected"] == []
    assert summary["conserved"] and summary["state_hash_verified"]
    assert sum(iv["sum_e"] for iv in summary["intervals"]) == summary["totals"]["minted"]
    assert sum(iv["m"] for iv in summary["intervals"]) == summary["totals"]["allocated"]
    for iv in summary["intervals"]:
        assert iv["m"] == min(iv["sum_e"], iv["sum_i"]) and iv["exported"] == iv["sum_e"] - iv["m"]
    # The sun shines at noon and not at midnight.
    assert summary["intervals"][24]["sum_e"] > 0 and summary["intervals"][0]["sum_e"] == 0
    assert len(summary["epochs"]) == 1 and sum(summary["epochs"][0]["shares"].values()) > 0
    assert sum(summary["allocation"].values()) == 10_000


def test_demo_is_deterministic_from_its_seed(summary):
    assert run_ledger_demo(4, seed=1)["state_hash"] == summary["state_hash"]


def test_demo_summary_text_has_one_line_per_interval(summary):
    text = format_summary(summary)
    assert text.count("\n12:00-12:30 ") == 1 and "whole day" in text
    assert "balances sum to minted − allocated: yes" in text


def test_demo_cli_json(capsys):
    assert main(["demo", "ledger", "--households", "3", "--seed", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["households"] == 3 and doc["conserved"]


@pytest.mark.parametrize("args", [["--households", "1"], ["--households", "5000"], ["--seed", "-3"]])
def test_invalid_demo_arguments_are_one_line_errors(capsys, args):
    assert main(["demo", "ledger", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
