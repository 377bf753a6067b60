"""Shared by the membership tests (DESIGN §12): a commune with a short recovery delay,
and builders for Deregister, RegisterHousehold, RotateKey, RecoverKey and Transfer."""

from __future__ import annotations

import pytest

from tests.unit.tokens.commune import REGISTRAR, ZERO_SIG, Chain, keypair, make_genesis
from tokens import txs as T
from tokens.kv import decode_value
from tokens.ledger import Ledger
from wire import sign_message

NEW = keypair("new-key")
NEXT = keypair("next-occupant")
DELAY = 3600


@pytest.fixture
def members():
    genesis, keys = make_genesis(4, {"recovery_delay_s": DELAY})
    return Chain(genesis), keys


def deregister(chain, key, signer=REGISTRAR) -> bytes:
    return chain.registrar_tx(T.Deregister, signer, key=key.public, memo="déménagement")


def register(chain, key, i, signer=REGISTRAR) -> bytes:
    return chain.registrar_tx(T.RegisterHousehold, signer, key=key.public, meter=f"0214{i:08d}",
                              prm=f"300000{i:08d}", label="Nouveaux", kva=6, peak_w=0)


def rotate(chain, old, new, new_signer=None) -> bytes:
    tx = T.RotateKey(signer=old.public, nonce=chain.nonce(old), new_key=new.public, new_sig=ZERO_SIG, sig=ZERO_SIG)
    tx = sign_message(tx, chain.genesis.chain_id, new_signer or new, "new_sig")
    return sign_message(tx, chain.genesis.chain_id, old).encode()


def ballot(chain, by, **bps) -> bytes:
    """An AllocationBallot keyed by category name (DESIGN §5)."""
    entries = tuple(T.BallotEntry(category=name, bp=bp) for name, bp in sorted(bps.items()))
    return chain.tx(T.AllocationBallot, by, entries=entries)


def recover(chain, old, new, signer=REGISTRAR) -> bytes:
    return chain.tx(T.RecoverKey, signer, key=old.public, new_key=new.public)


def transfer(chain, by, to, amount=10, cls="kwh") -> bytes:
    return chain.tx(T.Transfer, by, to=to.public, cls=cls, amount=amount, memo="")


def state(chain, key: bytes):
    raw = chain.kv.get(key)
    return None if raw is None else decode_value(raw)


def ledger(chain) -> Ledger:
    return Ledger(chain.kv, chain.genesis, chain.height + 1, (chain.time_s + 1) * 1000)
