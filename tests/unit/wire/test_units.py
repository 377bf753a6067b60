"""wire/units.py: every typed number is defined there once and imported elsewhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import wire
from wire import units

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("wire", "tokens", "governance", "consensus", "node")


def get_newtype_definitions(path: Path) -> list[str]:
    """Names bound to ``NewType(...)`` calls in one module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if getattr(func, "id", getattr(func, "attr", "")) == "NewType":
                found += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return found


def test_typed_numbers_are_defined_only_in_wire_units():
    where = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in get_newtype_definitions(path):
                where.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert where == {name: ["wire/units.py"] for name in units.__all__}


def test_the_checker_sees_a_second_definition(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import typing\nfrom typing import NewType\nHeight = NewType('Height', int)\n"
                     "Wh = typing.NewType('Wh', int)\n")
    assert get_newtype_definitions(probe) == ["Height", "Wh"]


@pytest.mark.parametrize("name", units.__all__)
def test_wire_exports_each_typed_number(name):
    assert getattr(wire, name) is getattr(units, name)
