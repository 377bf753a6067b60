"""Reconciliation with official load curves (issue 18, docs/reconciliation.md)."""

from __future__ import annotations

import hashlib

import pytest

from tests.unit.tokens.commune import GENESIS_TIME, REGISTRAR, ZERO_SIG, Chain, expect_invalid, keypair, make_genesis
from tests.unit.tokens.test_properties import check_conservation, check_settled_intervals
from tests.unit.tokens.test_sealing import SealChain
from tokens import get_rescanned_state_hash
from tokens import get_account, get_treasury
from tokens import layout as L
from tokens import txs as T
from tokens.kv import decode_value
from tokens.sealing import is_hidden_aggregate
from tokens.visibility import get_entry_reader
from wire import sign_message

HALF = 1800
# clear_reconcile_scenario's state root, computed by the code before corrections could
# wait for enough households on a chain that seals (main at f1e9295).
ROOT_BEFORE_HIDDEN_CORRECTIONS = "60ca32b52ced877a2fc3404c1ef5c3553bf554171d7700ea9baaca9af08ab43b"
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


def clear_reconcile_scenario():
    """A chain that does not seal: corrections of a settled interval (twice), of one that
    settled trivially, a consumption-only one, then the producer moves out and is erased
    with its balance, and the history leaves."""
    chain, keys = day_one({"erasure_after_s": 2 * HALF, "history_retention_s": 3 * 86_400})
    chain.block([reconcile(chain, 0, GENESIS_TIME, [400], [0]), reconcile(chain, 2, GENESIS_TIME, [], [250])])
    chain.block([], at=GENESIS_TIME + 2 * HALF + 301)
    chain.block([reconcile(chain, 0, GENESIS_TIME, [450, 120], [0, 10])])
    chain.block([chain.registrar_tx(T.Deregister, REGISTRAR, key=keys[0].public, memo="départ")])
    chain.block([], dt_s=2 * HALF + 1)
    chain.block([], at=GENESIS_TIME + 4 * 86_400)
    return chain, keys


def test_a_chain_that_does_not_seal_keeps_its_roots_through_corrections_and_erasure():
    """docs/privacy.md "Public aggregates": the hidden paths of a sealing chain (pending
    corrections, an erased balance through the pool) leave a clear chain's state as it was."""
    chain, keys = clear_reconcile_scenario()
    assert chain.kv.get(L.key_erased(hashlib.sha256(keys[0].public).digest())) is not None
    # The root the code before the hidden corrections computed for the same blocks.
    assert chain.state_hash().hex() == ROOT_BEFORE_HIDDEN_CORRECTIONS
    check_conservation(chain.kv)


def sealed_interval(n: int = 6):
    """A chain that seals, whose aggregates need 2 households (``min_aggregate``): ``n``
    households consent; in one half hour producers 0 and 1 export 400 Wh each and the
    others import 200 each; the interval settles public."""
    chain = SealChain(n, params={"min_aggregate": 2})
    chain.block([chain.set_data_key(k) for k in chain.households])

    reading = chain.sealed_reading
    t0 = GENESIS_TIME + HALF
    chain.block([chain.registrar_tx(T.Consent, REGISTRAR, prm=prm(i), granted=True, memo="") for i in range(n)],
                at=t0 - 10)
    chain.block([reading(i, 1, t0, 0, 0) for i in range(n)], at=t0 + 1)
    chain.block([reading(i, 2, t0 + 600, 0 if i < 2 else 200, 400 if i < 2 else 0) for i in range(n)],
                at=t0 + 601)
    chain.block(at=t0 + HALF + 301)
    return chain, t0


def correction(chain: SealChain, i: int, start: int) -> bytes:
    """The official curve says producers exported 350 Wh, consumers imported 150."""
    return chain.registrar_tx(T.Reconcile, REGISTRAR, prm=prm(i), start=start,
                              export_wh=(350,) if i < 2 else (), import_wh=() if i < 2 else (150,))


def test_on_a_sealing_chain_corrections_show_only_once_enough_households_made_them():
    """docs/privacy.md "Public aggregates": one household's correction of a public
    interval would move its record and ``meta/reconcile`` by that household's figures.
    They wait (``icor/``, salted, validators only) until min_aggregate households made
    them, then the record and the totals take them all at once."""
    chain, t0 = sealed_interval()
    ikey, ckey = L.key_interval(t0), L.key_interval_correction(t0)
    shown = decode_value(chain.kv.get(ikey))
    assert L.is_public_interval(shown) and (shown[L.IV_SUM_E], shown[L.IV_SUM_I]) == (800, 800)
    assert chain.kv.get(L.META_RECONCILE) is None
    # Producer 0's correction waits: the record and the totals have not moved.
    chain.block([correction(chain, 0, t0)])
    assert decode_value(chain.kv.get(ikey)) == shown and chain.kv.get(L.META_RECONCILE) is None
    pending = decode_value(chain.kv.get(ckey))
    assert pending[L.IC_HOUSEHOLDS] == [chain.households[0].public] and pending[L.IC_RECONCILE][0] == 1
    assert pending[L.IC_RECORD][L.IV_SUM_E] == 750
    assert chain.state_hash() == get_rescanned_state_hash(chain.kv, chain.keys)
    check_conservation(chain.kv)
    check_settled_intervals(chain.kv)
    # Nobody outside the validators reads the pending entry.
    assert is_hidden_aggregate(ckey, pending)
    assert get_entry_reader(chain.kv, ckey) is None
    assert get_entry_reader(chain.kv, ckey, chain.households[0].public) is None
    # A second household's correction: both move at once, by the two households' sum.
    chain.block([correction(chain, 2, t0)])
    assert chain.kv.get(ckey) is None
    record = decode_value(chain.kv.get(ikey))
    assert (record[L.IV_SUM_E], record[L.IV_SUM_I]) == (750, 750) and L.is_public_interval(record)
    assert decode_value(chain.kv.get(L.META_RECONCILE)) == [2, 350, 150, 0, 50]
    check_conservation(chain.kv)
    check_settled_intervals(chain.kv)
    assert chain.state_hash() == get_rescanned_state_hash(chain.kv, chain.keys) == chain.replay(chain.keys)
