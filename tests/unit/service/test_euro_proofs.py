"""A household's proof of its own payout on a chain that seals (docs/privacy.md "Private
state leaves"): the ``payout/`` leaf takes the commune's salt, which the household cannot
derive, so ``GET /proofs/{key}`` gives it that leaf's salt with the value it may read;
its own entries' salt it derives from its key file, and none comes with them. A
validator's real Node over LevelDB, its blocks committed through its ledger app."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
import trio

from node.consent.signed import NONCE_BYTES, sign_target
from tests.support.fake_node import asgi_client
from tests.unit.service.test_aggregate_privacy import DELTA, T0, Sealed, make_run
from tests.unit.service.test_pruning_node import Run
from tokens import layout as L
from tokens import txs as T
from tokens.kv import decode_value
from wire import Keypair, sign_message
from wire.merkle import verify_proof
from wire.seal import derive_household_keys


def signed_get(run: Run, key: Keypair, path: str):
    headers = sign_target(key, "GET", path, int(time.time()), secrets.token_bytes(NONCE_BYTES))

    async def fetch():
        async with asgi_client(run.node) as http:
            return await http.get(path, headers=headers)
    return trio.run(fetch)


@pytest.fixture
def redeemed(tmp_path: Path):
    """household-0 exports 400 Wh in a public interval, then sells 200 Wh of them: a payout."""
    run = make_run(tmp_path, 1)
    try:
        s = Sealed(run)
        s.settle_first_interval()
        me = s.keys["household-0"]
        redeem = T.Redeem(signer=me.public, nonce=2, cls="kwh", amount=200, sig=bytes(64))
        run.commit(T0 + DELTA + 401, [sign_message(redeem, run.home.genesis.chain_id, me).encode()])
        run.commit(T0 + DELTA + 402)        # its header proves the state after the Redeem
        yield run, s
    finally:
        run.close()


def test_a_household_checks_its_payout_with_the_salt_its_proof_gives(redeemed):
    run, s = redeemed
    me, other = s.keys["household-0"], s.keys["household-1"]
    [(payout, raw)] = list(run.store.state.iter_prefix(L.PAYOUT))
    assert decode_value(raw)[L.PO_ACCOUNT] == me.public
    resp = signed_get(run, me, f"/proofs/{payout.hex()}")
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    root, value, proof = bytes.fromhex(doc["root"]), bytes.fromhex(doc["value"]), bytes.fromhex(doc["proof"])
    assert value == raw and doc["salt"] is not None
    assert verify_proof(root, payout, value, proof, bytes.fromhex(doc["salt"]))
    # Unsalted, the leaf would let a neighbour's proof test guesses of who sold how much.
    assert not verify_proof(root, payout, value, proof)
    # Its own account: salted with what it derives itself; no salt comes with it.
    account = L.key_account(me.public)
    doc = signed_get(run, me, f"/proofs/{account.hex()}").json()
    assert doc["salt"] is None
    assert verify_proof(bytes.fromhex(doc["root"]), account, bytes.fromhex(doc["value"]), bytes.fromhex(doc["proof"]),
                        derive_household_keys(me.seed, 0)[1])
    # Another household reads neither the payout nor its salt.
    refused = signed_get(run, other, f"/proofs/{payout.hex()}")
    assert refused.status_code == 403 and "salt" not in refused.json()
    # The rebuilt root of the validator's store is the one it committed.
    assert run.store.verify_state_hash(run.node.keys) == run.store.state_hash()
