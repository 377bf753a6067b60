"""A protocol upgrade on a running e2e network (docs/operations.md "Upgrading").

``schedule_upgrade`` schedules the newest version this software holds a number of
heights ahead, through the real CLI (``voisinage upgrade propose``, one ``cosign`` per
co-signing validator, ``submit``), then checks on every node that it crossed the
height: the block at that height carries the new version everywhere and each node's
``/upgrades`` says it is in force. The run's own checks then say nothing was lost and
nobody forked.
"""

from __future__ import annotations

import trio

from node.e2e.errors import E2EError
from node.e2e.validators import BLOCK_WAIT_S, get_json, submit_change
from node.localnet.cluster import Cluster
from tokens.upgrades import PROTOCOL_VERSION

# Heights between the chain's height when the upgrade is proposed and its activation:
# the three CLI steps (five processes) and their commit took 27 heights under load here.
UPGRADE_LEAD = 100


async def run_upgrade_op(cluster: Cluster, limit_s: float) -> str:
    heights = await cluster.heights()
    at = max(heights.values(), default=0) + UPGRADE_LEAD
    work = cluster.nodes[0].home.parent / "upgrade"
    await submit_change(cluster, ["propose", "--version", str(PROTOCOL_VERSION), "--height", str(at)], work,
                        group="upgrade", basis_path="/upgrades")
    await wait_chain_reaches(cluster, at, limit_s)
    versions = await wait_all_crossed(cluster, at, limit_s)
    return f"version {PROTOCOL_VERSION} from height {at}; crossed by {len(versions)} nodes"


async def wait_chain_reaches(cluster: Cluster, at: int, limit_s: float) -> None:
    """Until a full node is at height ``at``, for as long as the chain makes blocks: how
    long the lead takes depends on the block rate (a commune that seals made half the
    clear one's heights in the same load, on a loaded machine), a stall on nothing."""
    node = cluster.full_nodes[0]
    best, moved = 0, trio.current_time()
    while best < at:
        status = await get_json(cluster, f"{node.url}/status")
        height = status["height"] if status is not None else best
        if height > best:
            best, moved = height, trio.current_time()
        elif trio.current_time() - moved > limit_s:
            raise E2EError(f"the chain stalled at height {best} on its way to the upgrade at {at} "
                           f"(no block for {limit_s:.0f} s)")
        else:
            await trio.sleep(0.5)


async def wait_all_crossed(cluster: Cluster, at: int, limit_s: float) -> dict[str, int]:
    """Every full node's header version at ``at``, once each one has stored that block.
    A light node (a household's, on a sealing commune) stores no block: it has crossed
    once it holds the state of ``at``, which it takes only from a header it verified
    (its headers are held to the validators' blocks after the run, checks.check_light_store);
    it counts with the version the full nodes' block carries."""
    versions: dict[str, int] = {}
    with trio.move_on_after(limit_s):
        for node in cluster.full_nodes:
            while node.name not in versions:
                block = await get_json(cluster, f"{node.url}/blocks/{at}?wait={BLOCK_WAIT_S}")
                if block is not None:
                    versions[node.name] = block["header"]["version"]
                else:
                    await trio.sleep(0.5)
        carried = next(iter(versions.values()), None)
        for node in cluster.nodes:
            while node.light and node.name not in versions:
                status = await get_json(cluster, f"{node.url}/status")
                if status is not None and status["height"] >= at:
                    versions[node.name] = carried
                else:
                    await trio.sleep(0.5)
        wrong = {name: v for name, v in versions.items() if v != PROTOCOL_VERSION}
        if wrong:
            raise E2EError(f"block {at} has header versions {wrong}, not {PROTOCOL_VERSION}")
        return versions
    raise E2EError(f"not every node stored block {at} within {limit_s:.0f} s: {sorted(versions)} did")
