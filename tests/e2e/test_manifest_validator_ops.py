"""Manifest validator ops (add_validator, remove_validator, rotate_key) and spare homes."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.e2e.manifest import ManifestError, parse_manifest


def parse(text: str):
    return parse_manifest(text.encode(), Path("m.toml"))


def test_spares_and_validator_ops_parse():
    m = parse('spares = 2\nsnapshot_interval = 10\n[[perturb]]\nat = 5\nop = "add_validator"\nnode = "spare-0"\nduration = 0\n'
              '[[perturb]]\nat = 20\nop = "rotate_key"\nnode = "validator-1"\nspare = "spare-1"\nduration = 0\n')
    assert m.spare_names == ["spare-0", "spare-1"]
    assert [p.op for p in m.perturb] == ["add_validator", "rotate_key"] and m.perturb[1].spare == "spare-1"
    assert m.seal and m.snapshot_interval == 10


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
