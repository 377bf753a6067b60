"""Protocol upgrades (tokens/upgrades.py, DESIGN §12): ScheduleUpgrade co-signed by >= 2/3
of the validators, headers carrying the scheduled version, rules chosen by version."""

from __future__ import annotations

import dataclasses

import pytest

from tests.unit.tokens.commune import VALIDATORS, Chain, cosign, expect_invalid, make_genesis
from tokens import BlockContext, InvalidLedgerBlock, apply_block
from tokens import txs as T
from tokens.queries import get_upgrade_view
from tokens.upgrades import (
    GENESIS_VERSION, PROTOCOL_VERSION, check_fork_id, compute_fork_id, compute_version_at, get_protocol_version,
    get_rule,
    get_upgrades,
)


@pytest.fixture
def chain_keys():
    genesis, keys = make_genesis(4)
    return Chain(genesis), keys


def upgrade(chain, version=2, height=5, nonce=1, signers=VALIDATORS[:3]) -> bytes:
    return cosign(chain.genesis, T.ScheduleUpgrade(nonce=nonce, version=version, height=height, sigs=()), signers)


def test_scheduled_version_runs_from_its_height(chain_keys):
    chain, _ = chain_keys
    chain.block([upgrade(chain, height=4)])
    assert get_upgrades(chain.kv) == [(2, 4)]
    assert [get_protocol_version(chain.kv, h) for h in (1, 3, 4, 9)] == [1, 1, 2, 2]
    for _ in range(4):
        chain.block()
    assert chain.height == 5


def test_invalid_upgrade_signed_by_fewer_than_two_thirds(chain_keys):
    chain, _ = chain_keys
    expect_invalid(chain, upgrade(chain, signers=VALIDATORS[:2]), "insufficient_signatures")


def test_invalid_upgrade_to_a_version_not_above_the_last(chain_keys):
    chain, _ = chain_keys
    expect_invalid(chain, upgrade(chain, version=1), "stale_version")
    chain.block([upgrade(chain, version=3, height=6)])
    expect_invalid(chain, upgrade(chain, version=2, height=9, nonce=2), "stale_version")


def test_invalid_upgrade_too_soon_or_before_the_last(chain_keys):
    chain, _ = chain_keys
    expect_invalid(chain, upgrade(chain, height=2), "bad_upgrade_height")     # block 1: 2 ahead at least
    chain.block([upgrade(chain, height=8)])
    expect_invalid(chain, upgrade(chain, version=3, height=8, nonce=2), "bad_upgrade_height")


def test_invalid_upgrade_replayed_nonce(chain_keys):
    chain, _ = chain_keys
    tx = upgrade(chain, height=8)
    chain.block([tx])
    expect_invalid(chain, upgrade(chain, version=3, height=9, nonce=1), "stale_nonce")


def test_invalid_header_version_other_than_the_scheduled_one(chain_keys):
    chain, _ = chain_keys
    chain.block([upgrade(chain, height=3)])
    ctx = chain.ctx()
    assert ctx.height == 2 and ctx.version == 1
    with pytest.raises(InvalidLedgerBlock, match="header version 2") as info:
        apply_block(chain.kv, chain.genesis, dataclasses.replace(ctx, version=2), [])
    assert info.value.reason == "bad_version"
    chain.block()
    with pytest.raises(InvalidLedgerBlock) as info:
        apply_block(chain.kv, chain.genesis, dataclasses.replace(chain.ctx(), version=1), [])
    assert info.value.reason == "bad_version"


def test_invalid_block_of_a_version_this_software_lacks(chain_keys):
    chain, _ = chain_keys
    chain.block([upgrade(chain, version=PROTOCOL_VERSION + 1, height=3)])
    chain.block()
    ctx = BlockContext(3, (chain.time_s + 1) * 1000, VALIDATORS[0].public, PROTOCOL_VERSION + 1)
    with pytest.raises(InvalidLedgerBlock) as info:
        apply_block(chain.kv, chain.genesis, ctx, [])
    assert info.value.reason == "unsupported_version"


