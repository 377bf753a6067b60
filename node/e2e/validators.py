"""Validator set changes on a running e2e network (DESIGN §4 ValidatorSetChange, §12).

Spare homes are prepared at setup: keys the genesis does not know, with their own
ports. ``add_validator`` starts a spare as a full node and promotes it while it runs;
``remove_validator`` drops a validator, which keeps running as a full node;
``rotate_key`` replaces a validator's key by a spare's in one change. Each change goes
through the real CLI (``voisinage validator propose-change`` / ``rotate``, one
``cosign`` per co-signing validator, ``submit``), and the op then checks on the chain
that the set changed at h+2: the new key's precommits in commits from h+2 on, none of
the removed key's from h+2 on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import trio

from node.e2e.errors import E2EError
from node.home.homedir import CONFIG_FILE, GENESIS_FILE, KEY_FILE, create_home, home_key, load_home
from node.localnet.cluster import API_TOKEN, Cluster, NodeProc
from node.localnet.ports import find_port_block

# DESIGN §4: a ValidatorSetChange takes effect at height h+2.
ACTIVATION_DELAY = 2
# After the change takes effect, this many commits must show (or not show) the key.
WATCHED_COMMITS = 4
BLOCK_WAIT_S = 5


def build_spares(home: Path, count: int, nodes: list[NodeProc]) -> dict[str, NodeProc]:
    """``count`` homes of the network under ``home`` whose keys are in no genesis list,
    with ports above every port of ``nodes`` (written, not yet bound)."""
    if count == 0:
        return {}
    taken = [int(n.http.rsplit(":", 1)[1]) for n in nodes]
    taken += [int(load_home(n.home).config["listen"].rsplit("/", 1)[1]) for n in nodes]
    p2p, spares = find_port_block(count, start=max(taken) + 1), {}
    http = find_port_block(count, start=p2p + count)
    for i in range(count):
        name = f"spare-{i}"
        create_home(home / name, home / GENESIS_FILE, listen=f"/ip4/127.0.0.1/tcp/{p2p + i}",
                    http=f"127.0.0.1:{http + i}", name=name)
        spares[name] = NodeProc(len(nodes) + i, name, home / name, f"127.0.0.1:{http + i}")
    return spares


def key_hex(node: NodeProc) -> str:
    return home_key(load_home(node.home)).public.hex()


async def start_spare(cluster: Cluster, spare: NodeProc) -> str:
    """Start the spare as a full node; its address, naming its (random) peer id."""
    await cluster.start(spare)
    await cluster.wait_ready(spare)
    cluster.nodes.append(spare)
    cluster.by_name[spare.name] = spare
    status = await cluster.status(spare)
    listen = json.loads((spare.home / CONFIG_FILE).read_text())["listen"]
    return f"{listen}/p2p/{status['peer_id']}"


async def run_cli(*args: str) -> str:
    cmd = [sys.executable, "-m", "node.cli", "validator", *args]
    done = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False,
                                  env=dict(os.environ, VOISINAGE_API_TOKEN=API_TOKEN))
    if done.returncode != 0:
        raise E2EError(f"voisinage validator {args[0]}: {done.stderr.decode(errors='replace').strip()[-300:]}")
    return done.stdout.decode().strip()


async def get_json(cluster: Cluster, url: str) -> dict | None:
    response = await cluster.client.get(url, timeout=BLOCK_WAIT_S + 5)
    return response.json() if response.status_code == 200 else None


async def submit_change(cluster: Cluster, homes: dict[str, NodeProc], change_args: list[str], work: Path) -> str:
    """propose, co-sign by a quorum of the current validators, submit: the tx id."""
    url = cluster.nodes[0].url
    basis = await get_json(cluster, f"{url}/validators/change")
    by_key = {key_hex(n): n for n in homes.values()}
    cosigners = [by_key[k] for k in basis["validators"] if k in by_key][:basis["quorum"]]
    work.mkdir(parents=True, exist_ok=True)
    path = work / "change-0.json"
    await run_cli(*change_args, "--node", url, "--out", str(path))
    for i, node in enumerate(cosigners, 1):
        signed = work / f"change-{i}.json"
        await run_cli("cosign", "--in", str(path), "--key", str(node.home / KEY_FILE), "--out", str(signed))
        path = signed
    return await run_cli("submit", "--in", str(path), "--node", url)


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


async def read_signers(cluster: Cluster, first: int, count: int, limit_s: float) -> dict[int, set[str]]:
    """Who signed the commit of each height in [first, first + count)."""
    url, out = cluster.nodes[0].url, {}
    with trio.move_on_after(limit_s):
        for height in range(first, first + count):
            block = None
            while block is None or block.get("commit") is None:
                block = await get_json(cluster, f"{url}/blocks/{height}?wait={BLOCK_WAIT_S}")
            out[height] = {s["validator"] for s in block["commit"]["sigs"]}
        return out
    raise E2EError(f"no commits from height {first} to {first + count - 1} within {limit_s:.0f} s")


def check_signers(signers: dict[int, set[str]], added: list[str], removed: list[str]) -> str:
    """From h+2 on: every added key signs some commit, no removed key signs any."""
    for key in removed:
        late = [h for h, keys in signers.items() if key in keys]
        if late:
            raise E2EError(f"removed validator {key[:12]} still signed the commit of height {late[0]}")
    firsts = []
    for key in added:
        signed = [h for h, keys in signers.items() if key in keys]
        if not signed:
            raise E2EError(f"added validator {key[:12]} signed none of the commits {min(signers)}..{max(signers)}")
        firsts.append(f"{key[:8]} signs from {signed[0]}")
    return "; ".join(firsts)


async def run_validator_op(cluster: Cluster, op: str, node: NodeProc, spare: NodeProc | None,
                           spares: dict[str, NodeProc], limit_s: float) -> str:
    """Carry out one change op; a line saying at which heights it took effect."""
    homes = {n.name: n for n in cluster.nodes} | spares
    added, removed, args = [], [], []
    if op == "add_validator":
        addr = await start_spare(cluster, node)
        added, args = [key_hex(node)], ["propose-change", "--add", key_hex(node), "--add-addr", addr]
    elif op == "remove_validator":
        removed, args = [key_hex(node)], ["propose-change", "--remove", key_hex(node)]
    elif op == "rotate_key":
        addr = await start_spare(cluster, spare)
        added, removed = [key_hex(spare)], [key_hex(node)]
        args = ["rotate", "--old", removed[0], "--new", added[0], "--new-addr", addr]
    start = max((await cluster.heights()).values(), default=1)
    tx_id = await submit_change(cluster, homes, args, node.home.parent / f"changes-{op}-{node.name}")
    height = await wait_commit_of(cluster, tx_id, start, limit_s)
    signers = await read_signers(cluster, height + ACTIVATION_DELAY, WATCHED_COMMITS, limit_s)
    effect = check_signers(signers, added, removed)
    return f"change in block {height}, effective at {height + ACTIVATION_DELAY}" + (f"; {effect}" if effect else "")
