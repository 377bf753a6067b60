"""The validator node most service tests drive: validator-0 of the module's ``commune``
fixture (each module makes its own commune), on its real LevelDB store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.home.homedir import load_home
from node.service.node import Node
from node.service.runner import open_store


@pytest.fixture
def node(commune: Path) -> Iterator[Node]:
    home = load_home(commune / "validator-0")
    store = open_store(home)
    try:
        yield Node(home, store)
    finally:
        store.close()
