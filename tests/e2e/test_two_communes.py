"""Two real communes on loopback and a real relayer process (node/e2e/communes.py,
docs/communes.md): the relayer SIGKILLed and restarted, commune B down past the timeout
of what A sends meanwhile; 0 lost, timed-out packets refunded, and per direction, exactly,
Σ escrowed on the source = Σ vouchers on the destination + Σ in flight − Σ minted not yet
acknowledged, packet by packet, each chain read at one height (tokens/books_ibc.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from node.e2e.communes import CommunesManifest, parse_communes_manifest, run_communes_manifest
from node.e2e.errors import E2EError
from tokens.books_ibc import DELIVERED, IN_FLIGHT, MINTED, TIMED_OUT


def test_two_communes_under_perturbation_lose_nothing_and_conserve_supply(tmp_path):
    m = CommunesManifest(duration=40, relayer_kill_at=6, relayer_down_s=5, dest_down_at=15, dest_down_s=20,
                         short_timeout_s=80, settlement_interval_s=200, settlement_grace_s=20)
    report = trio.run(run_communes_manifest, m, tmp_path / "w", lambda line: None)
    assert report["problems"] == [] and report["passed"]
    drained = report["books_drained"]
    assert drained["A->B"]["statuses"].get("timed-out", 0) > 0 and drained["A->B"]["statuses"].get("delivered", 0) > 0
    assert drained["A->B"]["packets"][TIMED_OUT] == drained["A->B"]["statuses"]["timed-out"]
    assert drained["B->A"]["escrow"] == drained["B->A"]["vouchers"] > 0
    assert set(drained["B->A"]["packets"]) == {DELIVERED}
    stopped = report["books_relayer_stopped"]
    assert all(b["conserved"] and b["problems"] == [] for b in stopped.values())
    # Read while packets were still on their way: the books held them in flight, some minted.
    assert sum(b["packets"].get(IN_FLIGHT, 0) + b["packets"].get(MINTED, 0) for b in stopped.values()) > 0
    assert report["relayer_starts"] >= 3
    # Both communes run clear (transfers between communes are public): the settlement
    # invariant on every node of both, each with an interval settled.
    assert {iv["node"] for iv in report["intervals"]} == {f"{c}/{n}-{i}" for c in "AB"
                                                          for n in ("validator", "household") for i in range(2)}
    assert all(iv["settled"] >= 1 and not iv["violations"] for iv in report["intervals"])


@pytest.mark.parametrize("doc, words", [
    ({"communes": 3}, "only 2"),
    ({"communes": 2, "bogus": 1}, "unknown key"),
    ({"communes": 2, "households": 1}, "households >= 2"),
    ({"communes": 2, "duration": "long"}, "must be a float"),
    ({"communes": 2, "settlement_interval_s": 200}, "settlement_grace_s: must be shorter"),
])
def test_invalid_two_communes_manifest(doc, words):
    with pytest.raises(E2EError, match=words):
        parse_communes_manifest(doc, Path("m.toml"))
