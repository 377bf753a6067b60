"""A validator's node at a household's erasure (docs/privacy.md "Erasure"): the commit of
the erasure block drops the household's archived interval entries and what the node's
keyring opened of it, and `node verify` refuses to replay across the erasure. A real
Node over a real LevelDB store; blocks committed through its ledger app."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from consensus.block import (
    ZERO_ID, Block, Commit, CommitSig, Header, compute_block_id, compute_tx_root, compute_validators_hash,
)
from consensus.vote import PRECOMMIT, Vote
from node.home.homedir import KEY_FILE, create_network, load_household_spec
from node.home.keyfile import load_key
from node.service.node import Node
from node.service.verify import VerifyError, verify_home
from tokens import layout as L
from tokens.kv import decode_value
from tokens import txs as T
from tokens.queries import get_sealing
from tokens.rules_erasure import compute_key_hash
from tokens.sealing import build_commune_sealed, build_sealed, build_set_data_key
from wire import sign_message

DAY = 86_400
# Past the default interval history (history_retention_s, 2 days): the archive holds the rows.
ERASE_AFTER = 2 * DAY + 1800


@pytest.fixture
def commune(tmp_path: Path) -> Path:
    root = tmp_path / "commune"
    create_network(root, name="Testville", insee="12345", validators=1, households=1, base_port=40100,
                   genesis_time=int(time.time()) - 600, seal_payloads=True,
                   params={"erasure_after_s": ERASE_AFTER})
    return root


def commit_at(node: Node, commune: Path, txs: list[bytes], time_s: int) -> None:
    """Commit the next block at chain time ``time_s`` (as block sync would: the
    commit checks no wall clock), proposed and precommitted by validator-0."""
    vkey = load_key(commune / "validator-0" / KEY_FILE)
    height = node.store.height() + 1
    header = Header(chain_id=node.chain_id, height=height, time_ms=time_s * 1000,
                    parent=node.store.last_block_id() or ZERO_ID, tx_root=compute_tx_root(txs),
                    state_hash=node.store.state_hash(), proposer=vkey.public,
                    next_validators=compute_validators_hash(node.app.validator_set(height + 1)), version=1)
    block = Block(header=header, txs=tuple(txs), last_commit=None, evidence=())
    block_id = compute_block_id(block)
    vote = sign_message(Vote(kind=PRECOMMIT, height=height, round=0, block_id=block_id, validator=vkey.public,
                             sig=bytes(64)), node.chain_id, vkey)
    commit = Commit(height=height, round=0, block_id=block_id, sigs=(CommitSig(validator=vkey.public, sig=vote.sig),))
    node.app.commit(block, commit, ())


def test_erasure_commit_drops_archive_rows_and_opened_keys_and_verify_refuses(node, commune):
    key = load_key(commune / "household-0" / KEY_FILE)
    registrar = load_key(commune / "registrar" / KEY_FILE)
    meter = load_household_spec(node.genesis, commune / "household-0").meter
    t = (int(time.time()) // 1800 + 1) * 1800     # an interval's start, ahead of the chain's clock
    sealing = get_sealing(node.store.state)
    commit_at(node, commune, [build_set_data_key(key, node.chain_id, 1, 0, bytes.fromhex(sealing["public"]),
                                                 os.urandom(32)).encode()], t - 60)

    def reading(seq: int, at: int, exp: int) -> bytes:
        inner = T.MeterReading(signer=key.public, meter=meter, seq=seq, t=at, import_wh=0, export_wh=exp,
                               sig=bytes(64))
        return build_sealed(inner, key, node.chain_id, 0, os.urandom(24)).encode()

    commit_at(node, commune, [reading(1, t, 0)], t + 1)
    commit_at(node, commune, [reading(2, t + 900, 700)], t + 901)
    commit_at(node, commune, [], t + 1800 + 600)             # the interval settles
    commit_at(node, commune, [], t + 1800 + 2 * DAY + 60)    # ... and leaves the state for the archive
    assert node.store.count_archived_entries(key.public) == 1
    assert any(inner.signer == key.public for inner in node.keys.opened.values())
    # Its lone interval's levy waits in the pool, which names it (docs/privacy.md).
    assert decode_value(node.store.state.get(L.POOL))[L.PL_PRODUCERS] == [key.public]

    # A Deregister names the household: sealed to the commune key on this chain.
    deregister = build_commune_sealed(T.Deregister(signer=registrar.public, nonce=1, key=key.public, memo="départ",
                                                   sig=bytes(64)), registrar, node.chain_id, 0,
                                      bytes.fromhex(sealing["public"]), os.urandom(32)).encode()
    gone = t + 2 * DAY + 1800 + 120
    commit_at(node, commune, [deregister], gone)
    commit_at(node, commune, [], gone + ERASE_AFTER - 1)
    assert node.store.count_archived_entries(key.public) == 1     # not yet due
    commit_at(node, commune, [], gone + ERASE_AFTER)
    erased_at = node.store.height()
    assert node.store.count_archived_entries(key.public) == 0
    assert node.store.state.get(L.key_erased(compute_key_hash(key.public))) is not None
    assert node.store.state.get(L.key_household_data_key(key.public, 0)) is None
    assert not any(inner.signer == key.public for inner in node.keys.opened.values())
    assert node.keys.forget_household(key.public) == 0            # nothing left of it
    # The pool still counts it, by its key's hash.
    assert decode_value(node.store.state.get(L.POOL))[L.PL_PRODUCERS] == [compute_key_hash(key.public)]
    assert node.store.verify_state_hash(node.keys) == node.store.state_hash()

    node.store.close()
    with pytest.raises(VerifyError, match=f"erased at height {erased_at}.*open its sealed payloads again"):
        verify_home(commune / "validator-0")
