"""Reconciliation with official load curves (issue 18, docs/reconciliation.md)."""

from __future__ import annotations

import pytest

from tests.unit.tokens.commune import GENESIS_TIME, REGISTRAR, ZERO_SIG, Chain, expect_invalid, keypair, make_genesis
from tests.unit.tokens.test_properties import check_conservation, check_settled_intervals
from tokens import get_account, get_treasury
from tokens import layout as L
from tokens import txs as T
from tokens.kv import decode_value
from wire import sign_message

HALF = 1800
PARAMS = {"levy_bp": 1000}


def prm(i: int) -> str:
    return f"300000{i:08d}"


def kwh(chain: Chain, key) -> int:
    return get_account(chain.kv, key.public)["balances"]["kwh"]


def consent(chain: Chain, i: int, granted: bool = True) -> bytes:
    return chain.tx(T.Consent, REGISTRAR, prm=prm(i), granted=granted, memo="")


def reconcile(chain: Chain, i: int, start: int, export, imp, signer=REGISTRAR) -> bytes:
    return chain.tx(T.Reconcile, signer, prm=prm(i), start=start, export_wh=tuple(export), import_wh=tuple(imp))


def check_invariants(chain: Chain) -> None:
    check_conservation(chain.kv)
    check_settled_intervals(chain.kv)
    assert chain.state_hash() == chain.full_hash()


def day_one(params: dict | None = None):
    """Households consent; in the first half hour producer 0 says it exported 500 Wh,
    consumers 2 and 3 imported 300 and 200; the interval settles."""
    genesis, keys = make_genesis(4, {**PARAMS, **(params or {})})
    chain = Chain(genesis)
    t = GENESIS_TIME + 5
    chain.block([consent(chain, i) for i in range(4)] + [chain.reading(k, i, 1, t, 0, 0) for i, k in enumerate(keys)],
                dt_s=10)
    chain.block([chain.reading(keys[0], 0, 2, t + 600, 0, 500), chain.reading(keys[2], 2, 2, t + 600, 300, 0),
                 chain.reading(keys[3], 3, 2, t + 600, 200, 0)], at=t + 601)
    chain.block([], at=GENESIS_TIME + HALF + 301)
    return chain, keys


def test_inflated_export_is_corrected_with_the_invariants_intact():
    chain, keys = day_one()
    assert [kwh(chain, keys[i]) for i in (0, 2, 3)] == [450, -300, -200]
    result = chain.block([reconcile(chain, 0, GENESIS_TIME, [400], [0])])
    # Official 400 Wh: the producer keeps 360, the treasury 40, consumers pay 240 + 160.
    assert [kwh(chain, keys[i]) for i in (0, 2, 3)] == [360, -240, -160]
    assert get_treasury(chain.kv)["kwh"] == 40
    event = [e for e in result.events if e.kind == "reconciled"][0]
    assert (event.delta_e, event.deviation_bp, event.flagged) == (-100, 2500, False)
    entry = decode_value(chain.kv.get(L.key_entry(GENESIS_TIME, keys[0].public)))
    assert entry[L.IE_E] == 400 and (entry[L.IE_PROV_E], entry[L.IE_PROV_I]) == (500, 0)
    assert decode_value(chain.kv.get(L.META_RECONCILE))[:5] == [1, 400, 0, 0, 100]
    check_invariants(chain)


def test_official_data_above_the_reported_mints_the_difference():
    chain, keys = day_one()
    chain.block([reconcile(chain, 0, GENESIS_TIME, [600], [0]), reconcile(chain, 2, GENESIS_TIME, [0], [400])])
    # ΣE 600, ΣI 600: M = 600; 2 and 3 are allocated 400 and 200.
    assert [kwh(chain, keys[i]) for i in (0, 2, 3)] == [540, -400, -200]
    check_invariants(chain)


