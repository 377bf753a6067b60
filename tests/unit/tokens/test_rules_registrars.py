"""RegistrarSetChange: registrars are read from the state and changed by >= 2/3 of the
validators, from the next block on (DESIGN §12)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.unit.tokens.commune import REGISTRAR, VALIDATORS, Chain, cosign, expect_invalid, keypair, make_genesis
from tokens import InvalidLedgerBlock, get_account
from tokens import txs as T

CLERK = keypair("clerk")
FAMILY = keypair("family")


@pytest.fixture
def chain() -> Chain:
    return Chain(make_genesis(2)[0])


def rsc(chain, signers=VALIDATORS[:3], nonce=1, add=(CLERK,), remove=()) -> bytes:
    tx = T.RegistrarSetChange(nonce=nonce, add=tuple(k.public for k in add), remove=tuple(k.public for k in remove),
                              sigs=())
    return cosign(chain.genesis, tx, signers)


def register_by(chain, signer, key=FAMILY, meter="021499999999", prm="30000099999999") -> bytes:
    return chain.tx(T.RegisterHousehold, signer, key=key.public, meter=meter, prm=prm, label="x", kva=6, peak_w=0)


def test_added_registrar_signs_from_the_next_block(chain):
    change = rsc(chain)
    with pytest.raises(InvalidLedgerBlock) as info:
        chain.block([change, register_by(chain, CLERK)])
    assert info.value.reason == "not_registrar" and info.value.index == 1
    chain.block([change])
    assert get_account(chain.kv, CLERK.public)["registrar"]
    chain.block([register_by(chain, CLERK)])
    assert get_account(chain.kv, FAMILY.public)["household"] is not None


def test_removed_registrar_signs_until_the_end_of_its_block(chain):
    # A tx after the removal in the same block is still valid: the change takes effect
    # at the next height, and a block is judged against the set it began with.
    chain.block([rsc(chain)])
    chain.block([rsc(chain, nonce=2, add=(), remove=(REGISTRAR,)), register_by(chain, REGISTRAR)])
    assert not get_account(chain.kv, REGISTRAR.public)["registrar"]
    expect_invalid(chain, register_by(chain, REGISTRAR, keypair("late"), "021488888888", "30000088888888"),
                   "not_registrar")
    chain.block([register_by(chain, CLERK, keypair("late"), "021488888888", "30000088888888")])


@pytest.mark.parametrize("signers, change, reason", [
    (VALIDATORS[:2], {}, "insufficient_signatures"),
    (VALIDATORS[:2] + [keypair("stranger")], {}, "unknown_signer"),
    (VALIDATORS[:3], {"add": (REGISTRAR,)}, "already_registrar"),
    (VALIDATORS[:3], {"add": (), "remove": (CLERK,)}, "unknown_registrar"),
    (VALIDATORS[:3], {"add": (), "remove": (REGISTRAR,)}, "bad_registrar_set"),
    (VALIDATORS[:3], {"add": ()}, "bad_registrar_set"),
    (VALIDATORS[:3], {"add": (CLERK, CLERK)}, "bad_registrar_set"),
], ids=["two_of_four", "stranger", "already", "remove_unknown", "remove_last", "empty", "twice"])
def test_invalid_registrar_set_change(chain, signers, change, reason):
    expect_invalid(chain, rsc(chain, signers, **change), reason)


def test_invalid_registrar_set_change_replayed(chain):
    chain.block([rsc(chain)])
    expect_invalid(chain, rsc(chain, add=(FAMILY,)), "stale_nonce")


def test_invalid_registrar_set_change_forged(chain):
    tx = T.decode_tx(rsc(chain))
    forged = dataclasses.replace(tx, add=(FAMILY.public,))
    expect_invalid(chain, forged.encode(), "bad_signature")


def test_invalid_transfer_from_a_registrar_account(chain):
    # A registrar's account is no household: it has no credit line to spend from.
    chain.block([rsc(chain)])
    expect_invalid(chain, chain.tx(T.Transfer, CLERK, to=keypair("household", 0).public, cls="kwh", amount=1,
                                   memo=""), "unknown_signer")
