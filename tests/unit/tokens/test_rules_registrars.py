"""RegistrarSetChange: registrars are read from the state and changed by >= 2/3 of the
validators or by a passed ``registrars`` proposal, from the next block on (DESIGN §12)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tests.unit.tokens.commune import REGISTRAR, VALIDATORS, Chain, cosign, expect_invalid, keypair, make_genesis
from tokens import InvalidLedgerBlock, get_account, get_proposals
from tokens import txs as T
from tokens.rules_registrars import RegistrarProposal, parse_registrar_proposal
from wire import compute_id

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


# --- "or by a passed proposal" (DESIGN §12): Propose on the pseudo-parameter registrars ---------

def propose_registrars(chain, by, value) -> bytes:
    text = value if isinstance(value, str) else json.dumps(value)
    return chain.tx(T.Propose, by, param="registrars", value=text, voting_end=chain.time_s + 60)


def pass_proposal(chain, keys, proposal) -> list:
    """Everyone votes yes; the block after the window tallies it; its events."""
    chain.block([chain.tx(T.Vote, k, proposal=compute_id(proposal), choice="yes") for k in keys])
    return [e for e in chain.block(dt_s=120).events if e.kind == "proposal"]


def test_a_passed_proposal_changes_the_registrars_from_the_next_block():
    genesis, keys = make_genesis(3)
    chain = Chain(genesis)
    p = propose_registrars(chain, keys[0], {"add": [CLERK.public.hex()], "remove": [REGISTRAR.public.hex()]})
    chain.block([p])
    # Until the tally the old registrar signs and the proposed one does not.
    expect_invalid(chain, register_by(chain, CLERK), "not_registrar")
    tallies = pass_proposal(chain, keys, p)
    assert len(tallies) == 1 and tallies[0].passed and tallies[0].applied
    assert get_account(chain.kv, CLERK.public)["registrar"]
    assert not get_account(chain.kv, REGISTRAR.public)["registrar"]
    # The removed registrar's signature is refused from the next block; the new one's counts.
    expect_invalid(chain, register_by(chain, REGISTRAR), "not_registrar")
    chain.block([register_by(chain, CLERK)])
    assert get_account(chain.kv, FAMILY.public)["household"] is not None


def test_a_rejected_registrars_proposal_changes_nothing():
    genesis, keys = make_genesis(3)
    chain = Chain(genesis)
    p = propose_registrars(chain, keys[0], {"remove": [REGISTRAR.public.hex()], "add": [CLERK.public.hex()]})
    chain.block([p])
    chain.block([chain.tx(T.Vote, k, proposal=compute_id(p), choice="no") for k in keys])
    tally = [e for e in chain.block(dt_s=120).events if e.kind == "proposal"][0]
    assert not tally.passed and not tally.applied
    chain.block([register_by(chain, REGISTRAR)])
    assert not get_account(chain.kv, CLERK.public)["registrar"]


def test_a_registrars_proposal_no_longer_valid_when_it_passes_fails():
    # Two proposals both adding the clerk: the first applies, the second is checked
    # again at its tally and fails (already a registrar); nothing is written twice.
    genesis, keys = make_genesis(3)
    chain = Chain(genesis)
    p1 = propose_registrars(chain, keys[0], {"add": [CLERK.public.hex()]})
    p2 = propose_registrars(chain, keys[1], {"add": [CLERK.public.hex()]})
    chain.block([p1, p2])
    chain.block([chain.tx(T.Vote, k, proposal=compute_id(p), choice="yes") for k in keys for p in (p1, p2)])
    tallies = [e for e in chain.block(dt_s=120).events if e.kind == "proposal"]
    assert sorted((t.passed, t.applied) for t in tallies) == [(True, False), (True, True)]
    assert [p["status"] for p in get_proposals(chain.kv)].count("failed") == 1


@pytest.mark.parametrize("value, reason", [
    ("not json", "bad_value"),
    ([CLERK.public.hex()], "bad_value"),
    ({"add": ["zz"]}, "bad_value"),
    ({"add": [CLERK.public.hex().upper()]}, "bad_value"),
    ({"add": [CLERK.public.hex()], "other": []}, "bad_value"),
    ({"add": [REGISTRAR.public.hex()]}, "already_registrar"),
    ({"remove": [CLERK.public.hex()]}, "unknown_registrar"),
    ({"remove": [REGISTRAR.public.hex()]}, "bad_registrar_set"),
    ({}, "bad_registrar_set"),
], ids=["not_json", "list", "not_hex", "upper", "unknown_field", "already", "remove_unknown", "remove_last",
        "empty"])
def test_invalid_registrars_proposal(value, reason):
    genesis, keys = make_genesis(2)
    chain = Chain(genesis)
    expect_invalid(chain, propose_registrars(chain, keys[0], value), reason)
    assert get_proposals(chain.kv) == []


def test_registrars_proposal_value_round_trips():
    change = parse_registrar_proposal(RegistrarProposal((CLERK.public,), (REGISTRAR.public,)).to_value())
    assert change == RegistrarProposal((CLERK.public,), (REGISTRAR.public,))
