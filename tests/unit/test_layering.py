"""DESIGN §1 layering, enforced by parsing every import of every module.

wire imports nothing of ours; consensus, tokens and governance import only wire
(tokens may also import governance); node imports everything; nothing imports node.
The pure cores import no I/O, clock, randomness, network, storage, HTTP, serial or
CLI module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"wire", "tokens", "governance", "consensus", "node"}
ALLOWED = {
    "wire": set(),
    "consensus": {"wire"},
    "governance": {"wire"},
    "tokens": {"wire", "governance"},
    "node": OURS - {"node"},
}
FORBIDDEN_IN_CORES = {
    "trio", "anyio", "asyncio", "libp2p", "plyvel", "socket", "ssl", "http", "urllib", "httpx",
    "starlette", "hypercorn", "serial", "typer", "click", "rich", "time", "random", "secrets",
    "os", "sys", "threading", "subprocess", "datetime", "uuid", "io", "pathlib", "shutil",
    "tempfile", "signal", "select", "selectors", "multiprocessing", "prometheus_client",
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            found.add("__import__")
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(OURS))
def test_package_imports_only_what_its_layer_allows(package):
    bad = {}
    for path in modules(package):
        ours = imports_of(path) & OURS - {package}
        if ours - ALLOWED[package]:
            bad[str(path.relative_to(ROOT))] = sorted(ours - ALLOWED[package])
    assert bad == {}


@pytest.mark.parametrize("package", ["wire", "tokens", "governance", "consensus"])
def test_pure_cores_import_no_io_clock_or_randomness(package):
    bad = {}
    for path in modules(package):
        found = imports_of(path) & (FORBIDDEN_IN_CORES | {"__import__"})
        if found:
            bad[str(path.relative_to(ROOT))] = sorted(found)
    assert bad == {}


@pytest.mark.parametrize("package", sorted(OURS))
def test_package_docstring_says_what_it_is_for_and_must_not_import(package):
    doc = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
    assert doc and "import" in doc


def test_the_checker_sees_a_forbidden_import(tmp_path):
    # The rule above must be able to fail: a module importing time is caught.
    probe = tmp_path / "probe.py"
    probe.write_text("import time\nfrom trio import sleep\nfrom . import sibling\n")
    assert imports_of(probe) == {"time", "trio"}
