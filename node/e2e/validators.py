"""Validator set changes on a running e2e network (DESIGN §4 ValidatorSetChange, §12).

Spare homes are prepared at setup: keys the genesis does not know, with their own
ports, started with the network as full nodes (an operator promotes a node once it
has synced). ``add_validator`` promotes a spare while it runs; ``remove_validator``
drops a validator, which keeps running as a full node; ``rotate_key`` replaces a
validator's key by a spare's in one change. Each change goes through the real CLI
(``voisinage validator propose-change`` / ``rotate``, one ``cosign`` per co-signing
validator, ``submit``) once the previous change is in force, and the op then checks
on the chain that the set changed at h+2: the new key's precommits in a commit from
h+2 on (a commit holds a quorum of precommits, so not necessarily the next one), none
of the removed key's in the WATCHED_COMMITS commits from h+2 on.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

import trio

from node.e2e.errors import E2EError
from node.home.homedir import CONFIG_FILE, GENESIS_FILE, KEY_FILE, create_home, home_key, load_home
from node.localnet.cluster import API_TOKEN, Cluster, NodeProc
from node.localnet.ports import find_port_block

# DESIGN §4: a ValidatorSetChange takes effect at height h+2.
if TYPE_CHECKING:
    from node.e2e.sealing import SealOps

ACTIVATION_DELAY = 2
# After the change takes effect, this many commits must show (or not show) the key.
WATCHED_COMMITS = 4
BLOCK_WAIT_S = 5
# One change at a time per network: each is built on the nonce the previous one left,
# as the mairie's operators would wait for one change before proposing the next.
_CHANGE_LOCKS: WeakKeyDictionary[Cluster, trio.Lock] = WeakKeyDictionary()


def find_free_ports(nodes: list[NodeProc], count: int) -> tuple[int, int]:
    """The first p2p and http ports of two blocks of ``count`` above every port of ``nodes``."""
    taken = [int(n.http.rsplit(":", 1)[1]) for n in nodes]
    taken += [int(load_home(n.home).config["listen"].rsplit("/", 1)[1]) for n in nodes if n.home.exists()]
    p2p = find_port_block(count, start=max(taken) + 1)
    return p2p, find_port_block(count, start=p2p + count)


def build_spares(home: Path, count: int, nodes: list[NodeProc]) -> dict[str, NodeProc]:
    """``count`` homes of the network under ``home`` whose keys are in no genesis list,
    with ports above every port of ``nodes`` (written, not yet bound)."""
    if count == 0:
        return {}
    (p2p, http), spares = find_free_ports(nodes, count), {}
    for i in range(count):
        name = f"spare-{i}"
        create_home(home / name, home / GENESIS_FILE, listen=f"/ip4/127.0.0.1/tcp/{p2p + i}",
                    http=f"127.0.0.1:{http + i}", name=name)
        spares[name] = NodeProc(len(nodes) + i, name, home / name, f"127.0.0.1:{http + i}")
    return spares


def key_hex(node: NodeProc) -> str:
    return home_key(load_home(node.home)).public.hex()


async def fetch_listen_addr(cluster: Cluster, node: NodeProc) -> str:
    """A running node's address, naming its (random) peer id: no restart needed."""
    status = await cluster.status(node, timeout=10)
    if status is None:
        raise E2EError(f"{node.name} does not answer: no peer address for it")
    listen = json.loads((node.home / CONFIG_FILE).read_text())["listen"]
    return f"{listen}/p2p/{status['peer_id']}"


async def wait_no_pending_change(cluster: Cluster, limit_s: float) -> None:
    """Until the latest set is the one in force: the previous change took effect."""
    url = cluster.nodes[0].url
    with trio.move_on_after(limit_s):
        while True:
            basis = await get_json(cluster, f"{url}/validators/change")
            if basis is not None and basis["latest"] == basis["validators"]:
                return
            await trio.sleep(0.5)
    raise E2EError(f"a validator set change was still pending after {limit_s:.0f} s")


async def run_voisinage(*args: str) -> str:
    """One ``voisinage`` command as its own process; its stdout, or an E2EError with its error line."""
    done = await trio.run_process([sys.executable, "-m", "node.cli", *args], capture_stdout=True,
                                  capture_stderr=True, check=False, env=dict(os.environ, VOISINAGE_API_TOKEN=API_TOKEN))
    if done.returncode != 0:
        raise E2EError(f"voisinage {' '.join(args[:2])}: {done.stderr.decode(errors='replace').strip()[-300:]}")
    return done.stdout.decode().strip()


async def run_cli(*args: str, group: str = "validator") -> str:
    return await run_voisinage(group, *args)


async def get_json(cluster: Cluster, url: str) -> dict | None:
    response = await cluster.client.get(url, timeout=BLOCK_WAIT_S + 5)
    return response.json() if response.status_code == 200 else None


async def submit_change(cluster: Cluster, change_args: list[str], work: Path, group: str = "validator",
                        basis_path: str = "/validators/change", commands: tuple[str, str] = ("cosign", "submit")) -> str:
    """propose, co-sign by a quorum of the current validators, submit: the tx id. ``group``
    is the CLI group of the change, ``basis_path`` where the node tells its co-signers,
    ``commands`` its co-sign and submit commands."""
    url = cluster.nodes[0].url
    basis = await get_json(cluster, f"{url}{basis_path}")
    by_key = {key_hex(n): n for n in cluster.nodes}
    cosigners = [by_key[k] for k in basis["validators"] if k in by_key][:basis["quorum"]]
    work.mkdir(parents=True, exist_ok=True)
    path = work / "change-0.json"
    await run_cli(*change_args, "--node", url, "--out", str(path), group=group)
    for i, node in enumerate(cosigners, 1):
        signed = work / f"change-{i}.json"
        await run_cli(commands[0], "--in", str(path), "--key", str(node.home / KEY_FILE), "--out", str(signed),
                      group=group)
        path = signed
    return await run_cli(commands[1], "--in", str(path), "--node", url, group=group)


