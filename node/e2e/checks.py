"""The invariants checked after every e2e run (CometBFT test/e2e, DESIGN §11).

- every node has the same block id at every common height, so no fork (the block id
  covers the header, which carries the state hash after the parent);
- nodes at the same height report the same state hash;
- on a commune that seals payloads, household nodes run light and hold no block: each
  one's state hash is the one the validators' next header carries, and, once stopped,
  every header it verified has the validators' block id and every entry it holds of a
  settled interval (the aggregate, its own share) is the validators' (``check_light_store``);
- every tx the client saw acknowledged with 202 is committed exactly once (or, for a
  reading, superseded by a later committed reading of the same meter);
- every settled interval satisfies Σ minted − Σ allocated == ΣE − M (DESIGN §4 step 3),
  read from each stopped full node's store through ``tokens.queries`` (a light node holds
  no other household's share, so it is held to the validators' store instead);
- a byzantine validator's equivocation evidence is committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from node.localnet.cluster import Cluster, NodeProc
from node.e2e.load import AckLog, Follower
from node.home.homedir import KEY_FILE
from node.home.keyfile import load_key
from node.store import Store
from node.store.light import LightStore
from tokens import layout as L
from tokens.kv import decode_value
from tokens.queries import get_interval_at
from tokens.statetree import MissingTreeNode, compute_proof


LAG_TOLERANCE = 2     # DESIGN §7: a node more than 2 heights behind must sync
# A light node holds the state of height h once it verified the header of h+1, which
# carries that state's root: at best one height below the validators.
LIGHT_BEHIND = 1
# And it learns the validators' height by asking (node/net/network.py, a few peers every
# status_interval_s = 2 s), then follows (lightclient.FOLLOW_S = 1 s): on a chain that
# never idles (a double-signer's evidence makes every height due) it trails by what the
# chain made in those seconds. It follows if it reaches, within this, the height the
# full nodes were at.
LIGHT_FOLLOW_S = 10.0


@dataclass
class Agreement:
    common_height: int = 0
    heights: dict[str, int] = field(default_factory=dict)
    forks: list[int] = field(default_factory=list)
    state_hash_mismatches: list[int] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    lagging: list[str] = field(default_factory=list)
    # Heights below which each node holds no block: a node that joined by state sync
    # starts after its snapshot (only heights it holds are compared).
    first_held: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)   # nodes without the common height's block
    # Light nodes whose state hash is not the one the validators' header above it carries.
    light_mismatches: list[str] = field(default_factory=list)


NOT_HELD = (404, 410)   # GET /blocks/{h}: never held (state sync) or pruned


async def check_agreement(cluster: Cluster) -> Agreement:
    """Block ids at every common height, state hashes at equal heights."""
    out = Agreement()
    statuses = {}
    for node in cluster.nodes:
        st = await cluster.status(node, timeout=5)
        if st is None:
            out.unreachable.append(node.name)
        else:
            statuses[node.name] = st
            out.heights[node.name] = st["height"]
    full = [name for name in statuses if not cluster.by_name[name].light]
    out.common_height = min((out.heights[name] for name in full), default=0)
    top = max(out.heights.values(), default=0)
    out.lagging = [f"{name} at {h} of {top}" for name, h in out.heights.items()
                   if h + LAG_TOLERANCE < top and name in full]
    out.lagging += await find_light_lagging(cluster, {name: h for name, h in out.heights.items() if name not in full},
                                            top)
    for h in range(1, out.common_height + 1):
        ids = set()
        for name in full:
            response = await cluster.client.get(f"{cluster.by_name[name].url}/blocks/{h}", timeout=10)
            if response.status_code in NOT_HELD:
                out.first_held[name] = h + 1
                continue
            response.raise_for_status()
            ids.add(response.json()["id"])
        if len(ids) > 1:
            out.forks.append(h)
    out.missing = [name for name, first in out.first_held.items() if first > out.common_height]
    by_height: dict[int, set[str]] = {}
    for name in full:       # a light node is held to the headers below
        st = statuses[name]
        by_height.setdefault(st["height"], set()).add(st["state_hash"])
    out.state_hash_mismatches = sorted(h for h, hashes in by_height.items() if len(hashes) > 1)
    if full:
        out.light_mismatches = await cluster.check_light_state_hashes(statuses, cluster.by_name[full[0]])
    return out


async def find_light_lagging(cluster: Cluster, heights: dict[str, int], top: int) -> list[str]:
    """The light nodes (``heights``: theirs as first read) that do not reach ``top`` −
    LIGHT_BEHIND within LIGHT_FOLLOW_S: a light node trails a moving chain by its
    polling, one that stays behind does not follow it."""
    behind = {name: h for name, h in heights.items() if h + LIGHT_BEHIND < top}
    with trio.move_on_after(LIGHT_FOLLOW_S):
        while behind:
            for name in list(behind):
                st = await cluster.status(cluster.by_name[name], timeout=5)
                if st is not None and st["height"] + LIGHT_BEHIND >= top:
                    del behind[name]
            if behind:
                await trio.sleep(0.5)
    return [f"{name} at {h} of {top} (light, still behind {LIGHT_FOLLOW_S:.0f} s later)" for name, h in behind.items()]


@dataclass
class TxOutcome:
    acked: int = 0
    committed: int = 0
    superseded: int = 0
    resealed: int = 0      # committed in another envelope: its node re-sealed it after a rotation
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    resubmitted_txs: int = 0
    # "reading" / "transfer", and who by (its node): what a lost tx was, for the report.
    lost_kinds: dict[str, int] = field(default_factory=dict)


def check_txs(log: AckLog, follower: Follower) -> TxOutcome:
    """Every acknowledged tx committed exactly once; no tx anywhere in the chain twice."""
    out = TxOutcome(acked=len(log.acked))
    out.duplicates = sorted(tx_id for tx_id, heights in follower.committed.items() if len(heights) > 1)
    for entry in log.acked.values():
        out.resubmitted_txs += entry.resubmits > 0
        if entry.tx_id in follower.committed:
            out.committed += 1
        elif follower.is_resealed(entry):
            out.resealed += 1
        elif follower.is_superseded(entry):
            out.superseded += 1
        else:
            out.lost.append(entry.tx_id)
            what = f"{entry.kind} via {entry.node}"
            out.lost_kinds[what] = out.lost_kinds.get(what, 0) + 1
    return out


@dataclass
class IntervalCheck:
    node: str
    settled: int = 0
    violations: list[str] = field(default_factory=list)


def check_intervals(name: str, store: Store) -> IntervalCheck:
    """DESIGN §4 step 3 on every settled interval of one node's state."""
    out = IntervalCheck(name)
    kv = store.state
    starts = [L.from_u64(key[len(L.INTERVAL):]) for key, _ in kv.iter_prefix(L.INTERVAL)]
    for start in starts:
        # The sums as reconciliations made them: those waiting for enough households on
        # a chain that seals are not in the record yet (docs/privacy.md "Public aggregates").
        iv = get_interval_at(kv, start, corrected=True)
        if not iv["settled"]:
            continue
        out.settled += 1
        minted = sum(h["minted_wh"] for h in iv["households"].values()) + iv["levy"]
        allocated = sum(h["allocated_wh"] for h in iv["households"].values())
        sum_e = sum(h["export_wh"] for h in iv["households"].values())
        sum_i = sum(h["import_wh"] for h in iv["households"].values())
        if minted - allocated != iv["sum_e"] - iv["m"]:
            out.violations.append(f"interval {start}: minted {minted} - allocated {allocated} "
                                  f"!= ΣE {iv['sum_e']} - M {iv['m']}")
        if (sum_e, sum_i) != (iv["sum_e"], iv["sum_i"]) or iv["m"] != min(sum_e, sum_i):
            out.violations.append(f"interval {start}: aggregates disagree with the households' entries")
    return out


