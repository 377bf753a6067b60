"""Settlement (DESIGN §4): mint and levy, standing gifts, local matching, largest
remainder, per-interval aggregates, idle gaps, the treasury epoch."""

from __future__ import annotations

import pytest

from tests.unit.tokens.commune import Chain, balances, make_genesis
from tokens import get_consumers, get_funds, get_interval_at, get_totals, get_treasury
from tokens import txs as T
from wire import compute_id

DAY = 86_400


class Commune:
    """A chain with baselines set at the start of the first interval after genesis."""

    def __init__(self, n: int = 4, params: dict | None = None) -> None:
        genesis, self.keys = make_genesis(n, params)
        self.chain = Chain(genesis)
        self.interval = genesis.params["settlement_interval_s"]
        self.start = self.chain.time_s       # genesis is at midnight: an interval boundary
        self.seq = {i: 1 for i in range(n)}
        self.index = {i: [0, 0] for i in range(n)}
        self.chain.block([self.chain.reading(k, i, 1, self.start + 1, 0, 0) for i, k in enumerate(self.keys)], dt_s=2)
        self.t = self.start + 1

    def energy(self, exports: dict[int, int], imports: dict[int, int], dt: int = 600) -> None:
        """One block of readings ``dt`` seconds after the last: deltas per household."""
        self.t += dt
        txs = []
        for i in sorted(set(exports) | set(imports)):
            self.seq[i] += 1
            self.index[i][0] += imports.get(i, 0)
            self.index[i][1] += exports.get(i, 0)
            txs.append(self.chain.reading(self.keys[i], i, self.seq[i], self.t, *self.index[i]))
        self.chain.block(txs, at=self.t + 1)

    def settle(self, k: int = 0):
        """Apply an empty block at the moment interval k (from genesis) settles."""
        return self.chain.block(at=self.start + (k + 1) * self.interval + 300)

    def kwh(self, i: int) -> int:
        return balances(self.chain, self.keys[i])[0]


def test_mint_levy_and_matching_when_consumption_exceeds_production():
    c = Commune()
    c.energy(exports={0: 800, 1: 400}, imports={2: 700, 3: 333})
    events = [e for e in c.settle().events if e.kind == "settlement"]
    assert len(events) == 1
    ev = events[0]
    assert (ev.sum_e, ev.sum_i, ev.m, ev.levy, ev.exported) == (1200, 1033, 1033, 120, 167)
    # Step 1: producers get E·(1−levy), the treasury E·levy.
    assert c.kwh(0) == 720 and c.kwh(1) == 360
    assert get_treasury(c.chain.kv)["kwh"] == 120
    # Step 2: consumers are allocated their whole import, since M = ΣI.
    assert c.kwh(2) == -700 and c.kwh(3) == -333
    assert get_totals(c.chain.kv) == {"minted": 1200, "allocated": 1033}


def test_matching_splits_m_by_the_dynamic_key_with_exact_rounding():
    c = Commune()
    c.energy(exports={0: 100}, imports={1: 100, 2: 100, 3: 100})
    c.settle()
    # M = 100 split three ways: 34/33/33, the extra Wh to the smallest address.
    allocated = {i: -c.kwh(i) for i in (1, 2, 3)}
    assert sorted(allocated.values()) == [33, 33, 34]
    smallest = min((1, 2, 3), key=lambda i: c.keys[i].public)
    assert allocated[smallest] == 34
    iv = get_interval_at(c.chain.kv, c.start)
    assert iv["m"] == 100 and iv["exported"] == 0
    assert sum(h["allocated_wh"] for h in iv["households"].values()) == 100


def test_settlement_invariant_minted_minus_allocated_is_exported():
    c = Commune()
    c.energy(exports={0: 999, 1: 1}, imports={2: 10, 3: 7})
    ev = [e for e in c.settle().events if e.kind == "settlement"][0]
    iv = get_interval_at(c.chain.kv, c.start)
    minted = sum(h["minted_wh"] for h in iv["households"].values()) + iv["levy"]
    allocated = sum(h["allocated_wh"] for h in iv["households"].values())
    assert minted - allocated == ev.sum_e - ev.m == 983


def test_interval_settles_exactly_at_end_plus_grace():
    c = Commune()
    c.energy(exports={0: 100}, imports={2: 50})
    assert not c.chain.block(at=c.start + 1800 + 299).events
    assert [e.kind for e in c.chain.block(dt_s=1).events] == ["settlement"]


