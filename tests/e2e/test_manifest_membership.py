"""Manifest membership ops (register, rotate_household, recover_household, deregister,
reregister) and the [genesis] parameters table: a bad manifest is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.e2e.manifest import ManifestError, load_manifest, parse_manifest


def parse(text: str):
    return parse_manifest(text.encode(), Path("m.toml"))


def op(at, name, node=None):
    return f"[[perturb]]\nat = {at}\nop = '{name}'\nduration = 0\n" + (f"node = '{node}'\n" if node else "")


def test_membership_ops_and_genesis_params_parse():
    m = parse("seal = false\n[genesis]\nrecovery_delay_s = 1200\n" + op(5, "register") + op(10, "rotate_household", "household-1")
              + op(20, "recover_household", "household-2") + op(30, "deregister", "household-3")
              + op(40, "reregister", "household-3"))
    assert m.genesis == {"recovery_delay_s": 1200}
    assert [(p.op, p.node) for p in m.perturb] == [
        ("register", None), ("rotate_household", "household-1"), ("recover_household", "household-2"),
        ("deregister", "household-3"), ("reregister", "household-3")]


def test_the_shipped_membership_manifest_parses():
    m = load_manifest(Path(__file__).parents[2] / "e2e" / "manifests" / "membership.toml")
    assert {p.op for p in m.perturb} == {"register", "rotate_household", "recover_household", "deregister",
                                         "reregister"}
    assert m.genesis["recovery_delay_s"] / m.speed < m.check.max_recovery_s
    # The next occupant registers (reregister): a clear commune (its light node would need a home of its own).
    assert m.seal is False


@pytest.mark.parametrize("text, words", [
    (op(5, "register", "household-0"), "register takes no node"),
    (op(5, "rotate_household"), "needs node = a household"),
    (op(5, "rotate_household", "validator-0"), "needs node = a household"),
    (op(5, "deregister", "household-9"), "needs node = a household"),
    (op(5, "reregister", "household-1"), "needs an earlier deregister"),
    (op(9, "deregister", "household-1") + op(5, "reregister", "household-1"), "needs an earlier deregister"),
    (op(5, "deregister", "household-1") + op(9, "rotate_household", "household-1"), "has moved out"),
    (op(5, "recover_household", "household-1"), "recovery_delay_s / speed"),
    ("netns = true\n" + op(5, "register"), "loopback only"),
    ("[genesis]\nrecovery_delay_s = -1\n", "genesis: params.recovery_delay_s"),
    ("[genesis]\nno_such = 1\n", "unknown parameter 'no_such'"),
    ("[genesis]\ntime_scale = 5\n", "time_scale is set by speed"),
    ("genesis = 3\n", "expected a table of genesis parameters"),
], ids=["register_node", "no_node", "validator", "unknown_household", "reregister_first", "reregister_before",
        "after_moving_out", "recovery_too_slow", "netns", "bad_param", "unknown_param", "time_scale", "not_table"])
def test_invalid_membership_manifest(text, words):
    with pytest.raises(ManifestError, match=words) as info:
        parse(text)
    assert "\n" not in str(info.value) and str(info.value).startswith("m.toml")
