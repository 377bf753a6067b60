"""The offline tally (DESIGN §5): ``voisinage gov tally --input CASE.json``."""

from __future__ import annotations

import json

import pytest

from governance import GovernanceError, run_case
from node.cli import main

CATEGORIES = ["pensions", "energy", "roads", "startups", "canteen", "security"]


def allocation_case(**changes):
    case = {
        "topic": "allocation",
        "weights": {"alice": 1, "bob": 1, "carol": 2, "dave": 1, "eve": 1},
        "delegations": [{"from": "dave", "topic": "*", "to": "carol"},
                        {"from": "eve", "topic": "allocation", "to": None},
                        {"from": "eve", "topic": "*", "to": "alice"}],
        "categories": CATEGORIES,
        "rule": "independent_markets",
        "ballots": {"alice": [10_000, 0, 0, 0, 0, 0], "bob": [0, 10_000, 0, 0, 0, 0],
                    "carol": [0, 0, 10_000, 0, 0, 0]},
    }
    case.update(changes)
    return case


def params_case(**changes):
    case = {
        "topic": "params",
        "weights": {"a": 1, "b": 1, "c": 1, "d": 1},
        "delegations": [{"from": "c", "topic": "params", "to": "a"}],
        "votes": {"a": "yes", "b": "no"},
        "quorum_bp": 2000, "threshold_bp": 5000,
    }
    case.update(changes)
    return case


def test_allocation_case_output():
    # Single-minded ballots: independent markets is proportional to the weight
    # received (alice 1, bob 1, carol 2 + dave 1); eve's none blocks her '*'.
    assert run_case(allocation_case()) == {
        "allocation": {"pensions": 2000, "energy": 2000, "roads": 6000, "startups": 0, "canteen": 0,
                       "security": 0},
        "effective_weight": {"alice": 1, "bob": 1, "carol": 3},
        "abstained_weight": 1,
        "counted_weight": 5,
    }


def test_allocation_case_with_mean_rule():
    case = allocation_case(rule="mean", ballots={"alice": [4000, 1000, 1000, 2000, 1000, 1000],
                                                 "bob": [0, 5000, 0, 5000, 0, 0]})
    result = run_case(case)
    assert result["allocation"] == {"pensions": 2000, "energy": 3000, "roads": 500, "startups": 3500,
                                    "canteen": 500, "security": 500}
    assert result["effective_weight"] == {"alice": 1, "bob": 1}
    assert result["abstained_weight"] == 4


def test_params_case_output():
    assert run_case(params_case()) == {"yes": 2, "no": 1, "abstain": 0, "participation_bp": 7500,
                                       "passed": True, "effective_weight": {"a": 2, "b": 1}}


def test_delegations_may_be_left_out():
    case = params_case()
    del case["delegations"]
    assert run_case(case)["yes"] == 1


INVALID = [
    ("delegation to unknown voter", params_case(delegations=[{"from": "a", "topic": "*", "to": "zoe"}]),
     "to unknown voter 'zoe'"),
    ("delegation from unknown voter", params_case(delegations=[{"from": "zoe", "topic": "*", "to": "a"}]),
     "from unknown voter 'zoe'"),
    ("ballot not summing to 10000", allocation_case(ballots={"alice": [5000, 0, 0, 0, 0, 4999]}),
     "sums to 9999, not 10000"),
    ("wrong number of categories", allocation_case(ballots={"alice": [5000, 5000]}),
     "has 2 values for 6 categories"),
    ("unknown rule", allocation_case(rule="borda"), "unknown rule 'borda'"),
    ("unknown topic", params_case(topic="roads"), "topic must be"),
    ("unknown delegation topic", params_case(delegations=[{"from": "a", "topic": "roads", "to": "b"}]),
     "unknown topic 'roads'"),
    ("ballot from unknown voter", allocation_case(ballots={"zoe": [10_000, 0, 0, 0, 0, 0]}),
     "'zoe' is not a voter"),
    ("vote from unknown voter", params_case(votes={"zoe": "yes"}), "'zoe' is not a voter"),
    ("bad choice", params_case(votes={"a": "perhaps"}), "expected yes, no or abstain"),
    ("negative weight", params_case(weights={"a": -1}), "integer >= 0"),
    ("float weight", params_case(weights={"a": 1.5}), "integer >= 0"),
    ("missing field", {"topic": "params", "weights": {}}, "missing field 'votes'"),
    ("unknown field", params_case(ballots={}), "unknown field 'ballots'"),
    ("two delegations on one topic",
     params_case(delegations=[{"from": "a", "topic": "*", "to": "b"}, {"from": "a", "topic": "*", "to": "c"}]),
     "second delegation"),
    ("quorum out of range", params_case(quorum_bp=10_001), "quorum_bp must be"),
    ("duplicate categories", allocation_case(categories=["a", "a", "b", "c", "d", "e"]), "distinct"),
    ("nothing to allocate", allocation_case(ballots={}), "no ballot carries any weight"),
    ("not an object", [1, 2], "expected a JSON object"),
]


@pytest.mark.parametrize("doc, message", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_case(doc, message):
    with pytest.raises(GovernanceError, match=message):
        run_case(doc)


# --- through the CLI ------------------------------------------------------------------

def run_cli(tmp_path, capsys, text):
    path = tmp_path / "case.json"
    path.write_text(text)
    rc = main(["gov", "tally", "--input", str(path)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_prints_the_result_as_json(tmp_path, capsys):
    rc, out, err = run_cli(tmp_path, capsys, json.dumps(allocation_case()))
    assert (rc, err) == (0, "")
    assert json.loads(out) == run_case(allocation_case())
    assert list(json.loads(out)["allocation"]) == CATEGORIES


@pytest.mark.parametrize("doc, message", [c[1:] for c in INVALID[:5]], ids=[c[0] for c in INVALID[:5]])
def test_invalid_case_exits_2_with_one_line(tmp_path, capsys, doc, message):
    rc, out, err = run_cli(tmp_path, capsys, json.dumps(doc))
    assert rc == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err and err.startswith("error: ")


@pytest.mark.parametrize("text, message", [
    ("{nope", "is not valid JSON"),
    ("", "is not valid JSON"),
    ("[" * 100_000, "is not valid JSON"),
])
def test_invalid_json_exits_2_with_one_line(tmp_path, capsys, text, message):
    rc, out, err = run_cli(tmp_path, capsys, text)
    assert rc == 2 and message in err and err.count("\n") == 1


def test_invalid_missing_file_exits_2(tmp_path, capsys):
    rc = main(["gov", "tally", "--input", str(tmp_path / "absent.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "case file not found" in err


def test_invalid_non_utf8_file_exits_2(tmp_path, capsys):
    path = tmp_path / "case.json"
    path.write_bytes(b"\xff\xfe{}")
    rc = main(["gov", "tally", "--input", str(path)])
    assert rc == 2 and "cannot read" in capsys.readouterr().err
