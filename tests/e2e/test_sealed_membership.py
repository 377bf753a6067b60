"""``e2e/manifests/sealed-membership.toml`` end to end (about 3 minutes): a commune that
seals household payloads changes while it runs. A household registered under load
publishes its data key from its light node and its sealed readings commit; a spare added
as a validator gets the commune key by a rotation sealed to the new set, joins by state
sync and signs; a second rotation on its own keeps readings flowing."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.store.light import LightStore
from tests.e2e.conftest import run_e2e

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_sealed_commune_changes_while_it_runs(tmp_path):
    done, r = run_e2e(REPO / "e2e" / "manifests" / "sealed-membership.toml", tmp_path)
    assert done.returncode == 0 and r["passed"], r["problems"]
    assert r["txs"]["lost_count"] == 0 and r["txs"]["duplicate_count"] == 0 and r["txs"]["acked"] > 100
    ops = {p["op"]: p for p in r["perturbations"]}
    assert set(ops) == {"register", "add_validator", "rotate_data_key"}
    assert all(p["error"] is None and p["recovery_s"] is not None for p in ops.values())
    # Two epochs after genesis: one sealed to the grown set, one on its own.
    assert [rot["epoch"] for rot in r["rotations"]] == [1, 2]
    assert r["rotations"][0]["height"] < r["rotations"][1]["height"]
    # The added validator opened the sealed blocks: it signs commits and holds the state
    # root the others hold (a node without the commune key cannot compute it).
    assert "spare-0 joined from the snapshot of height" in ops["add_validator"]["detail"]
    # Its copy went to the receive key its operator published before its node could run.
    assert "spare-0 published its receive key" in ops["add_validator"]["detail"]
    assert list((tmp_path / "net" / "spare-0" / "receive_keys").glob("*.key"))
    assert "signs from" in ops["add_validator"]["detail"]
    ag = r["agreement"]
    assert ag["forks"] == [] and ag["state_hash_mismatches"] == [] and ag["light_mismatches"] == []
    assert ag["heights"]["spare-0"] == ag["common_height"]
    # The household that joined: its light node followed the chain to the end, and its own
    # sealed readings settled into its state (checked against a validator's store).
    assert ag["heights"]["member-1"] >= ag["common_height"] - 1
    # Every node's store: the settlement invariant on each full node's (spare-0's from
    # its snapshot on), each light household's held to a validator's; each settled one.
    assert {iv["node"] for iv in r["intervals"]} == set(ag["heights"])
    assert all(iv["settled"] >= 1 and not iv["violations"] for iv in r["intervals"])
    assert any(iv["node"] == "member-1" for iv in r["intervals"])
    store = LightStore.open_home(tmp_path / "net" / "member-1")
    try:
        assert store.is_light() and store.block(store.header_top()) is None
    finally:
        store.close()
