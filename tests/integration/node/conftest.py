"""The ``cluster_of`` fixture: communes of real node processes (tests/support/nodes.py).

Every test writes its own commune into tmp_path with the real CLI, finds free ports
at run time, starts one OS process per node and talks to them over HTTP only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import Cluster, make_commune


@pytest.fixture
def cluster_of(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """``cluster_of(validators, households, **params)``: a fresh commune and its processes."""
    made: list[Cluster] = []

    def make(validators: int, households: int = 0, genesis_args: tuple[str, ...] = (), **params: Any) -> Cluster:
        commune = make_commune(tmp_path / f"commune-{len(made)}", validators, households, genesis_args, **params)
        made.append(Cluster(commune))
        return made[-1]

    yield make
    for cluster in made:
        cluster.shutdown()
    bans = [line for cluster in made if not cluster.allow_bans for line in cluster.get_bans()]
    assert not bans, "an honest node banned a peer:\n" + "\n".join(bans)
