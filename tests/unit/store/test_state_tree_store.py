"""The state tree in LevelDB (DESIGN §8, §12): the same ledger blocks give the same
roots, node entries and proofs in a MemoryKV and in the store, and the store's audit
finds a missing or stray tree node."""

from __future__ import annotations

import pytest

from node.store import Store, StoreCorrupt
from node.store import layout as SL
from tests.unit.tokens.commune import Chain, make_genesis
from tokens import apply_block, genesis_writes, get_state_hash
from tokens import txs as T
from tokens.layout import TREE, key_account
from tokens.statetree import compute_proof
from wire.merkle import encode_proof, verify_proof


def blocks_of(chain: Chain, keys) -> list[tuple[object, list[bytes]]]:
    """Readings and transfers over a settling day, applied to ``chain``; (ctx, txs) per block."""
    out, t0 = [], chain.time_s
    for step in range(6):
        t = t0 + 1 + step * 900
        txs = [chain.reading(keys[0], 0, step + 1, t, 0, step * 300),
               chain.reading(keys[2], 2, step + 1, t, step * 200, 0),
               chain.tx(T.Transfer, keys[3], to=keys[1].public, cls="hour", amount=5, memo="")]
        ctx = chain.ctx(t + 1 - chain.time_s)
        chain.block(txs, at=t + 1)
        out.append((ctx, txs))
    return out


@pytest.fixture
def twins(tmp_path):
    genesis, keys = make_genesis(4)
    chain = Chain(genesis)
    blocks = blocks_of(chain, keys)
    with Store.open(tmp_path / "db", chain_id=genesis.chain_id) as store:
        writes = genesis_writes(genesis)
        store.init_genesis(genesis.chain_id, writes, get_state_hash(Chain(genesis).kv))
        for ctx, txs in blocks:
            result = apply_block(store.state, genesis, ctx, txs)
            store.commit_block(ctx.height, ctx.height.to_bytes(32, "big"), b"block", b"commit",
                               result.writes, result.state_hash)
        yield chain, store, keys


def test_memory_and_leveldb_hold_the_same_tree(twins):
    chain, store, keys = twins
    assert store.state_hash() == chain.state_hash() == chain.full_hash()
    assert dict(store.state.iter_prefix(b"")) == dict(chain.kv.items())
    assert store.verify_state_hash() == chain.state_hash()
    root = store.state_hash()
    for key in [key_account(k.public) for k in keys] + [b"meta/height", b"acct/nobody"]:
        in_memory, in_store = compute_proof(chain.kv, root, key), compute_proof(store.state, root, key)
        assert in_memory == in_store
        assert verify_proof(root, key, in_store[0], encode_proof(in_store[1]))


def test_invalid_store_missing_a_tree_node_fails_the_audit(twins):
    _, store, _ = twins
    _, proof = compute_proof(store.state, store.state_hash(), b"meta/height")
    store._db.delete(SL.STATE + TREE + proof.siblings[-1])     # a node of the current tree
    with pytest.raises(StoreCorrupt, match="state tree"):
        store.verify_state_tree(store.state_hash())


def test_invalid_store_whose_tree_disagrees_with_its_entries_fails_the_audit(twins):
    _, store, _ = twins
    store._db.put(SL.STATE + b"acct/stray", b"\x90")
    with pytest.raises(StoreCorrupt):
        store.verify_state_hash()