async def wait_commit_of(cluster: Cluster, tx_id: str, start: int, limit_s: float) -> int:
    """The height of the block holding ``tx_id``, read from the first node."""
    url, height = cluster.nodes[0].url, start
    with trio.move_on_after(limit_s):
        while True:
            block = await get_json(cluster, f"{url}/blocks/{height}?wait={BLOCK_WAIT_S}")
            if block is None:
                continue
            if any(tx["id"] == tx_id for tx in block["txs"]):
                return height
            height += 1
    raise E2EError(f"the validator set change {tx_id[:12]} was not committed within {limit_s:.0f} s")


async def read_signers(cluster: Cluster, height: int) -> set[str]:
    """Who signed the commit of ``height`` (waiting for it)."""
    while True:
        block = await get_json(cluster, f"{cluster.nodes[0].url}/blocks/{height}?wait={BLOCK_WAIT_S}")
        if block is not None and block.get("commit") is not None:
            return {s["validator"] for s in block["commit"]["sigs"]}


async def check_removed(cluster: Cluster, keys: list[str], effective: int) -> None:
    for height in range(effective, effective + WATCHED_COMMITS):
        late = set(keys) & await read_signers(cluster, height)
        if late:
            raise E2EError(f"removed validator {sorted(late)[0][:12]} still signed the commit of height {height}")


async def find_first_signature(cluster: Cluster, key: str, effective: int, limit_s: float) -> int:
    """The first height from ``effective`` on whose commit holds ``key``'s precommit."""
    height = effective
    with trio.move_on_after(limit_s):
        while key not in await read_signers(cluster, height):
            height += 1
        return height
    raise E2EError(f"added validator {key[:12]} signed no commit from {effective} to {height}")


async def run_validator_op(cluster: Cluster, op: str, node: NodeProc, spare: NodeProc | None,
                           limit_s: float, sealing: "SealOps | None" = None) -> str:
    """Carry out one change op, after any other in progress; a line saying at which
    heights it took effect. ``sealing``: the commune seals, the change is followed by a
    rotation of its data key (node/e2e/sealing.py)."""
    async with _CHANGE_LOCKS.setdefault(cluster, trio.Lock()):
        return await change_and_check(cluster, op, node, spare, limit_s, sealing)


async def run_rotation_op(cluster: Cluster, sealing: "SealOps") -> str:
    """A rotation of the commune data key alone, after any change in progress."""
    async with _CHANGE_LOCKS.setdefault(cluster, trio.Lock()):
        r = await sealing.rotate()
    return (f"epoch {r.epoch} in block {r.height}; every household's data key of it in the state "
            f"{r.keys_after_s} s later")


def read_listen_addr(node: NodeProc) -> str:
    """A node's address before it runs: a validator's peer id is derived from its key
    (DESIGN §7), so the address names none."""
    return json.loads((node.home / CONFIG_FILE).read_text())["listen"]


async def change_and_check(cluster: Cluster, op: str, node: NodeProc, spare: NodeProc | None,
                           limit_s: float, sealing: "SealOps | None" = None) -> str:
    added, removed, args = [], [], []
    joining = spare if op == "rotate_key" else node if op == "add_validator" else None
    if joining is not None:
        # A spare of a sealing commune is not running yet: it starts after the rotation.
        addr = read_listen_addr(joining) if sealing is not None else await fetch_listen_addr(cluster, joining)
    if op == "add_validator":
        added, args = [key_hex(node)], ["propose-change", "--add", key_hex(node), "--add-addr", addr]
    elif op == "remove_validator":
        removed, args = [key_hex(node)], ["propose-change", "--remove", key_hex(node)]
    elif op == "rotate_key":
        added, removed = [key_hex(spare)], [key_hex(node)]
        args = ["rotate", "--old", removed[0], "--new", added[0], "--new-addr", addr]
    await wait_no_pending_change(cluster, limit_s)
    start = max((await cluster.heights()).values(), default=1)
    tx_id = await submit_change(cluster, args, node.home.parent / f"changes-{op}-{node.name}")
    height = await wait_commit_of(cluster, tx_id, start, limit_s)
    effective = height + ACTIVATION_DELAY
    lines = [f"change in block {height}, effective at {effective}"]
    if sealing is not None:
        lines += await follow_with_rotation(cluster, sealing, node if removed else None, joining)
    await check_removed(cluster, removed, effective)
    lines += [f"{key[:8]} signs from {await find_first_signature(cluster, key, effective, limit_s)}"
              for key in added]
    return "; ".join(lines)


async def follow_with_rotation(cluster: Cluster, sealing: "SealOps", removed: NodeProc | None,
                               joining: NodeProc | None) -> list[str]:
    """docs/privacy.md "Rotation with the validator set": a new epoch sealed to the new
    set; the removed validator's node retired; the new one started by state sync."""
    lines = []
    if joining is not None:
        await sealing.publish_receive_key(joining)
        lines.append(f"{joining.name} published its receive key")
    r = await sealing.rotate()
    lines.append(f"commune key epoch {r.epoch} in block {r.height}, households' data keys {r.keys_after_s} s later")
    if removed is not None and removed in cluster.nodes:
        await sealing.retire(removed)
        lines.append(f"{removed.name} retired")
    if joining is not None:
        snapshot = await sealing.start_joined(joining, r.height)
        lines.append(f"{joining.name} joined from the snapshot of height {snapshot}")
    return lines
