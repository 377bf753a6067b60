"""node/service/roles.py: the node's role and peers follow the validator set in state
(DESIGN §4: a ValidatorSetChange in block h takes effect at h+2)."""

from __future__ import annotations

import pytest

from node.net import peer_id_of_key
from node.service.roles import compute_role, get_identity_seed, get_validator_addrs, is_validator_soon
from tests.unit.tokens.commune import VALIDATORS, Chain, keypair, make_genesis
from tests.unit.tokens.test_rules_validators import NEWCOMER, vsc

HOUSEHOLD = keypair("household", 0)
EXPLICIT = "/ip4/127.0.0.1/tcp/27100/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"


@pytest.fixture
def chain() -> Chain:
    return Chain(make_genesis(2)[0])


def test_genesis_validator_is_a_validator_and_a_household_is_not(chain):
    assert is_validator_soon(VALIDATORS[0].public, chain.kv, chain.height)
    assert not is_validator_soon(HOUSEHOLD.public, chain.kv, chain.height)


def test_added_key_is_a_validator_as_soon_as_its_change_is_committed(chain):
    assert not is_validator_soon(NEWCOMER.public, chain.kv, chain.height)
    chain.block([vsc(chain, VALIDATORS[:3])])
    # It signs at h+2: from block h on, the node prepares (checks signatures, relays txs).
    assert is_validator_soon(NEWCOMER.public, chain.kv, chain.height)


def test_removed_key_stays_a_validator_until_its_last_height(chain):
    chain.block([vsc(chain, VALIDATORS[:3], remove=(VALIDATORS[3],), add=())])
    h = chain.height
    assert is_validator_soon(VALIDATORS[3].public, chain.kv, h)        # still signs h+1
    chain.block()
    assert not is_validator_soon(VALIDATORS[3].public, chain.kv, h + 1)


def test_peers_follow_the_added_addresses_with_the_key_derived_peer_id(chain):
    before = get_validator_addrs(chain.kv, VALIDATORS[0].public)
    assert len(before) == 3 and not any(a.startswith("/ip4/127.0.0.1/tcp/27000/") for a in before)
    chain.block([vsc(chain, VALIDATORS[:3])])
    after = get_validator_addrs(chain.kv, VALIDATORS[0].public)
    assert f"/ip4/127.0.0.1/tcp/27009/p2p/{peer_id_of_key(NEWCOMER.public)}" in after
    assert compute_role(VALIDATORS[0].public, chain.kv, chain.height).core_peers == {
        a.rsplit("/p2p/", 1)[1] for a in after}


def test_peers_keep_an_explicit_peer_id(chain):
    chain.block([vsc(chain, VALIDATORS[:3], addrs=[EXPLICIT])])
    assert EXPLICIT in get_validator_addrs(chain.kv, VALIDATORS[0].public)


@pytest.mark.parametrize("addr", ["not a multiaddr", "/ip4/999.1.1.1/tcp/1"])
def test_invalid_added_address_is_left_out_of_the_peers(chain, addr):
    chain.block([vsc(chain, VALIDATORS[:3], addrs=[addr])])
    assert len(get_validator_addrs(chain.kv, VALIDATORS[0].public)) == 4 - 1


def test_identity_seed_for_validators_only(chain):
    assert get_identity_seed(VALIDATORS[1], chain.kv, chain.height) == VALIDATORS[1].seed
    assert get_identity_seed(HOUSEHOLD, chain.kv, chain.height) is None
    chain.block([vsc(chain, VALIDATORS[:3])])
    assert get_identity_seed(NEWCOMER, chain.kv, chain.height) == NEWCOMER.seed


def test_identity_seed_not_used_when_the_address_names_a_peer_id(chain):
    chain.block([vsc(chain, VALIDATORS[:3], addrs=[EXPLICIT])])
    assert get_identity_seed(NEWCOMER, chain.kv, chain.height) is None
