"""``LedgerApp(trust_quorum=...)`` (node/service/ledger_app.py) and how Node sets it.

A household node takes the tx signatures of a block as checked by the validators that
committed it; everything else about the block is still checked. A validator, and a
household run with ``--check-all-signatures``, verify every signature. Real LevelDB
store from a real commune home, real signed (or tampered) meter readings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from consensus.block import ZERO_ID, Block, Header, compute_tx_root, compute_validators_hash
from node.home.homedir import KEY_FILE, create_network, load_home
from node.home.keyfile import load_key
from node.service.mempool import Mempool
from node.service.ledger_app import LedgerApp
from node.service.node import Node
from node.service.runner import open_store
from node.store import Store
from tokens import InvalidLedgerBlock
from tokens.txs import MeterReading
from wire import compute_id, sign_message

GENESIS_TIME = 1_700_000_000
BLOCK_TIME_MS = (GENESIS_TIME + 60) * 1000


@pytest.fixture(scope="module")
def commune(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("commune")
    create_network(root, name="Testville", insee="12345", validators=1, households=1, base_port=40000,
                   genesis_time=GENESIS_TIME)
    return root


@pytest.fixture
def store(commune: Path) -> Iterator[Store]:
    s = open_store(load_home(commune / "household-0"))
    yield s
    s.close()


def reading(commune: Path, *, tampered: bool = False, meter: str | None = None) -> bytes:
    """Household-0's first meter reading, 10 s before the block; ``tampered``: one
    signature byte changed after signing."""
    genesis = load_home(commune / "household-0").genesis
    key = load_key(commune / "household-0" / KEY_FILE)
    house = {h.key: h for h in genesis.households}[key.public]
    tx = MeterReading(signer=key.public, meter=meter or house.meter, seq=1, t=BLOCK_TIME_MS // 1000 - 10,
                      import_wh=1_000, export_wh=0, sig=bytes(64))
    tx = sign_message(tx, genesis.chain_id, key)
    if tampered:
        tx = dataclasses.replace(tx, sig=bytes([tx.sig[0] ^ 0x01]) + tx.sig[1:])
    return tx.encode()


def block_of(store: Store, commune: Path, txs: list[bytes]) -> Block:
    """Block 1 on top of genesis, proposed by validator-0."""
    genesis = load_home(commune / "validator-0").genesis
    header = Header(chain_id=genesis.chain_id, height=1, time_ms=BLOCK_TIME_MS, parent=ZERO_ID,
                    tx_root=compute_tx_root(txs), state_hash=store.state_hash(),
                    proposer=genesis.validators[0].key,
                    next_validators=compute_validators_hash([v.key for v in genesis.validators]), version=1)
    return Block(header=header, txs=tuple(txs), last_commit=None, evidence=())


def app_for(store: Store, commune: Path, trust_quorum: bool) -> LedgerApp:
    genesis = load_home(commune / "household-0").genesis
    return LedgerApp(genesis, store, Mempool(), None, lambda: BLOCK_TIME_MS, trust_quorum=trust_quorum)


def test_a_block_with_a_bad_tx_signature_is_applied_when_trusting_the_quorum(store, commune):
    bad = reading(commune, tampered=True)
    block = block_of(store, commune, [bad])
    app = app_for(store, commune, trust_quorum=True)
    result = app.compute_result(block, check_time=True)
    assert result.tx_ids == [compute_id(bad)]
    assert result.state_hash != store.state_hash()       # the reading was applied
    assert app_for(store, commune, trust_quorum=True).validate(block) is True


@pytest.mark.parametrize("trust_quorum, meter, reason", [
    # Checking signatures, a tampered one is refused.
    pytest.param(False, None, "bad_signature", id="bad signature when checking signatures"),
    # Only signatures are trusted: a reading for another meter is refused all the same.
    pytest.param(True, "999999999999", "wrong_meter", id="ledger rules still apply when trusting the quorum"),
])
def test_invalid_block_is_refused(store, commune, trust_quorum, meter, reason):
    block = block_of(store, commune, [reading(commune, tampered=True, meter=meter)])
    app = app_for(store, commune, trust_quorum=trust_quorum)
    assert app.validate(block) is False
    with pytest.raises(InvalidLedgerBlock) as caught:
        app.compute_result(block, check_time=True)
    assert (caught.value.reason, caught.value.index) == (reason, 0)


def test_the_same_block_with_a_good_signature_is_valid_either_way(store, commune):
    good = reading(commune)
    block = block_of(store, commune, [good])
    results = [app_for(store, commune, trust).compute_result(block, check_time=True) for trust in (False, True)]
    assert results[0].state_hash == results[1].state_hash
    assert results[0].writes == results[1].writes
    # A tampered signature does not change what the trusting node computes.
    tampered = block_of(store, commune, [reading(commune, tampered=True)])
    trusted = app_for(store, commune, trust_quorum=True).compute_result(tampered, check_time=True)
    assert trusted.state_hash == results[0].state_hash


@pytest.mark.parametrize("name, check_all, trusts", [
    ("household-0", False, True),
    ("household-0", True, False),
    ("validator-0", False, False),
])
def test_node_trusts_the_quorum_only_as_a_household_by_default(commune, name, check_all, trusts):
    home = load_home(commune / name)
    store = open_store(home)
    try:
        node = Node(home, store, check_all_signatures=check_all)
        assert node.app.trust_quorum is trusts
        block = block_of(store, commune, [reading(commune, tampered=True)])
        assert node.app.validate(block) is trusts
    finally:
        store.close()
