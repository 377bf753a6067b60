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
