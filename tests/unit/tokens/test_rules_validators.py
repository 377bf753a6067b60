"""ValidatorSetChange (≥ ⌈2n/3⌉ co-signers, effective at h+2) and double-sign evidence."""

from __future__ import annotations

import dataclasses

import pytest

from tests.unit.tokens.commune import VALIDATORS, Chain, cosign, expect_invalid, keypair, make_genesis
from tokens import InvalidLedgerBlock, apply_block, get_validator_set, get_validators
from tokens.txs import ValidatorSetChange, ValidatorSig, decode_tx

NEWCOMER = keypair("validator", 9)


@pytest.fixture
def chain() -> Chain:
    return Chain(make_genesis(2)[0])


def vsc(chain, signers, nonce=1, add=(NEWCOMER,), remove=(), addrs=None) -> bytes:
    tx = ValidatorSetChange(nonce=nonce, add=tuple(k.public for k in add),
                            add_addrs=tuple(addrs if addrs is not None else ["/ip4/127.0.0.1/tcp/27009"] * len(add)),
                            remove=tuple(k.public for k in remove), sigs=())
    return cosign(chain.genesis, tx, signers)


def keys_of(validators) -> list[bytes]:
    return [v.public for v in validators]


def test_change_takes_effect_at_h_plus_2(chain):
    chain.block([vsc(chain, VALIDATORS[:3])])
    h = chain.height
    assert get_validator_set(chain.kv, h) == keys_of(VALIDATORS)
    assert get_validator_set(chain.kv, h + 1) == keys_of(VALIDATORS)
    assert get_validator_set(chain.kv, h + 2) == keys_of(VALIDATORS) + [NEWCOMER.public]
    scheduled = [v for v in get_validators(chain.kv) if not v["active"]]
    assert [v["key"] for v in scheduled] == [NEWCOMER.public.hex()] and scheduled[0]["scheduled"]


def test_changes_compose_and_removal_works(chain):
    chain.block([vsc(chain, VALIDATORS[:3])])
    chain.block([vsc(chain, VALIDATORS[:3], nonce=2, add=(), remove=(VALIDATORS[3],))])
    assert get_validator_set(chain.kv, chain.height + 2) == keys_of(VALIDATORS[:3]) + [NEWCOMER.public]


def test_new_set_must_sign_after_activation(chain):
    chain.block([vsc(chain, VALIDATORS[:3], add=(), remove=(VALIDATORS[3],))])
    chain.block()
    chain.block()
    # Now n = 3: ⌈2·3/3⌉ = 2 co-signers suffice, and the removed validator is a stranger.
    expect_invalid(chain, vsc(chain, [VALIDATORS[0], VALIDATORS[3]], nonce=2), "unknown_signer")
    chain.block([vsc(chain, VALIDATORS[:2], nonce=2)])


@pytest.mark.parametrize("signers, change, reason", [
    (VALIDATORS[:2], {}, "insufficient_signatures"),
    ([VALIDATORS[0], VALIDATORS[0], VALIDATORS[1]], {}, "insufficient_signatures"),
    (VALIDATORS[:2] + [NEWCOMER], {}, "unknown_signer"),
    (VALIDATORS[:3], {"add": (VALIDATORS[1],)}, "already_validator"),
    (VALIDATORS[:3], {"add": (), "remove": (NEWCOMER,)}, "unknown_validator"),
    (VALIDATORS[:3], {"add": ()}, "bad_validator_set"),
    (VALIDATORS[:3], {"add": (), "remove": VALIDATORS}, "bad_validator_set"),
    (VALIDATORS[:3], {"addrs": []}, "bad_validator_set"),
], ids=["too_few_cosigners", "counting_one_validator_twice", "cosigned_by_a_stranger", "adds_a_validator",
        "removes_a_stranger", "empty", "removes_everyone", "missing_address"])
def test_invalid_change(chain, signers, change, reason):
    expect_invalid(chain, vsc(chain, signers, **change), reason)


def test_invalid_change_with_a_forged_cosignature(chain):
    tx = decode_tx(vsc(chain, VALIDATORS[:3]))
    forged = dataclasses.replace(tx, sigs=tx.sigs[:2] + (ValidatorSig(validator=VALIDATORS[2].public,
                                                                        sig=bytes(64)),))
    expect_invalid(chain, forged.encode(), "bad_signature")


def test_invalid_change_replayed(chain):
    data = vsc(chain, VALIDATORS[:3])
    chain.block([data])
    expect_invalid(chain, vsc(chain, VALIDATORS[:3], add=(keypair("validator", 8),)), "stale_nonce")


def test_equivocation_is_recorded_with_heights(chain):
    chain.block(equivocators=[VALIDATORS[2].public])
    chain.block()
    result = chain.block(equivocators=[VALIDATORS[2].public, VALIDATORS[2].public])
    assert [e.kind for e in result.events] == ["equivocation"]
    flags = {v["key"]: v for v in get_validators(chain.kv)}
    entry = flags[VALIDATORS[2].public.hex()]
    assert entry["equivocating"] and entry["equivocation_heights"] == {"first": 1, "last": 3, "count": 2}
    assert not flags[VALIDATORS[0].public.hex()]["equivocating"]


def test_invalid_block_with_evidence_against_a_stranger(chain):
    before = chain.kv.items()
    with pytest.raises(InvalidLedgerBlock) as info:
        apply_block(chain.kv, chain.genesis, chain.ctx(), [], equivocators=[NEWCOMER.public])
    assert info.value.reason == "unknown_equivocator"
    assert chain.kv.items() == before
