"""DESIGN §12 "the chain grows with work": with no heartbeat (max_idle_s = 0) a real
validator makes no block while nothing is due, and one block when a rule falls due
(here a proposal's voting window ends: the tally runs in an empty block)."""

from __future__ import annotations

import json
import time

import httpx

from node.home.homedir import KEY_FILE, load_home
from node.home.keyfile import load_key
from tests.support.nodes import CONVERGE_S
from tests.support.wait import wait_for
from tokens.txs import Propose
from wire import sign_message

QUIET_POLLS = 8          # status polls, half a second apart, that must see no new block
YEAR_S = 365 * 86_400    # keeps the treasury epoch out of the test's way


def test_no_empty_block_until_a_tally_is_due(cluster_of) -> None:
    cluster = cluster_of(1, 1, max_idle_s=0, allocation_epoch_s=YEAR_S)
    [validator] = cluster.start("validator-0")
    quiet = validator.height()                     # genesis: nothing is due yet
    for _ in range(QUIET_POLLS):
        time.sleep(0.5)
        assert validator.height() == quiet, "an empty block with nothing due"

    home = cluster.commune.home("household-0")
    key = load_key(home / KEY_FILE)
    now_s = validator.status()["time_ms"] // 1000
    voting_end = now_s + 6
    tx = Propose(signer=key.public, nonce=1, param="levy_bp", value=json.dumps(1500),
                 voting_end=voting_end, sig=b"")
    data = sign_message(tx, load_home(home).genesis.chain_id, key).encode()
    response = httpx.post(f"{validator.url}/tx", content=data, timeout=5)
    assert response.status_code == 202, response.text

    def tallied():
        rows = (validator.get_json("/governance/proposals") or {}).get("proposals", [])
        return rows if rows and rows[0]["status"] != "open" else None

    wait_for(tallied, CONVERGE_S, "the proposal tallied at the end of its window", cluster.logs)
    top = validator.height()
    # One block for the tx, one empty block for the tally, nothing between or after.
    assert top == quiet + 2, (quiet, top)
    tally_block = validator.block(top)
    assert tally_block["txs"] == [] and tally_block["header"]["time_ms"] >= voting_end * 1000
    for _ in range(QUIET_POLLS // 2):
        time.sleep(0.5)
        assert validator.height() == top


def test_validators_are_shown_live_by_heartbeats_without_blocks(cluster_of) -> None:
    """Liveness by gossip heartbeats, not blocks: with no block at all, each validator
    sees the other live; once one stops, the other shows it not live."""
    cluster = cluster_of(2, 0, max_idle_s=0, allocation_epoch_s=YEAR_S)
    a, b = cluster.start("validator-0", "validator-1")

    def both_live(node):
        rows = (node.get_json("/validators") or {}).get("validators", [])
        return rows if len(rows) == 2 and all(r["live"] for r in rows) else None

    rows = wait_for(lambda: both_live(a), CONVERGE_S, "both validators live on validator-0", cluster.logs)
    assert all(r["heartbeat_age_s"] is not None for r in rows)
    assert a.metric("voisinage_validator_heartbeat_age_seconds") >= 0
    assert a.height() == 0 and b.height() == 0           # no block was needed for that
    b.stop()
    other = b.status() if b.is_running() else None
    assert other is None

    def b_not_live():
        rows = (a.get_json("/validators") or {}).get("validators", [])
        row = next((r for r in rows if not r["self"]), None)
        return row if row is not None and not row["live"] else None

    row = wait_for(b_not_live, CONVERGE_S, "validator-1 shown not live", cluster.logs)
    assert row["heartbeat_age_s"] is not None
