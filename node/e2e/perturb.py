"""Carrying out one scheduled perturbation, and measuring how long recovery takes.

Recovery time is measured from the end of the fault (link up, SIGCONT, restart,
latency removed, partition healed) until the perturbed node, or for a partition every
node, holds a block above the highest height any node had at that moment: it has
caught up and the chain has moved on.
"""

from __future__ import annotations

import signal
from dataclasses import asdict, dataclass
from typing import Any

import trio

from node.localnet.cluster import Cluster, NodeProc
from node.e2e.manifest import MEMBERSHIP_OPS, ROTATE_DATA_KEY_OP, UPGRADE_OP, VALIDATOR_OPS, Perturbation
from node.e2e.membership import Membership
from node.e2e.upgrade import run_upgrade_op
from node.e2e.validators import run_rotation_op, run_validator_op

RECOVERY_POLL_S = 0.25


@dataclass
class PerturbResult:
    op: str
    node: str | None
    at_s: float
    duration_s: float
    mechanism: str = ""
    exit_code: int | None = None
    recovery_s: float | None = None
    error: str | None = None
    detail: str = ""
    joined_from: int | None = None   # register: the snapshot height its node state-synced from

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compute_partition_sides(cluster: Cluster) -> list[list[int]]:
    """Validators split in two halves; households alternate, so no node bridges the halves."""
    validators = [n.index for n in cluster.nodes if n.is_validator]
    households = [n.index for n in cluster.nodes if not n.is_validator]
    half = len(validators) // 2
    return [validators[:half] + households[0::2], validators[half:] + households[1::2]]


async def _fabric(fn, *args):
    return await trio.to_thread.run_sync(fn, *args)


async def apply_fault(cluster: Cluster, p: Perturbation, node: NodeProc | None, result: PerturbResult,
                      seed: int, limit_s: float, membership: Membership | None = None) -> None:
    """Inject the fault, hold it for ``p.duration`` seconds, then undo it."""
    fabric = cluster.fabric
    if p.op in MEMBERSHIP_OPS:
        event = await membership.run(p.op, p.node)
        result.node = event.household
        result.detail = (f"key {(event.old_key or '-')[:8]} -> {(event.new_key or '-')[:8]}, "
                         f"seen {event.seen_after_s} s after the command")
        if p.op == "register":
            result.joined_from = event.joined_from
            joined = cluster.by_name[event.household]
            if joined.light:
                result.detail += (f"; its light node checked the headers from genesis, its data key in the state "
                                  f"{event.data_key_after_s} s after its registration was seen")
            else:
                result.detail += ("; its node replayed from genesis" if event.joined_from is None else
                                  f"; its node state-synced from the snapshot of height {event.joined_from}")
        elif event.data_key_after_s is not None:
            result.detail += (f"; its light node restarted with the new key, the new key's data key in the state "
                              f"{event.data_key_after_s} s after the restart")
    elif p.op in VALIDATOR_OPS:
        result.detail = await run_validator_op(cluster, p.op, node, cluster.find(p.spare) if p.spare else None,
                                               limit_s, membership.sealing if membership else None)
    elif p.op == ROTATE_DATA_KEY_OP:
        result.detail = await run_rotation_op(cluster, membership.sealing)
    elif p.op == UPGRADE_OP:
        result.detail = await run_upgrade_op(cluster, limit_s)
    elif p.op == "disconnect":
        await _fabric(fabric.set_link, node.index, False)
        await trio.sleep(p.duration)
        await _fabric(fabric.set_link, node.index, True)
    elif p.op == "pause":
        cluster.pause(node)
        await trio.sleep(p.duration)
        cluster.resume(node)
    elif p.op == "kill":
        await cluster.kill(node)
        result.exit_code = node.proc.returncode
        await trio.sleep(p.duration)
        await cluster.start(node)
    elif p.op == "restart":
        result.exit_code = await cluster.stop(node)
        await trio.sleep(p.duration)
        await cluster.start(node)
    elif p.op == "latency":
        result.mechanism = await _fabric(fabric.add_latency, node.index, p.delay_ms, p.jitter_ms, seed)
        await trio.sleep(p.duration)
        await _fabric(fabric.remove_latency, node.index)
    elif p.op == "partition":
        await _fabric(fabric.set_partition, compute_partition_sides(cluster))
        await trio.sleep(p.duration)
        await _fabric(fabric.heal_partition)


async def measure_recovery(cluster: Cluster, node: NodeProc | None, limit_s: float) -> float | None:
    """Seconds until the node (or every node) is above the best height seen now."""
    healed = trio.current_time()
    target = max((await cluster.heights()).values(), default=0) + 1
    watched = [node] if node is not None else cluster.nodes
    with trio.move_on_after(limit_s):
        while True:
            heights = [(await cluster.status(n) or {}).get("height", -1) for n in watched]
            if min(heights) >= target:
                return round(trio.current_time() - healed, 2)
            await trio.sleep(RECOVERY_POLL_S)
    return None


async def run_perturbation(cluster: Cluster, p: Perturbation, load_start: float, limit_s: float,
                           seed: int, results: list[PerturbResult], membership: Membership | None = None) -> None:
    await trio.sleep_until(load_start + p.at)
    node = cluster.find(p.node) if p.node is not None and p.op not in ("partition", UPGRADE_OP) else None
    result = PerturbResult(p.op, node.name if node else None, p.at, p.duration)
    results.append(result)
    try:
        await apply_fault(cluster, p, node, result, seed, limit_s, membership)
    except Exception as exc:  # a failed injection is a finding of the run, reported, not a crash
        result.error = f"{type(exc).__name__}: {exc}"
        if node is not None and node.paused:
            cluster.signal(node, signal.SIGCONT)
        return
    # A validator retired by the op (node/e2e/sealing.py): the network's recovery is measured.
    result.recovery_s = await measure_recovery(cluster, node if node in cluster.nodes else None, limit_s)
