"""check_agreement over real HTTP: a node that joined by state sync holds no block below
its snapshot, and only the heights each node holds are compared."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from node.e2e.checks import check_agreement
from node.localnet.cluster import Cluster, NodeProc
from tests.support.fake_node import JSONHandler, serve_handler


def chain_node(blocks: dict[int, str], height: int) -> type[JSONHandler]:
    """GET /status at ``height`` and GET /blocks/{h} for the heights in ``blocks``."""
    class ChainNode(JSONHandler):
        def do_GET(self) -> None:
            if self.path == "/status":
                return self.answer(200, {"height": height, "state_hash": f"root-{height}"})
            h = int(self.path.rsplit("/", 1)[1])
            if h in blocks:
                return self.answer(200, {"id": blocks[h]})
            self.answer(404, {"error": f"no block at height {h}"})
    return ChainNode


@contextmanager
def serving(handlers: dict[str, type[JSONHandler]], tmp_path: Path) -> Iterator[list[NodeProc]]:
    with ExitStack() as stack:
        urls = [stack.enter_context(serve_handler(h)) for h in handlers.values()]
        yield [NodeProc(i, name, tmp_path / name, url.removeprefix("http://"))
               for i, (name, url) in enumerate(zip(handlers, urls))]


CHAIN = {h: f"block-{h}" for h in range(1, 7)}


async def agreement(handlers, tmp_path):
    with serving(handlers, tmp_path) as nodes:
        async with httpx.AsyncClient() as client:
            return await check_agreement(Cluster(nodes, None, client))


async def test_a_state_synced_node_is_compared_from_its_snapshot_on(tmp_path):
    synced = {h: b for h, b in CHAIN.items() if h > 4}
    out = await agreement({"validator-0": chain_node(CHAIN, 6), "member-1": chain_node(synced, 6)}, tmp_path)
    assert (out.common_height, out.forks, out.missing) == (6, [], [])
    assert out.first_held == {"member-1": 5}


async def test_a_different_block_where_both_hold_one_is_a_fork(tmp_path):
    forked = {h: (b if h != 5 else "other") for h, b in CHAIN.items() if h > 4}
    out = await agreement({"validator-0": chain_node(CHAIN, 6), "member-1": chain_node(forked, 6)}, tmp_path)
    assert out.forks == [5]


async def test_a_node_without_the_common_heights_block_is_missing(tmp_path):
    out = await agreement({"validator-0": chain_node(CHAIN, 6), "member-1": chain_node({}, 6)}, tmp_path)
    assert out.missing == ["member-1"] and out.forks == []


def light_node(heights: list[int]) -> type[JSONHandler]:
    """A light node whose GET /status says the next of ``heights`` each time (the last one
    from then on); it serves no block."""
    seen = iter(heights)
    last = [heights[0]]

    class LightNode(JSONHandler):
        def do_GET(self) -> None:
            if self.path == "/status":
                last[0] = next(seen, last[0])
                return self.answer(200, {"height": last[0], "state_hash": f"root-{last[0]}"})
            self.answer(404, {"error": "no block body here"})
    return LightNode


async def light_agreement(handlers, tmp_path, monkeypatch):
    import node.e2e.checks as checks
    monkeypatch.setattr(checks, "LIGHT_FOLLOW_S", 2.0)
    monkeypatch.setattr(Cluster, "check_light_state_hashes", lambda *a: _no_mismatch())
    with serving(handlers, tmp_path) as nodes:
        for node in nodes:
            node.light = node.name.startswith("household-")
        async with httpx.AsyncClient() as client:
            return await check_agreement(Cluster(nodes, None, client))


async def _no_mismatch():
    return []


async def test_a_light_node_that_follows_the_chain_late_is_not_lagging(tmp_path, monkeypatch):
    # Behind by 4 when first asked (it learns heights by polling), at 5 the next time.
    out = await light_agreement({"validator-0": chain_node(CHAIN, 6), "household-0": light_node([2, 5])}, tmp_path,
                                monkeypatch)
    assert out.lagging == [] and out.common_height == 6


async def test_a_light_node_that_stays_behind_is_lagging(tmp_path, monkeypatch):
    out = await light_agreement({"validator-0": chain_node(CHAIN, 6), "household-0": light_node([2, 3])}, tmp_path,
                                monkeypatch)
    assert out.lagging == ["household-0 at 2 of 6 (light, still behind 2 s later)"]


def test_caught_up_light_nodes_on_a_chain_that_moves_on(tmp_path):
    from node.e2e.runner import is_caught_up

    nodes = [NodeProc(0, "validator-0", tmp_path, "x"), NodeProc(1, "household-0", tmp_path, "y", light=True)]
    cluster = Cluster(nodes, None, None)
    assert is_caught_up(cluster, {"validator-0": 10, "household-0": 9})
    assert not is_caught_up(cluster, {"validator-0": 10, "household-0": 6})
    # The full nodes were at 7 a while ago: a light node holding 6 follows.
    assert is_caught_up(cluster, {"validator-0": 10, "household-0": 6}, light_target=7)
    assert not is_caught_up(cluster, {"validator-0": 10, "household-0": 5}, light_target=7)