def test_night_export_claim_is_burned_when_no_sky_table_caught_it():
    """Without a sky table (a genesis made before issue 18) a night export passes the
    peak cap; the official curve, 0 at night, burns all of it."""
    chain, keys = day_one()
    chain.block([reconcile(chain, 0, GENESIS_TIME, [0], [0])])
    assert [kwh(chain, keys[i]) for i in (0, 2, 3)] == [0, 0, 0] and get_treasury(chain.kv)["kwh"] == 0
    check_invariants(chain)


def test_a_second_reconcile_of_the_same_interval_corrects_from_the_first():
    chain, keys = day_one()
    chain.block([reconcile(chain, 0, GENESIS_TIME, [400], [0])])
    chain.block([reconcile(chain, 0, GENESIS_TIME, [400], [0])])
    assert kwh(chain, keys[0]) == 360
    entry = decode_value(chain.kv.get(L.key_entry(GENESIS_TIME, keys[0].public)))
    assert entry[L.IE_PROV_E] == 500      # the meter's word is kept from the first time
    check_invariants(chain)


def test_intervals_whose_entries_left_the_state_are_refused_not_zeroed():
    chain, keys = day_one()
    retention = chain.genesis.params["history_retention_s"]
    chain.block([], at=GENESIS_TIME + HALF + retention)           # the first interval's entries leave
    assert chain.kv.get(L.key_entry(GENESIS_TIME, keys[0].public)) is None
    before = kwh(chain, keys[0])
    expect_invalid(chain, reconcile(chain, 0, GENESIS_TIME, [400], [0]), "reconcile_too_late")
    assert kwh(chain, keys[0]) == before == 450
    # The next interval (no energy reported) is still in the window: it may be reconciled.
    chain.block([reconcile(chain, 0, GENESIS_TIME + HALF, [100], [0])])
    assert kwh(chain, keys[0]) == 450 + 90
    check_invariants(chain)


@pytest.mark.parametrize("who, start, export, imp, reason", [
    (1, GENESIS_TIME + 3 * HALF, [0], [0], "not_settled"),
    (0, GENESIS_TIME + 7, [0], [0], "bad_start"),
    (0, GENESIS_TIME, [0, 0], [0], "bad_curve"),
    (0, GENESIS_TIME, [], [], "bad_curve"),
    (0, GENESIS_TIME, [0, 0], [0, 0, 0], "bad_curve"),
    (0, GENESIS_TIME, [3001], [0], "physics_cap"),
    (2, GENESIS_TIME, [0], [3001], "physics_cap"),
], ids=["not_settled", "bad_start", "uneven", "empty", "uneven_both", "export_cap", "import_cap"])
def test_invalid_reconcile(who, start, export, imp, reason):
    chain, _ = day_one()
    expect_invalid(chain, reconcile(chain, who, start, export, imp), reason)


def test_reconcile_needs_a_registrar_a_known_prm_and_consent():
    chain, keys = day_one()
    expect_invalid(chain, reconcile(chain, 0, GENESIS_TIME, [400], [0], signer=keys[1]), "not_registrar")
    expect_invalid(chain, chain.tx(T.Reconcile, REGISTRAR, prm="30000099999999", start=GENESIS_TIME,
                                   export_wh=(0,), import_wh=(0,)), "unknown_prm")
    chain.block([consent(chain, 0, granted=False)])
    expect_invalid(chain, reconcile(chain, 0, GENESIS_TIME, [400], [0]), "no_consent")