def check_light_store(name: str, store: LightStore, own: bytes, reference: Store) -> IntervalCheck:
    """A stopped light node against a stopped validator's store: every header it verified
    has the validator's block id; every interval settled at its own height (its record,
    or the public settled-until mark where the record is not its to hold) has the
    validator's aggregate and the validator's entry for its own household; it holds no
    other household's entry."""
    out = IntervalCheck(name)
    top = store.header_top()
    forks = [h for h in range(1, top + 1) if store.block_id(h) != reference.block_id(h)]
    if forks:
        out.violations.append(f"verified headers differ from the validators' blocks at heights {forks[:5]}")
    kv, ref = store.state, reference.state
    # Its own entries, each interval it took part in: on a chain that seals, the record
    # of an interval fewer than min_aggregate households made up is not its to hold.
    starts = {L.from_u64(key[len(L.INTERVAL_ENTRY):len(L.INTERVAL_ENTRY) + 8])
              for key, _ in kv.iter_prefix(L.INTERVAL_ENTRY)}
    starts |= {L.from_u64(key[len(L.INTERVAL):]) for key, _ in kv.iter_prefix(L.INTERVAL)}
    for start in sorted(starts):
        iv, expected = get_interval_at(kv, start), get_interval_at(ref, start)
        if not expected["settled"] or not iv["settled"]:
            # Settled only above the height the light node stopped at (the validators
            # went on a block or two): until then a late reading of the interval could
            # still change its entry, so the one it holds is not final yet.
            continue
        out.settled += 1
        others = sorted(set(iv["households"]) - {own.hex()})
        if others:
            out.violations.append(f"interval {start}: holds {len(others)} other households' entries")
        raw = kv.get(L.key_entry(start, own))
        mine = None
        if raw is not None:
            e, i, minted, allocated = decode_value(raw)[:4]
            mine = {"export_wh": e, "import_wh": i, "minted_wh": minted, "allocated_wh": allocated}
        if mine != expected["households"].get(own.hex()):
            out.violations.append(f"interval {start}: its own entry {mine} is not the validators' "
                                  f"{expected['households'].get(own.hex())} "
                                  f"({describe_tree_entry(store, reference, L.key_entry(start, own))})")
        if kv.get(L.key_interval(start)) is None:
            continue
        shown = {k: iv[k] for k in ("sum_e", "sum_i", "m", "levy", "settled")}
        if shown != {k: expected[k] for k in shown}:
            out.violations.append(f"interval {start}: aggregate {shown} is not the validators'")
    return out


