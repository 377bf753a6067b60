"""``voisinage localnet up --netns``: the localnet with one network namespace per node.

Same network, meters and report as the loopback localnet (node/localnet/launcher.py),
but every node runs in its own namespace behind a bridge (netns.py), listens on its
own 10.77.S.x address, and its genesis address points there. The namespaces, veths
and bridge are removed on exit, including Ctrl-C and failures.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import trio

from node.e2e import checks
from node.localnet.cluster import Cluster, build_network, open_client
from node.e2e.load import LoadGen
from node.localnet.netns import Fabric, require_root
from node.localnet.errors import LocalnetError
from node.home.homedir import GENESIS_FILE


async def run_netns_localnet(validators: int, households: int, speed: int, duration: float | None,
                             home: Path | None, report: Path | None, say: Callable[[str], None] = print) -> int:
    require_root("localnet up --netns")
    if home is not None and (home / GENESIS_FILE).exists():
        raise LocalnetError(f"{home} already holds a network; --netns needs an empty --home (addresses are per run)")
    home = home or Path(tempfile.mkdtemp(prefix="voisinage-localnet-netns-"))
    fabric = Fabric(validators + households)
    try:
        await trio.to_thread.run_sync(fabric.setup)
        nodes = build_network(home, validators, households, speed, fabric)
        say(f"localnet in {home}: {validators} validators, {households} households, speed x{speed}, "
            f"namespaces {fabric.ns(0)}..{fabric.ns(len(nodes) - 1)}, bridge {fabric.bridge} ({fabric.gateway})")
        async with open_client() as client:
            cluster = Cluster(nodes, fabric, client)
            try:
                await cluster.start_all()
                for node in nodes:
                    say(f"  {node.name:<14} {node.url}/   (ip netns exec {fabric.ns(node.index)} ...)")
                load = LoadGen(cluster, [n for n in nodes if not n.is_validator], 1, speed / 60, 0, 30)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(load.follower.run, cluster)
                    if households:
                        nursery.start_soon(load.run)
                    await (trio.sleep(duration) if duration is not None else trio.sleep_forever())
                    nursery.cancel_scope.cancel()
                agreement = await checks.check_agreement(cluster)
            finally:
                with trio.CancelScope(shield=True):
                    await cluster.stop_all()
    finally:
        leftovers = fabric.teardown()
        if leftovers:
            say(f"could not remove: {', '.join(leftovers)}")
    agree = not (agreement.forks or agreement.state_hash_mismatches or agreement.unreachable)
    doc = {"agree": agree, "netns": True, "agreement": asdict(agreement), "height": load.follower.height,
           "blocks": len(load.follower.commit_times), "txs": sum(len(v) for v in load.follower.committed.values()),
           "readings_submitted": sum(e.kind == "reading" for e in load.log.acked.values())}
    if report is not None:
        report.write_text(json.dumps(doc, indent=2) + "\n")
    say(json.dumps({k: doc[k] for k in ("agree", "height", "blocks", "txs", "readings_submitted")}))
    return 0 if agree else 1
