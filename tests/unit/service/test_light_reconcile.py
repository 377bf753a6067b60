"""A household's reconciliation entries on a commune that seals payloads (docs/privacy.md
"What stays in the state"): ``cons/`` and ``rcs/`` are keyed by a hash under the commune
key, so no key in a validator's store, a proof or a snapshot holds a PRM; the household's
light node still follows and proves its own entries, asking for them by its key
(tokens/lightstate.py ``own_prm``). A validator's real Node over LevelDB commits the
blocks; the light node follows it through the real responders (test_light.py ``FakeNet``)."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest
import trio

from node.consent.signed import NONCE_BYTES, sign_target
from node.home.homedir import KEY_FILE, load_household_spec
from node.home.keyfile import load_key
from tests.support.fake_node import asgi_client
from tests.unit.service.test_aggregate_privacy import DELTA, T0, Sealed, make_run
from tests.unit.service.test_light import FakeNet, follow, light
from tests.unit.service.test_pruning_node import Run
from tokens import layout as L
from tokens import txs as T
from tokens.kv import decode_value
from tokens.queries import get_sealing
from tokens.queries_reconcile import get_household_reconciliation
from tokens.sealing import build_commune_sealed


@pytest.fixture
def run(tmp_path: Path):
    run = make_run(tmp_path, 1)
    try:
        yield run
    finally:
        run.close()


def registrar_tx(run: Run, nonce: int, tx_type: type[T.Tx], **fields) -> bytes:
    """A registrar tx sealed to the commune key of epoch 0, as a sealing chain takes it."""
    registrar = load_key(run.commune / "registrar" / KEY_FILE)
    inner = tx_type(signer=registrar.public, nonce=nonce, sig=bytes(64), **fields)
    public = bytes.fromhex(get_sealing(run.store.state)["public"])
    return build_commune_sealed(inner, registrar, run.home.genesis.chain_id, 0, public, os.urandom(32)).encode()


def reconciled(run: Run) -> str:
    """household-0 consents, exports 500 Wh in [T0, T0+Δ), which settles; the registrar
    reconciles it to an official 400 Wh. Its PRM."""
    prm = load_household_spec(run.home.genesis, run.commune / "household-0").prm
    s = Sealed(run)
    run.commit(T0 + 2, [registrar_tx(run, 1, T.Consent, prm=prm, granted=True, memo="")])
    run.commit(T0 + 10, [s.reading("household-0", T0 + 5)])
    run.commit(T0 + 900, [s.reading("household-0", T0 + 890, exp=500)])
    run.commit(T0 + DELTA + 400)
    run.commit(T0 + DELTA + 401, [registrar_tx(run, 2, T.Reconcile, prm=prm, start=T0, export_wh=(400,),
                                               import_wh=())])
    run.commit(T0 + DELTA + 402)        # its header proves the state after the Reconcile
    return prm


def signed_get(node, path: str) -> dict:
    """GET ``path`` on the light node's HTTP API, signed by its household's key."""
    headers = sign_target(node.key, "GET", path, int(time.time()), secrets.token_bytes(NONCE_BYTES))

    async def fetch():
        async with asgi_client(node) as http:
            return await http.get(path, headers=headers)
    response = trio.run(fetch)
    assert response.status_code == 200, response.text
    return response.json()


def test_light_household_proves_its_reconciliation_and_no_key_holds_its_prm(run: Run):
    prm = reconciled(run)
    me = load_key(run.commune / "household-0" / KEY_FILE).public
    # The validator's store: one consent and one statistics entry, keyed by a 32-byte tag.
    full = {prefix: dict(run.store.state.iter_prefix(prefix)) for prefix in (L.PRM, L.CONSENT, L.RECONCILE_STATS)}
    assert [len(full[p]) for p in (L.CONSENT, L.RECONCILE_STATS)] == [1, 1]
    (stats_key, stats), = full[L.RECONCILE_STATS].items()
    (consent_key, _), = full[L.CONSENT].items()
    tag = stats_key[len(L.RECONCILE_STATS):]
    assert len(tag) == 32 and consent_key == L.CONSENT + tag and decode_value(full[L.PRM][L.PRM + tag]) == me
    assert decode_value(stats)[L.RC_DAYS] == 1 and decode_value(stats)[L.RC_OFF_E] == 400
    assert not [key for key, _ in run.store.state.iter_prefix(b"") if prm.encode() in key]
    assert get_household_reconciliation(run.store.state, me)["totals"]["official_export_wh"] == 400

    node, client = light(run.commune, FakeNet(run), "household-0")
    try:
        follow(client)
        held = node.store.state
        # Its delivery point entries, proven at the height the light node holds: the
        # validator's values, byte for byte, under the same tag.
        assert held.get(stats_key) == stats and held.get(consent_key) == full[L.CONSENT][consent_key]
        assert decode_value(held.get(L.PRM + tag)) == me
        assert not [key for key, _ in held.iter_prefix(b"") if prm.encode() in key]
        view = signed_get(node, f"/households/{me.hex()}/reconciliation")
        assert view["prm"] == prm and view["consent"] is not None
        assert (view["totals"]["days"], view["totals"]["provisional_export_wh"],
                view["totals"]["official_export_wh"]) == (1, 500, 400)
        # It keeps following them: one more reconciled day shows on the next step.
        run.commit(T0 + 2 * DELTA + 400)
        run.commit(T0 + 2 * DELTA + 401, [registrar_tx(run, 3, T.Reconcile, prm=prm, start=T0 + DELTA,
                                                       export_wh=(0,), import_wh=())])
        run.commit(T0 + 2 * DELTA + 402)
        follow(client)
        assert decode_value(node.store.state.get(stats_key))[L.RC_DAYS] == 2
        assert signed_get(node, f"/households/{me.hex()}/reconciliation")["totals"]["days"] == 2
    finally:
        node.store.close()
