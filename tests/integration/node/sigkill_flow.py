"""The SIGKILL-and-restart flow (DESIGN §6 double-sign protection, §8 crash safety), with separate processes.

``voisinage genesis new`` writes a commune of 4 validators; each runs as its own
``voisinage node run --sign-journal`` process. One validator is killed with SIGKILL
at random moments while the others commit, and restarted each time. Afterwards:

- it caught up on the same blocks as everyone (same ids and state hashes);
- it never double-signed: its journal (every (h, r, step, sign hash) it signed,
  written before the signature left the process) has one hash per (h, r, step),
  across every restart; its double-sign record never went backwards; no node saw
  or committed evidence against it; and each of its precommits in the commits is
  listed in its journal, so the journal is complete.

Run it alone for a transcript::

    python -m tests.integration.node.sigkill_flow [KILLS [DIR]]
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

from consensus.privval import SignState
from consensus.vote import PRECOMMIT, Vote, compute_sign_hash
from node.home.homedir import load_home
from node.service.signstate import SIGN_JOURNAL_FILE, load_sign_state
from tests.support.nodes import CONVERGE_S, Cluster, NodeProc, make_commune
from tests.support.wait import wait_for
from wire import signing_bytes

VICTIM = "validator-1"


def read_journal(home: Path) -> list[tuple[int, int, int, str]]:
    path = home / SIGN_JOURNAL_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        h, r, s, sign_hash = line.split()
        rows.append((int(h), int(r), int(s), sign_hash))
    return rows


def find_double_signs(rows: list[tuple[int, int, int, str]]) -> dict[tuple[int, int, int], set[str]]:
    """(h, r, step) signed with more than one hash: a double sign."""
    seen: dict[tuple[int, int, int], set[str]] = defaultdict(set)
    for h, r, s, sign_hash in rows:
        seen[(h, r, s)].add(sign_hash)
    return {key: hashes for key, hashes in seen.items() if len(hashes) > 1}


def hrs(state: SignState) -> tuple[int, int, int]:
    return state.height, state.round, state.step


def committed_precommits(node: NodeProc, validator_hex: str, chain_id: bytes,
                         upto: int) -> list[tuple[int, int, int, str]]:
    """The journal rows that ``validator_hex``'s precommits in the stored commits must match."""
    rows = []
    for h in range(1, upto + 1):
        commit = node.block(h)["commit"]
        if any(sig["validator"] == validator_hex for sig in commit["sigs"]):
            vote = Vote(kind=PRECOMMIT, height=h, round=commit["round"], block_id=bytes.fromhex(commit["block_id"]),
                        validator=bytes.fromhex(validator_hex), sig=bytes(64))
            sign_hash = compute_sign_hash(signing_bytes(chain_id, vote)).hex()
            rows.append((h, commit["round"], 3, sign_hash))
    return rows


# Where a kill lands: right after a prevote was signed (before the precommit), right
# after a precommit, or at a random moment.
KILL_MOMENTS = ("after a prevote", "after a precommit", "at a random moment")
STEP_OF = {"after a prevote": 2, "after a precommit": 3}
AIM_S = 15.0


def kill_at(victim: NodeProc, moment: str, rng: random.Random) -> int:
    """SIGKILL ``victim`` as soon as its journal shows a new signature of the step named by
    ``moment`` (polling the file every few ms); at a random moment otherwise."""
    step = STEP_OF.get(moment)
    if step is None:
        time.sleep(rng.uniform(0.2, 1.5))
        return victim.kill()
    seen = len(read_journal(victim.home))
    deadline = time.monotonic() + AIM_S
    while time.monotonic() < deadline:
        rows = read_journal(victim.home)
        if len(rows) > seen and rows[-1][2] == step:
            break
        seen = len(rows)
        time.sleep(0.002)
    return victim.kill()


