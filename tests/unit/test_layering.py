"""DESIGN §1 layering, enforced by parsing every import of every module.

wire imports nothing of ours; consensus, tokens and governance import only wire
(tokens may also import governance); node imports everything; nothing imports node.
The pure cores import no I/O, clock, randomness, network, storage, HTTP, serial or
CLI module. Inside node/, each room imports only the rooms below it (ROOMS): the
network and the store know nothing of the service, the API or the commands, and
only commands (and cli.py) import the e2e suite.
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


# What each room of node/ may import from node/ ("room" or "room.module").
BELOW_SERVICE = {"errors", "clock", "home", "net", "store"}
ROOMS = {
    "errors": set(),
    "clock": set(),
    "net": {"errors"},
    "store": {"errors"},
    "home": {"errors"},
    "meter": {"errors", "api.status"},
    "consent": {"errors", "clock"},
    "api": {"errors", "clock", "net", "consent"},
    "service": BELOW_SERVICE | {"api", "consent"},
    "sim": {"errors", "clock", "home"},
    "localnet": {"errors", "clock", "home", "sim", "bench.stats"},
    # bench year builds its chain with the service's own LedgerApp and mempool;
    # bench relay drives the relayer's own passes over in-process sides.
    "bench": BELOW_SERVICE | {"sim", "localnet", "service", "relay"},
    "e2e": BELOW_SERVICE | {"sim", "localnet", "bench.stats"},
    "relay": {"errors"},
    "commands": {"errors", "clock", "home", "net", "store", "meter", "api", "service", "sim", "localnet",
                 "bench", "e2e", "consent", "relay"},
    "cli": {"errors", "commands", "home", "net", "store", "service", "localnet", "e2e.errors"},
}


def node_imports_of(path: Path) -> set[str]:
    """The node modules ``path`` imports, as "room.module" below node/."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
        found.update(n.split(".", 1)[1] for n in names if n.startswith("node."))
    return found


def room_of(path: Path) -> str:
    parts = path.relative_to(ROOT / "node").parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def is_allowed(room: str, target: str) -> bool:
    top = target.split(".")[0]
    allowed = ROOMS[room]
    return top == room or top in allowed or any(target == a or target.startswith(a + ".") for a in allowed)


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


def test_every_room_of_node_has_a_layering_rule():
    rooms = {room_of(p) for p in modules("node")} - {"__init__"}
    assert rooms == set(ROOMS)


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_node_room_imports_only_the_rooms_below_it(room):
    bad = {}
    for path in modules("node"):
        if room_of(path) == room:
            wrong = sorted(t for t in node_imports_of(path) if not is_allowed(room, t))
            if wrong:
                bad[str(path.relative_to(ROOT))] = wrong
    assert bad == {}


def test_the_room_checker_sees_a_net_module_importing_the_service():
    assert not is_allowed("net", "service.node")
    assert not is_allowed("localnet", "bench.localnet") and is_allowed("localnet", "bench.stats")
    assert not is_allowed("service", "e2e.byzantine")


def test_readme_layout_names_every_room_of_node():
    readme = (ROOT / "README.md").read_text()
    rooms = sorted({p.parent.name for p in (ROOT / "node").glob("*/__init__.py")})
    assert [r for r in rooms if f"`node/{r}/`" not in readme] == []
