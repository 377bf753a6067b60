"""Gifts to public accounts on a chain that seals (docs/privacy.md "Public aggregates"):
a standing gift to a category fund or an association moved that account, public, by
one producer's share of each interval's mint, which draws the producer's curve. The
shares wait in the gift pool (``gpool``, validators only) until the treasury epoch finds
``min_aggregate`` givers to a beneficiary; an association struck off meanwhile gets
nothing, its share goes to the treasury."""

from __future__ import annotations

from tests.unit.tokens.commune import GENESIS_TIME, REGISTRAR, ZERO_SIG
from tests.unit.tokens.test_properties import check_conservation, check_settled_intervals
from tests.unit.tokens.test_rules_assoc import CLUB
from tests.unit.tokens.test_sealing import SealChain
from tokens import get_account, get_rescanned_state_hash
from tokens import layout as L
from tokens import txs as T
from tokens.kv import decode_value
from tokens.rules_assoc import compute_fund_address
from tokens.sealing import is_hidden_aggregate
from tokens.settlement import EpochRun
from tokens.visibility import get_entry_reader

HALF = 1800
DAY = 86_400
FUND = "energy"


def commune():
    chain = SealChain(6, params={"min_aggregate": 2})
    chain.block([chain.set_data_key(k) for k in chain.households]
                + [chain.tx(T.RegisterAssociation, REGISTRAR, key=CLUB.public, name="Les Amis du Four")])
    return chain


def gift(chain: SealChain, i: int, to: bytes, bp: int) -> bytes:
    key = chain.households[i]
    return chain.seal(T.StandingGift(signer=key.public, nonce=chain.nonce(key), beneficiary=to, bp=bp,
                                     until=GENESIS_TIME + 10 * DAY, sig=ZERO_SIG), key)


def produce(chain: SealChain, t0: int, seq: int, base: int = 0) -> None:
    """Producers 0 and 1 export 400 Wh each in the interval at ``t0`` (their meters'
    export index at ``base`` before), which settles."""
    reading = chain.sealed_reading
    chain.block([reading(0, seq, t0, 0, base), reading(1, seq, t0, 0, base)], at=t0 + 1)
    chain.block([reading(0, seq + 1, t0 + 600, 0, base + 400), reading(1, seq + 1, t0 + 600, 0, base + 400)],
                at=t0 + 601)
    chain.block(at=t0 + HALF + 301)


def fund_record(chain: SealChain) -> list:
    return decode_value(chain.kv.get(L.key_fund(FUND)))


def check(chain: SealChain) -> None:
    check_conservation(chain.kv)
    check_settled_intervals(chain.kv)
    assert chain.state_hash() == get_rescanned_state_hash(chain.kv, chain.keys)


def test_gifts_to_public_accounts_wait_for_enough_givers():
    chain = commune()
    fund_addr = compute_fund_address(FUND)
    # Both producers give half to the fund; producer 0 alone gives a fifth to the club.
    chain.block([gift(chain, 0, fund_addr, 5000), gift(chain, 0, CLUB.public, 2000), gift(chain, 1, fund_addr, 5000)])
    before = fund_record(chain)
    produce(chain, GENESIS_TIME + HALF, 1)
    # Each producer keeps 360 − its gifts; neither public account moved.
    assert [get_account(chain.kv, chain.households[i].public)["balances"]["kwh"] for i in (0, 1)] == [108, 180]
    assert fund_record(chain) == before and get_account(chain.kv, CLUB.public)["balances"]["kwh"] == 0
    pool = decode_value(chain.kv.get(L.GIFT_POOL))
    rows = {row[L.GP_BENEFICIARY]: row for row in pool}
    assert rows[fund_addr][L.GP_AMOUNT] == 360 and len(rows[fund_addr][L.GP_GIVERS]) == 2
    assert rows[CLUB.public][L.GP_AMOUNT] == 72 and rows[CLUB.public][L.GP_GIVERS] == [chain.households[0].public]
    assert is_hidden_aggregate(L.GIFT_POOL, pool) and get_entry_reader(chain.kv, L.GIFT_POOL) is None
    check(chain)

    # The treasury epoch: the fund receives its two givers' sum (and its share of the
    # treasury's split), the club's one giver's share waits.
    result = chain.block(at=GENESIS_TIME + DAY + 1)
    [run] = [e for e in result.events if isinstance(e, EpochRun)]
    split = dict(run.shares).get(FUND, 0)
    assert fund_record(chain)[0] == before[0] + 360 + split
    assert fund_record(chain)[1] == before[1] + 360 + split
    assert get_account(chain.kv, CLUB.public)["balances"]["kwh"] == 0
    assert decode_value(chain.kv.get(L.GIFT_POOL)) == [rows[CLUB.public]]
    check(chain)

    # Producer 1 gives to the club too: two givers now, but the club is struck off
    # before the epoch, so the treasury takes the share, split among the funds.
    chain.block([gift(chain, 1, CLUB.public, 2000)])
    produce(chain, GENESIS_TIME + DAY + HALF, 3, 400)
    assert decode_value(chain.kv.get(L.GIFT_POOL))[0][L.GP_AMOUNT] == 72 + 2 * 72
    chain.block([chain.tx(T.RemoveAssociation, REGISTRAR, key=CLUB.public, memo="dissoute")])
    treasury_before = decode_value(chain.kv.get(L.TREASURY))[0]
    result = chain.block(at=GENESIS_TIME + 2 * DAY + 1)
    [run] = [e for e in result.events if isinstance(e, EpochRun)]
    assert run.distributed >= treasury_before + 216
    assert get_account(chain.kv, CLUB.public)["balances"]["kwh"] == 0 and chain.kv.get(L.GIFT_POOL) is None
    check(chain)
    assert chain.replay(chain.keys) == chain.state_hash()