def test_version_2_bounds_a_reading_to_5_s_past_block_time(chain_keys):
    chain, keys = chain_keys
    t0 = chain.time_s
    chain.block([chain.reading(keys[i], i, 1, t0 + 5, 1000, 1000) for i in range(2)] + [upgrade(chain, height=4)],
                dt_s=10)
    # Version 1 (height 2): 30 s past block time is taken.
    chain.block([chain.reading(keys[0], 0, 2, chain.time_s + 1 + 30, 1001, 1001)])
    chain.block(dt_s=60)
    assert get_protocol_version(chain.kv, chain.height + 1) == 2
    # Version 2 (height 4): the same 30 s is refused, 5 s is taken.
    expect_invalid(chain, chain.reading(keys[1], 1, 2, chain.time_s + 1 + 30, 1001, 1001), "future_reading")
    chain.block([chain.reading(keys[1], 1, 2, chain.time_s + 1 + 5, 1001, 1001)])


def test_rule_table_holds_from_its_version_on():
    assert get_rule("max_reading_ahead_s", 1) == 60
    assert get_rule("max_reading_ahead_s", 2) == 5
    assert get_rule("max_reading_ahead_s", 7) == 5
    assert compute_version_at([(2, 10), (3, 20)], 9) == GENESIS_VERSION
    assert compute_version_at([(2, 10), (3, 20)], 20) == 3


def test_fork_id_changes_when_an_upgrade_is_passed_and_announces_the_next():
    chain_id = b"\x01" * 32
    before, nxt = compute_fork_id(chain_id, [(2, 10)], 9)
    after, none = compute_fork_id(chain_id, [(2, 10)], 10)
    assert (nxt, none) == (10, 0) and before != after
    assert before == compute_fork_id(chain_id, [], 9)[0]
    assert compute_fork_id(chain_id, [(2, 11)], 12)[0] != after     # another height: another fork


def test_upgrade_view_gives_the_cosigning_basis(chain_keys):
    chain, _ = chain_keys
    chain.block([upgrade(chain, version=PROTOCOL_VERSION + 1, height=6)])
    view = get_upgrade_view(chain.kv, chain.height, chain.genesis.chain_id)
    assert view["next_nonce"] == 2 and view["quorum"] == 3 and len(view["validators"]) == 4
    assert view["scheduled"] == [{"version": PROTOCOL_VERSION + 1, "height": 6, "supported": False}]
    assert view["fork_id"]["next"] == 6 and view["version"] == 1


def test_fork_id_check_accepts_peers_on_this_chain_behind_level_or_ahead():
    chain_id = b"\x01" * 32
    ups = [(2, 10), (3, 20)]
    mine = compute_fork_id(chain_id, ups, 15)
    assert check_fork_id(chain_id, ups, 15, *mine) is None
    behind = compute_fork_id(chain_id, ups, 5)                  # (genesis hash, next 10)
    assert check_fork_id(chain_id, ups, 15, *behind) is None
    assert check_fork_id(chain_id, ups, 15, behind[0], 0) is None   # has not seen the schedule yet
    ahead = compute_fork_id(chain_id, ups, 25)
    assert check_fork_id(chain_id, ups, 15, *ahead) is None
    assert check_fork_id(chain_id, ups, 15, b"\xee" * 4, 0) is None  # unknown: we may be the one behind


def test_invalid_fork_id_of_a_peer_with_another_schedule():
    chain_id = b"\x01" * 32
    ups = [(2, 10)]
    genesis_hash = compute_fork_id(chain_id, [], 0)[0]
    # Behind us, but its next upgrade is not the one this chain passed at 10.
    assert "height 12" in check_fork_id(chain_id, ups, 15, genesis_hash, 12)
    # Level with us, announcing an upgrade at a height we passed without one.
    level = compute_fork_id(chain_id, ups, 15)[0]
    assert "passed without one" in check_fork_id(chain_id, ups, 15, level, 13)