def test_consent_follows_the_household_through_a_key_rotation_not_to_the_next_occupant():
    chain, keys = day_one()
    new = keypair("rotated", 9)
    tx = T.RotateKey(signer=keys[0].public, nonce=chain.nonce(keys[0]), new_key=new.public, new_sig=ZERO_SIG,
                     sig=ZERO_SIG)
    data = sign_message(sign_message(tx, chain.genesis.chain_id, new, "new_sig"), chain.genesis.chain_id, keys[0])
    chain.block([data.encode()])
    # The settled entry moved with the household: the correction lands on the new key.
    chain.block([reconcile(chain, 0, GENESIS_TIME, [400], [0])])
    assert kwh(chain, new) == 360
    check_invariants(chain)
    # Moving out ends it: a new occupant of the same PRM has not consented.
    h = chain.genesis.households[0]
    other = keypair("occupant", 1)
    chain.block([chain.tx(T.Deregister, REGISTRAR, key=new.public, memo="")])
    chain.block([chain.tx(T.RegisterHousehold, REGISTRAR, key=other.public, meter=h.meter, prm=h.prm, label="",
                          kva=h.kva, peak_w=h.peak_w)])
    expect_invalid(chain, reconcile(chain, 0, GENESIS_TIME, [300], [0]), "no_consent")


def test_a_levy_burned_after_the_epoch_comes_out_of_the_next_one():
    chain, keys = day_one({"allocation_epoch_s": HALF * 2})
    chain.block([], at=GENESIS_TIME + 2 * HALF)                   # the epoch splits the 50 Wh levy
    assert get_treasury(chain.kv)["kwh"] == 0
    chain.block([reconcile(chain, 0, GENESIS_TIME, [0], [0])])
    assert get_treasury(chain.kv)["kwh"] == -50
    check_invariants(chain)
    result = chain.block([], at=GENESIS_TIME + 4 * HALF)
    assert [e.distributed for e in result.events if e.kind == "epoch"] == [0]
    assert get_treasury(chain.kv)["kwh"] == -50
    check_invariants(chain)


def test_three_deviating_days_in_a_row_flag_the_household():
    chain, keys = day_one()
    chain.block([], at=GENESIS_TIME + 3 * HALF + 301)
    flags = []
    for day in range(3):
        result = chain.block([reconcile(chain, 0, GENESIS_TIME + day * HALF, [400 if day == 0 else 1], [0])])
        flags += [e.flagged for e in result.events if e.kind == "reconciled"]
    assert flags == [False, False, True]
    stats = decode_value(chain.kv.get(L.key_reconcile_stats(prm(0))))
    assert stats[L.RC_DAYS] == 3 and stats[L.RC_STREAK] == 3
    check_invariants(chain)


def test_a_direction_left_empty_keeps_the_meters_word():
    chain, keys = day_one()
    chain.block([reconcile(chain, 2, GENESIS_TIME, [], [250])])       # consumption only
    # ΣE 500, ΣI 450: M = 450; 2 and 3 pay 250 and 200; producer 0 untouched.
    assert [kwh(chain, keys[i]) for i in (0, 2, 3)] == [450, -250, -200]
    check_invariants(chain)


def test_queries_show_provisional_official_and_the_communes_share():
    from tokens.queries_reconcile import get_household_reconciliation, get_reconciliation
    chain, keys = day_one()
    doc = get_reconciliation(chain.kv)
    assert (doc["reconciled_share_bp"], doc["consenting"], doc["households"]) == (0, 4, 4)
    chain.block([reconcile(chain, 0, GENESIS_TIME, [400], [0])])
    hh = get_household_reconciliation(chain.kv, keys[0].public)
    assert hh["consent"] is not None and hh["intervals"] == [{
        "start": GENESIS_TIME, "provisional_export_wh": 500, "official_export_wh": 400, "provisional_import_wh": 0,
        "official_import_wh": 0, "correction_export_wh": -100, "correction_import_wh": 0}]
    assert hh["totals"]["days"] == 1 and not hh["totals"]["flagged"]
    doc = get_reconciliation(chain.kv)
    # In the state: 400 (0's, official) + 300 + 200 (2 and 3, provisional) Wh.
    assert (doc["energy_in_state_wh"], doc["reconciled_in_state_wh"], doc["reconciled_share_bp"]) == (900, 400, 4444)
    assert (doc["burned_wh"], doc["minted_wh"], doc["flagged"]) == (100, 0, [])
    assert get_household_reconciliation(chain.kv, keypair("nobody").public) is None
