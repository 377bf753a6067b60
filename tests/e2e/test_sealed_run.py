"""``e2e/manifests/sealed.toml`` end to end (about 70 s): a commune that seals household
payloads, its household nodes light, under load with a validator killed and a household
node restarted; nothing acknowledged is lost and the stores hold the invariants."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from node.store.light import LightStore

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_sealed_commune_with_light_households(tmp_path):
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "node.cli", "e2e", "run", str(REPO / "e2e" / "manifests" / "sealed.toml"),
                           "--report", str(report), "--workdir", str(tmp_path / "net")], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert report.exists(), done.stderr[-2000:]
    r = json.loads(report.read_text())
    assert done.returncode == 0 and r["passed"], r["problems"]
    assert r["seal"] is True and r["data_keys_height"] >= 1
    assert r["txs"]["acked"] > 50 and r["txs"]["lost_count"] == 0 and r["txs"]["duplicate_count"] == 0
    ag = r["agreement"]
    assert ag["forks"] == [] and ag["state_hash_mismatches"] == [] and ag["light_mismatches"] == []
    # The light households report the state just below the validators' height.
    assert all(ag["heights"][f"household-{i}"] >= ag["common_height"] - 1 for i in range(4))
    # Validators: the settlement invariant; light households: held to a validator's store.
    assert {iv["node"] for iv in r["intervals"]} == set(ag["heights"])
    assert all(iv["settled"] >= 1 and not iv["violations"] for iv in r["intervals"])
    assert {p["op"]: p["recovery_s"] is not None for p in r["perturbations"]} == {"kill": True, "restart": True}
    assert json.loads((tmp_path / "net" / "genesis.json").read_text())["sealing"] is not None
    # Each household's store holds verified headers and no block body.
    for i in range(4):
        store = LightStore.open_home(tmp_path / "net" / f"household-{i}")
        try:
            assert store.is_light() and store.header_top() >= ag["common_height"] - 1
            assert all(store.block(h) is None for h in range(1, store.header_top() + 1))
        finally:
            store.close()
