"""RegisterHousehold, UpdateHousehold and MeterReading rules (DESIGN §4)."""

from __future__ import annotations

import pytest

from tests.unit.tokens.commune import REGISTRAR, Chain, expect_invalid, keypair, make_genesis, sign
from tokens import get_household, get_interval_at
from tokens import txs as T

NEW = keypair("newcomer")


@pytest.fixture
def chain() -> Chain:
    genesis, _ = make_genesis(4)
    return Chain(genesis)


@pytest.fixture
def keys() -> list:
    return make_genesis(4)[1]


def register(chain: Chain, key=NEW, meter="021499999999", prm="30000099999999", kva=6, peak_w=0, signer=REGISTRAR,
             **kw) -> bytes:
    return chain.tx(T.RegisterHousehold, signer, key=key.public, meter=meter, prm=prm, label="Nouveaux",
                    kva=kva, peak_w=peak_w, **kw)


def test_register_household_creates_record_and_account(chain):
    chain.block([register(chain)])
    hh = get_household(chain.kv, NEW.public)
    assert hh["meter"] == "021499999999" and hh["kva"] == 6 and not hh["last_reading"]["baseline_set"]


@pytest.mark.parametrize("change, reason", [
    ({"signer": 0}, "not_registrar"),
    ({"key": 0}, "already_registered"),
    ({"prm": "3000"}, "bad_prm"),
    ({"kva": 0}, "bad_kva"),
    ({"meter": "021400000000"}, "meter_in_use"),
], ids=["by_non_registrar", "twice", "bad_prm", "zero_kva", "meter_in_use"])
def test_invalid_register(chain, keys, change, reason):
    change = {name: keys[v] if name in ("signer", "key") else v for name, v in change.items()}
    expect_invalid(chain, register(chain, **change), reason)


@pytest.mark.parametrize("meter", ["12345", "0214abcdefgh", "02140000000 ", "-21400000000"])
def test_invalid_register_bad_meter(chain, meter):
    expect_invalid(chain, register(chain, meter=meter), "bad_meter")


def test_invalid_register_stale_nonce(chain):
    chain.block([register(chain, nonce=5)])
    expect_invalid(chain, register(chain, key=keypair("other"), meter="021488888888", prm="30000088888888", nonce=5),
                   "stale_nonce")


def test_invalid_register_bad_signature(chain):
    data = bytearray(register(chain))
    data[-1] ^= 1
    expect_invalid(chain, bytes(data), "bad_signature")


def update(chain, key, meter, kva=6, peak_w=0, solidarity=False, signer=REGISTRAR) -> bytes:
    return chain.tx(T.UpdateHousehold, signer, key=key.public, meter=meter, kva=kva, peak_w=peak_w,
                    solidarity=solidarity)


def test_update_household_meter_change_resets_baseline(chain, keys):
    t0 = chain.time_s
    chain.block([chain.reading(keys[2], 2, 1, t0 + 5, 1000, 0)], dt_s=10)
    chain.block([update(chain, keys[2], "021477777777", kva=12, solidarity=True)])
    hh = get_household(chain.kv, keys[2].public)
    assert hh["meter"] == "021477777777" and hh["kva"] == 12 and hh["solidarity"]
    assert not hh["last_reading"]["baseline_set"]
    # The new meter's first reading only sets the baseline, even with a low index.
    chain.block([chain.tx(T.MeterReading, keys[2], meter="021477777777", seq=2, t=t0 + 15, import_wh=5,
                          export_wh=0)], dt_s=5)
    hh = get_household(chain.kv, keys[2].public)
    assert hh["last_reading"]["import_wh"] == 5 and hh["last_reading"]["baseline_set"]
    # The old meter is free again for someone else.
    chain.block([register(chain, meter="021400000002")])


def test_update_household_same_meter_keeps_baseline(chain, keys):
    t0 = chain.time_s
    chain.block([chain.reading(keys[2], 2, 1, t0 + 5, 1000, 0)], dt_s=10)
    chain.block([update(chain, keys[2], "021400000002", solidarity=True)])
    assert get_household(chain.kv, keys[2].public)["last_reading"]["baseline_set"]


@pytest.mark.parametrize("household, meter, change, reason", [
    (None, "021400000099", {}, "unknown_household"),
    (1, "021400000001", {"signer": 1}, "not_registrar"),
    (1, "021400000000", {}, "meter_in_use"),
    (1, "1", {}, "bad_meter"),
    (1, "021400000001", {"kva": 0}, "bad_kva"),
], ids=["unknown_household", "by_household", "to_a_meter_in_use", "bad_meter", "zero_kva"])
def test_invalid_update(chain, keys, household, meter, change, reason):
    change = {name: keys[v] if name == "signer" else v for name, v in change.items()}
    key = NEW if household is None else keys[household]
    expect_invalid(chain, update(chain, key, meter, **change), reason)


# --- MeterReading -------------------------------------------------------------------


def baseline(chain, keys, t_off=5, imp=1000, exp=1000):
    t0 = chain.time_s
    chain.block([chain.reading(keys[i], i, 1, t0 + t_off, imp, exp) for i in range(4)], dt_s=t_off + 5)
    return t0 + t_off


