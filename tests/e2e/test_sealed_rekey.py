"""``e2e/manifests/sealed-rekey.toml`` end to end (about 2 minutes): on a commune that
seals household payloads, one household rotates its key and another's lost key is
recovered, under load. Each household's light node restarts with the new key file in
its home, publishes the new key's data key, and its meter seals under it; nothing
acknowledged is lost, and each light store holds the validators' entries of its
household under its new key (docs/privacy.md "Moving a household to a new key")."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.home.homedir import KEY_FILE
from node.home.keyfile import load_key
from tests.e2e.conftest import run_e2e

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_sealed_commune_moves_households_to_new_keys(tmp_path):
    done, r = run_e2e(REPO / "e2e" / "manifests" / "sealed-rekey.toml", tmp_path)
    assert done.returncode == 0 and r["passed"], r["problems"]
    assert r["txs"]["lost_count"] == 0 and r["txs"]["duplicate_count"] == 0 and r["txs"]["acked"] > 100
    ops = {p["op"]: p for p in r["perturbations"]}
    assert set(ops) == {"rotate_household", "recover_household"}
    for op in ops.values():
        assert op["error"] is None and op["recovery_s"] is not None
        assert "its light node restarted with the new key, the new key's data key in the state" in op["detail"]
    # Each moved household's home now holds its new key, which the report names.
    for op in ops.values():
        new = load_key(tmp_path / "net" / op["node"] / KEY_FILE).public.hex()
        assert op["detail"].split(" -> ")[1].startswith(new[:8])
    ag = r["agreement"]
    assert ag["forks"] == [] and ag["state_hash_mismatches"] == [] and ag["light_mismatches"] == []
    # The moved households' light stores, held to a validator's under their new keys.
    assert all(iv["settled"] >= 1 and not iv["violations"] for iv in r["intervals"])
    assert {"household-1", "household-2"} <= {iv["node"] for iv in r["intervals"]}