def run_flow(cluster: Cluster, kills: int, say: Callable[[str], None] = lambda line: None,
             seed: int | None = None) -> dict:
    """Kill and restart the victim ``kills`` times; return what the checks need."""
    rng = random.Random(seed)
    names = cluster.validator_names
    for name in names:
        cluster.node(name, "--sign-journal")
    say(f"$ voisinage node run --home {cluster.commune.home(names[0])} --sign-journal ...  (x{len(names)})")
    nodes = cluster.start(*names)
    victim = cluster.nodes[VICTIM]
    others = [n for n in nodes if n is not victim]
    cluster.wait_height(3, nodes)
    records = [load_sign_state(victim.home)]
    for k in range(kills):
        moment = KILL_MOMENTS[k % len(KILL_MOMENTS)]
        before = victim.height()
        code = kill_at(victim, moment, rng)
        records.append(load_sign_state(victim.home))
        say(f"kill -9 {VICTIM} {moment} (exit {code}) at height {before}, "
            f"double-sign record at h/r/s {hrs(records[-1])}")
        target = max(n.height() for n in others) + 1
        wait_for(lambda: min(n.height() for n in others) >= target, CONVERGE_S,
                 "the 3 others to commit without the victim", cluster.logs)
        cluster.start(VICTIM)
        target = cluster.wait_caught_up(victim, others)
        say(f"restarted {VICTIM}: caught up to height {victim.height()} (others at {target})")
    top = max(n.height() for n in nodes) + 2
    cluster.wait_height(top, nodes)
    records.append(load_sign_state(victim.home))
    agreed = cluster.assert_agree(nodes, upto=top)
    say(f"all 4 validators agree on blocks 1..{agreed} (ids and state hashes)")
    return {"nodes": nodes, "victim": victim, "records": records, "agreed": agreed}


def check_no_double_sign(cluster: Cluster, result: dict, say: Callable[[str], None] = lambda line: None) -> None:
    victim, nodes, agreed = result["victim"], result["nodes"], result["agreed"]
    journal = read_journal(victim.home)
    double = find_double_signs(journal)
    say(f"{VICTIM} journal: {len(journal)} signatures over {len({r[0] for r in journal})} heights, "
        f"(h, r, step) signed with two hashes: {len(double)}")
    if double:
        raise AssertionError(f"{VICTIM} double-signed: {double}")
    records = [hrs(r) for r in result["records"]]
    say(f"double-sign record across kills: {records}")
    if records != sorted(records):
        raise AssertionError(f"the double-sign record went backwards: {records}")
    chain_id = load_home(victim.home).genesis.chain_id
    address = victim.status()["address"]
    expected = committed_precommits(nodes[0], address, chain_id, agreed)
    missing = sorted(set(expected) - set(journal))
    say(f"{VICTIM} precommits in commits 1..{agreed}: {len(expected)}, missing from its journal: {len(missing)}")
    if missing:
        raise AssertionError(f"precommits signed but not journaled: {missing[:3]}")
    evidence = sum(len(nodes[0].block(h)["evidence"]) for h in range(1, agreed + 1))
    equivocations = [n.metric("voisinage_validator_equivocations_total") for n in nodes]
    say(f"evidence in blocks: {evidence}; voisinage_validator_equivocations_total per node: {equivocations}")
    if evidence or any(equivocations):
        raise AssertionError("evidence of equivocation was produced")


def main(argv: list[str]) -> int:
    kills = int(argv[0]) if argv else 3
    with tempfile.TemporaryDirectory(prefix="voisinage-sigkill-") as tmp:
        root = Path(argv[1]) if len(argv) > 1 else Path(tmp) / "commune"   # keep the homes: give a DIR
        print(f"$ voisinage genesis new --name Testville --insee 84007 --validators 4 --out {root}")
        cluster = Cluster(make_commune(root, 4))
        start = time.monotonic()

        def say(line: str) -> None:
            print(f"[{time.monotonic() - start:5.1f}s] {line}", flush=True)
        try:
            result = run_flow(cluster, kills, say)
            check_no_double_sign(cluster, result, say)
        finally:
            cluster.shutdown()
    print("OK: caught up after every SIGKILL, never double-signed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