def describe_tree_entry(store: LightStore, reference: Store, key: bytes) -> str:
    """What the validator's state tree holds for ``key`` at the light store's height and
    root: tells a light node that kept a value the chain never had from a chain whose
    tree held it (a validator's entries then do not match its own tree)."""
    height, root = store.height(), store.state_hash()
    if height < reference.tree_from():
        return f"the validator's tree of the light node's height {height} is pruned"
    try:
        value, _ = compute_proof(reference.state, root, key)
    except MissingTreeNode:
        return f"the light node's root of height {height} is not in the validator's tree"
    return f"the validators' tree at the light node's height {height} holds " \
           f"{None if value is None else decode_value(value)[:4]}"


def check_stores(cluster: Cluster) -> list[IntervalCheck]:
    """Open each stopped node's store read-only in spirit and check its intervals: the
    settlement invariant on every full node, the validators' entries on a light one
    (held to the first full node's store)."""
    out = []
    reference = next((n for n in cluster.nodes if not n.light), None)
    for node in cluster.nodes:
        try:
            store = (LightStore if node.light else Store).open_home(node.home)
        except Exception as exc:  # any store error is a finding of the run, not a crash
            out.append(IntervalCheck(node.name, violations=[f"cannot open store: {exc}"]))
            continue
        try:
            if not node.light:
                out.append(check_intervals(node.name, store))
            elif reference is None:
                out.append(IntervalCheck(node.name, violations=["no full node to hold its entries to"]))
            else:
                out.append(_check_light_home(node, store, reference))
        finally:
            store.close()
    return out


def _check_light_home(node: NodeProc, store: LightStore, reference: NodeProc) -> IntervalCheck:
    try:
        ref = Store.open_home(reference.home)
    except Exception as exc:  # any store error is a finding of the run, not a crash
        return IntervalCheck(node.name, violations=[f"cannot open {reference.name}'s store: {exc}"])
    try:
        return check_light_store(node.name, store, load_key(node.home / KEY_FILE).public, ref)
    finally:
        ref.close()


def check_evidence(follower: Follower, byzantine_keys: dict[str, str]) -> dict[str, int]:
    """How many committed evidence items name each byzantine validator (by name)."""
    counts = {name: 0 for name in byzantine_keys}
    for ev in follower.evidence:
        text = repr(ev)
        for name, key in byzantine_keys.items():
            counts[name] += key in text
    return counts


def find_honest_bans(cluster: Cluster) -> list[str]:
    """Lines of node logs where a node banned another node of the network (not the hostile peer)."""
    names = {n.peer_id: n.name for n in cluster.nodes if n.peer_id}
    out = []
    for node in cluster.nodes:
        try:
            text = (node.home / "node.log").read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if "banned peer " in line:
                peer = line.split("banned peer ", 1)[1].split()[0]
                if peer in names:
                    out.append(f"{node.name} banned {names[peer]} ({line.rsplit(': ', 1)[-1]})")
    return out
