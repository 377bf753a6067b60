"""Manifest validator ops (add_validator, remove_validator, rotate_key) and spare homes."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.e2e.manifest import ManifestError, parse_manifest
from node.e2e.validators import check_signers
from node.e2e.errors import E2EError


def parse(text: str):
    return parse_manifest(text.encode(), Path("m.toml"))


def test_spares_and_validator_ops_parse():
    m = parse('spares = 2\n[[perturb]]\nat = 5\nop = "add_validator"\nnode = "spare-0"\nduration = 0\n'
              '[[perturb]]\nat = 20\nop = "rotate_key"\nnode = "validator-1"\nspare = "spare-1"\nduration = 0\n')
    assert m.spare_names == ["spare-0", "spare-1"]
    assert [p.op for p in m.perturb] == ["add_validator", "rotate_key"] and m.perturb[1].spare == "spare-1"


@pytest.mark.parametrize("text, words", [
    ("[[perturb]]\nat = 1\nop = 'add_validator'\nnode = 'spare-0'\n", "needs node = a spare"),
    ("spares = 1\n[[perturb]]\nat = 1\nop = 'add_validator'\nnode = 'household-0'\n", "needs node = a spare"),
    ("[[perturb]]\nat = 1\nop = 'remove_validator'\nnode = 'household-0'\n", "a validator or a spare"),
    ("spares = 1\n[[perturb]]\nat = 1\nop = 'rotate_key'\nnode = 'validator-0'\n", "needs spare"),
    ("spares = 1\n[[perturb]]\nat = 1\nop = 'rotate_key'\nnode = 'spare-0'\nspare = 'spare-0'\n", "needs spare"),
    ("netns = true\nspares = 1\n[[perturb]]\nat = 1\nop = 'add_validator'\nnode = 'spare-0'\n", "loopback only"),
    ("spares = 9\n", "outside"),
])
def test_invalid_validator_ops(text, words):
    with pytest.raises(ManifestError, match=words):
        parse(text)


def test_signers_check_finds_the_added_key_and_dates_it():
    assert check_signers({10: {"a"}, 11: {"a", "n"}}, added=["n"], removed=["r"]) == "n signs from 11"


@pytest.mark.parametrize("signers, added, removed, words", [
    ({10: {"a"}, 11: {"a"}}, ["n"], [], "signed none"),
    ({10: {"a"}, 11: {"a", "r"}}, [], ["r"], "still signed the commit of height 11"),
])
def test_invalid_signers_after_a_change(signers, added, removed, words):
    with pytest.raises(E2EError, match=words):
        check_signers(signers, added, removed)