def test_first_reading_only_sets_the_baseline(chain, keys):
    t = baseline(chain, keys, imp=123_456)
    hh = get_household(chain.kv, keys[0].public)
    assert hh["last_reading"] == {"seq": 1, "t": t, "import_wh": 123_456, "export_wh": 1000, "baseline_set": True}
    start = t - t % 1800
    assert get_interval_at(chain.kv, start)["sum_i"] == 0


def test_reading_deltas_count_for_the_interval_containing_t(chain, keys):
    t = baseline(chain, keys)
    chain.block([chain.reading(keys[0], 0, 2, t + 600, 1100, 1500)], dt_s=600)
    iv = get_interval_at(chain.kv, t - t % 1800)
    assert (iv["sum_e"], iv["sum_i"]) == (500, 100)
    assert iv["households"][keys[0].public.hex()]["export_wh"] == 500


def test_lost_reading_loses_no_energy(chain, keys):
    # Cumulative indexes: the next reading carries the missing delta.
    t = baseline(chain, keys)
    chain.block([chain.reading(keys[2], 2, 3, t + 900, 1000 + 1400, 1000)], dt_s=900)
    assert get_interval_at(chain.kv, t - t % 1800)["sum_i"] == 1400


def test_invalid_reading_too_far_ahead(chain, keys):
    t = baseline(chain, keys)
    # Block time is time_s + 1; t may be at most 60 s past it.
    chain.block([chain.reading(keys[0], 0, 2, chain.time_s + 61, 1000, 1000)])
    expect_invalid(chain, chain.reading(keys[1], 1, 2, chain.time_s + 62, 1000, 1000), "future_reading")
    assert t


@pytest.mark.parametrize("household, seq, dt, import_wh, export_wh, reason", [
    (0, 1, 10, 1000, 1000, "stale_seq"),
    (0, 2, 0, 1000, 1000, "stale_time"),
    (0, 2, 5, 999, 1000, "index_fell"),
    (0, 2, 5, 1000, 999, "index_fell"),
    # Household 2 subscribes 6 kVA: 360 s may import at most 600 Wh.
    (2, 2, 360, 1601, 1000, "physics_cap"),
    # Household 3 has no panels: it may export nothing.
    (3, 2, 60, 1000, 1001, "physics_cap"),
], ids=["stale_seq", "stale_time", "import_index_fell", "export_index_fell", "physics_cap_import",
        "export_without_panels"])
def test_invalid_reading(chain, keys, household, seq, dt, import_wh, export_wh, reason):
    # After the baseline (index 1000 each way at t), a reading ``dt`` seconds later.
    t = baseline(chain, keys)
    data = chain.reading(keys[household], household, seq, t + dt, import_wh, export_wh)
    expect_invalid(chain, data, reason, dt_s=max(dt, 1))


def test_physics_cap_import_at_the_limit_is_accepted(chain, keys):
    t = baseline(chain, keys)
    # Household 2 subscribes 6 kVA: 360 s may import 6000 W × 360 s / 3600 = 600 Wh.
    chain.block([chain.reading(keys[2], 2, 2, t + 360, 1600, 1000)], dt_s=360)


def test_invalid_reading_physics_cap_export(chain, keys):
    t = baseline(chain, keys)
    # Producer 0 has a 6000 W peak: 600 Wh in 360 s is the most it can export.
    chain.block([chain.reading(keys[0], 0, 2, t + 360, 1000, 1600)], dt_s=360)
    expect_invalid(chain, chain.reading(keys[0], 0, 3, t + 720, 1000, 2201), "physics_cap", dt_s=360)


def test_invalid_reading_late_after_settlement(chain, keys):
    t = baseline(chain, keys)
    start = t - t % 1800
    chain.block(at=start + 1800 + 300)       # interval settles
    expect_invalid(chain, chain.reading(keys[2], 2, 2, start + 1799, 1100, 1000), "late_reading")


def test_reading_in_grace_period_still_counts(chain, keys):
    t = baseline(chain, keys)
    start = t - t % 1800
    chain.block([chain.reading(keys[2], 2, 2, start + 1799, 1100, 1000)], at=start + 1800 + 299)
    result = chain.block(dt_s=1)
    assert [e.sum_i for e in result.events if e.kind == "settlement"] == [100]


def test_invalid_reading_wrong_meter(chain, keys):
    baseline(chain, keys)
    data = chain.tx(T.MeterReading, keys[0], meter="021400000001", seq=2, t=chain.time_s, import_wh=1000,
                    export_wh=1000)
    expect_invalid(chain, data, "wrong_meter")


def test_invalid_reading_unknown_signer(chain):
    data = chain.tx(T.MeterReading, NEW, meter="021499999999", seq=1, t=chain.time_s, import_wh=0, export_wh=0)
    expect_invalid(chain, data, "unknown_signer")


def test_invalid_reading_signed_by_someone_else(chain, keys):
    forged = T.MeterReading(signer=keys[0].public, meter="021400000000", seq=1, t=chain.time_s, import_wh=0,
                            export_wh=0, sig=bytes(64))
    expect_invalid(chain, sign(forged, chain.genesis, keys[1]), "bad_signature")
