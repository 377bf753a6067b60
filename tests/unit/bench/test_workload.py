"""The bench workload is deterministic and obeys the ledger's rules by construction."""

from __future__ import annotations

import nacl.bindings

from node.bench.workload import (
    FIRST_READING, ROUND_S, compute_seed, make_workload,
)
from tokens.txs import MeterReading, Transfer, decode_tx
from wire import Keypair, verify_message

GRACE_S = 300       # DEFAULT_PARAMS settlement_grace_s
AHEAD_S = 60        # DESIGN §4: t <= block time + 60 s


def test_same_seed_same_bytes():
    a, b = make_workload(300, households=50, block_max=100), make_workload(300, households=50, block_max=100)
    assert [s.raw for s in a.txs] == [s.raw for s in b.txs]
    assert a.genesis.chain_id == b.genesis.chain_id
    assert Keypair(compute_seed("household", 0)).public == a.genesis.households[0].key


def test_every_signature_verifies_with_raw_pynacl_and_wire():
    w = make_workload(200, households=40, block_max=64)
    for s in w.txs:
        nacl.bindings.crypto_sign_open(s.sig + s.data, s.public)  # raises on a bad signature
        assert verify_message(decode_tx(s.raw), w.genesis.chain_id)


def test_blocks_cover_every_tx_in_order_within_the_cap():
    w = make_workload(1050, households=100, block_max=400)
    assert [len(b.txs) for b in w.blocks] == [400, 400, 250]
    assert [b.height for b in w.blocks] == [1, 2, 3]
    assert [raw for b in w.blocks for raw in b.txs] == [s.raw for s in w.txs]


def test_mix_is_half_readings_half_transfers():
    w = make_workload(400, households=100, block_max=400)
    kinds = [type(decode_tx(s.raw)) for s in w.txs]
    assert kinds.count(MeterReading) == kinds.count(Transfer) == 200


def test_block_times_keep_every_reading_valid():
    # The bench's geometry scaled down 10x: rounds of 2 txs per household, blocks of 2.5 rounds.
    w = make_workload(2000, households=100, block_max=500)
    assert len(w.blocks) == 4
    parent = 0
    for block in w.blocks:
        assert block.time_ms > parent
        parent = block.time_ms
        ts = [tx.t for tx in map(decode_tx, block.txs) if isinstance(tx, MeterReading)]
        assert max(ts) <= block.time_ms // 1000 + AHEAD_S
        # No reading in the block falls in an interval the block's time settles.
        assert block.time_ms // 1000 < min(ts) + GRACE_S


def test_readings_rise_and_stay_under_the_physics_cap():
    w = make_workload(200 * 2 * 3, households=200, block_max=5000)
    last: dict[bytes, MeterReading] = {}
    spec = {h.key: h for h in w.genesis.households}
    for tx in map(decode_tx, (s.raw for s in w.txs)):
        if not isinstance(tx, MeterReading):
            continue
        prev = last.get(tx.signer)
        if prev is not None:
            elapsed = tx.t - prev.t
            assert tx.seq > prev.seq and elapsed == ROUND_S
            assert 0 <= (tx.import_wh - prev.import_wh) * 3600 <= spec[tx.signer].kva * 1000 * elapsed
            assert 0 <= (tx.export_wh - prev.export_wh) * 3600 <= spec[tx.signer].peak_w * elapsed
        else:
            assert tx.t == FIRST_READING
        last[tx.signer] = tx
    assert len(last) == 200