def test_idle_gap_settles_every_due_interval_in_order():
    c = Commune()
    c.energy(exports={0: 100}, imports={2: 50})           # interval 0, t = 601
    c.energy(exports={0: 200}, imports={2: 50}, dt=1300)  # interval 1, t = 1901
    # Nothing for three hours, then one block: both intervals settle, oldest first.
    result = c.chain.block(at=c.start + 6 * 1800 + 300)
    settled = [(e.start - c.start) // 1800 for e in result.events if e.kind == "settlement"]
    assert settled == [0, 1]
    assert c.kwh(0) == 90 + 180
    # The empty intervals settled too: a reading in interval 5 is now late.
    assert get_interval_at(c.chain.kv, c.start + 5 * 1800)["settled"]


def test_settlement_is_never_refused_even_past_the_credit_limit():
    c = Commune(params={"credit_limit": {"kwh": 100, "hour": 600}})
    c.energy(exports={0: 5000}, imports={2: 5000}, dt=3000)
    c.settle(1)
    assert c.kwh(2) == -5000


def test_standing_gift_moves_its_share_of_the_mint():
    c = Commune()
    chain = c.chain
    chain.block([chain.tx(T.StandingGift, c.keys[0], beneficiary=c.keys[2].public, bp=2500, until=c.start + DAY),
                 chain.tx(T.StandingGift, c.keys[0], beneficiary=c.keys[3].public, bp=1000, until=c.start + DAY)])
    c.energy(exports={0: 1000}, imports={})
    c.settle()
    # 1000 Wh: 100 levy; of the 900 minted, 225 and 90 go to the beneficiaries.
    assert (c.kwh(0), c.kwh(2), c.kwh(3)) == (585, 225, 90)


def test_standing_gift_stops_at_until():
    c = Commune()
    chain = c.chain
    chain.block([chain.tx(T.StandingGift, c.keys[0], beneficiary=c.keys[2].public, bp=5000,
                          until=c.start + 1800)])
    c.energy(exports={0: 1000}, imports={})              # interval 0: before until
    c.energy(exports={0: 1000}, imports={}, dt=1800)     # interval 1: starts at until
    c.settle(1)
    assert c.kwh(2) == 450 and c.kwh(0) == 450 + 900


def test_revoked_gift_no_longer_applies():
    c = Commune()
    chain = c.chain
    gift = chain.tx(T.StandingGift, c.keys[0], beneficiary=c.keys[2].public, bp=5000, until=c.start + DAY)
    chain.block([gift])
    chain.block([chain.tx(T.RevokeGift, c.keys[0], gift=compute_id(gift))])
    c.energy(exports={0: 1000}, imports={})
    c.settle()
    assert c.kwh(2) == 0 and c.kwh(0) == 900


def test_who_used_my_energy_is_a_i_times_e_j_over_sum_e():
    c = Commune()
    c.energy(exports={0: 300, 1: 100}, imports={2: 200, 3: 100})
    c.settle()
    k = c.start // 1800
    used = {row["consumer"]: row for row in get_consumers(c.chain.kv, c.keys[0].public, k)}
    # a_2 = 200, a_3 = 100; producer 0 made 3/4 of ΣE.
    assert used[c.keys[2].public.hex()]["wh"] == 150
    assert used[c.keys[3].public.hex()]["wh"] == 75
    assert get_consumers(c.chain.kv, c.keys[2].public, k) == []


def test_treasury_epoch_splits_by_the_standing_allocation():
    c = Commune()
    c.energy(exports={0: 2_009}, imports={}, dt=1700)
    c.settle()
    assert get_treasury(c.chain.kv)["kwh"] == 200
    result = c.chain.block(at=c.start + DAY)
    epochs = [e for e in result.events if e.kind == "epoch"]
    assert len(epochs) == 1 and epochs[0].distributed == 200
    funds = get_funds(c.chain.kv)
    assert {n: f["kwh"] for n, f in funds.items()} == {
        "pensions": 80, "energy": 20, "roads": 20, "startups": 40, "canteen": 20, "security": 20}
    assert get_treasury(c.chain.kv)["kwh"] == 0
    # The next epoch is a day later: nothing runs in between.
    assert not [e for e in c.chain.block(at=c.start + DAY + 3600).events if e.kind == "epoch"]
    assert [e.kind for e in c.chain.block(at=c.start + 2 * DAY).events].count("epoch") == 1


def test_treasury_epoch_rounding_is_exact():
    c = Commune(params={"levy_bp": 10_000})
    c.energy(exports={0: 7}, imports={}, dt=10)
    c.settle()
    c.chain.block(at=c.start + DAY)
    funds = get_funds(c.chain.kv)
    assert sum(f["kwh"] for f in funds.values()) == 7
    assert funds["pensions"]["kwh"] == 3


@pytest.mark.parametrize("levy_bp", [0, 1, 999, 10_000])
def test_levy_rounding_keeps_each_producer_whole(levy_bp):
    c = Commune(params={"levy_bp": levy_bp})
    c.energy(exports={0: 997, 1: 13}, imports={}, dt=600)
    c.settle()
    assert c.kwh(0) + c.kwh(1) + get_treasury(c.chain.kv)["kwh"] == 1010
    assert get_treasury(c.chain.kv)["kwh"] == 997 * levy_bp // 10_000 + 13 * levy_bp // 10_000
