"""Mempool limits, dedup and proposer ordering."""

import pytest

from node.service.mempool import Duplicate, Mempool, MempoolFull
from tokens.txs import MeterReading, Transfer, decode_tx
from wire import DecodeError, Keypair, sign_message

CHAIN = b"\x01" * 32
A, B = Keypair(b"\x0a" * 32), Keypair(b"\x0b" * 32)


def transfer(key, nonce, amount=1):
    tx = Transfer(signer=key.public, nonce=nonce, to=b"\x02" * 32, cls="kwh", amount=amount, memo="", sig=b"")
    return sign_message(tx, CHAIN, key).encode()


def reading(key, seq):
    tx = MeterReading(signer=key.public, meter="021400000001", seq=seq, t=1000 + seq,
                      import_wh=seq, export_wh=0, sig=b"")
    return sign_message(tx, CHAIN, key).encode()


def test_add_then_reap_orders_each_signers_txs_by_nonce():
    pool = Mempool()
    for data in (transfer(A, 3), transfer(B, 1), transfer(A, 1), reading(B, 9), transfer(A, 2)):
        pool.add(data, decode_tx)
    order = [(e.signer, e.order_key) for e in pool.reap(10)]
    assert order == [(A.public, 1), (A.public, 2), (A.public, 3), (B.public, 1), (B.public, 9)]


def test_reap_respects_its_limit():
    pool = Mempool()
    for n in range(1, 6):
        pool.add(transfer(A, n), decode_tx)
    assert [e.order_key for e in pool.reap(3)] == [1, 2, 3]


def test_invalid_duplicate_is_refused():
    pool = Mempool()
    data = transfer(A, 1)
    pool.add(data, decode_tx)
    with pytest.raises(Duplicate):
        pool.add(data, decode_tx)
    assert len(pool) == 1


def test_invalid_when_full_by_count_or_bytes():
    pool = Mempool(max_txs=2)
    pool.add(transfer(A, 1), decode_tx)
    pool.add(transfer(A, 2), decode_tx)
    with pytest.raises(MempoolFull):
        pool.add(transfer(A, 3), decode_tx)
    small = Mempool(max_bytes=200)
    small.add(transfer(A, 1), decode_tx)
    with pytest.raises(MempoolFull):
        small.add(transfer(A, 2), decode_tx)


def test_invalid_tx_is_not_admitted_and_accounting_is_unchanged():
    pool = Mempool()
    with pytest.raises(DecodeError):
        pool.add(b"\x93garbage", decode_tx)
    assert len(pool) == 0 and pool.size_bytes == 0


def test_remove_frees_bytes():
    pool = Mempool()
    entry = pool.add(transfer(A, 1), decode_tx)
    assert pool.size_bytes == len(entry.data)
    assert pool.remove([entry.id, b"\x00" * 32]) == [entry]
    assert len(pool) == 0 and pool.size_bytes == 0
