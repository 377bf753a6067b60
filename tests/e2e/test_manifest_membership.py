"""Manifest membership ops (register, rotate_household, recover_household, deregister,
reregister) and genesis [params]; e2e/manifests/membership.toml parses as shipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.e2e.manifest import ManifestError, load_manifest, parse_manifest

REPO = Path(__file__).resolve().parents[2]


def parse(text: str):
    return parse_manifest(text.encode(), Path("m.toml"))


def op(at: float, name: str, node: str) -> str:
    return f"[[perturb]]\nat = {at}\nop = '{name}'\nnode = '{node}'\nduration = 0\n"


def test_shipped_membership_manifest_parses_with_a_short_recovery_delay():
    m = load_manifest(REPO / "e2e" / "manifests" / "membership.toml")
    assert [p.op for p in m.perturb] == ["register", "rotate_household", "recover_household", "deregister",
                                         "reregister"]
    assert m.params == {"recovery_delay_s": 600}


def test_move_out_then_next_occupant_parses():
    m = parse("[params]\nrecovery_delay_s = 60\n" + op(5, "deregister", "household-1") + op(9, "reregister", "household-1")
              + op(12, "rotate_household", "household-1"))
    assert [p.node for p in m.perturb] == ["household-1"] * 3


@pytest.mark.parametrize("text, words", [
    (op(1, "register", "nobody"), "register needs node"),
    (op(1, "rotate_household", "validator-0"), "a household of the genesis"),
    (op(1, "reregister", "household-0"), "needs an earlier deregister"),
    (op(1, "deregister", "household-0") + op(2, "recover_household", "household-0"), "after it moved out"),
    (op(5, "rotate_household", "household-0") + op(2, "deregister", "household-0"), "in time order"),
    ("netns = true\n" + op(1, "register", "household-0"), "loopback only"),
    ("[params]\nnot_a_param = 1\n", "unknown genesis parameter 'not_a_param'"),
    ("[params]\ntime_scale = 60\n", "set speed instead"),
    ("[params]\nrecovery_delay_s = 'soon'\n", "expected int"),
    ("params = 3\n", "expected a table"),
])
def test_invalid_membership_ops_and_params(text, words):
    with pytest.raises(ManifestError, match=words):
        parse(text)
