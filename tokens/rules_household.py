"""Household transactions: RegisterHousehold, UpdateHousehold, MeterReading (DESIGN §4)."""

from __future__ import annotations

from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.indexkeys import get_resalted_by_prm, key_meter_of, key_prm_of
from tokens.ledger import Ledger
from tokens.rules_erasure import cancel_erasure, check_not_erased
from tokens.txs import SOLIDARITY, MeterReading, RegisterHousehold, UpdateHousehold
from tokens.upgrades import get_rule


def check_digits(value: str, n: int, what: str) -> None:
    # DESIGN §4: Linky meter serial (ADCO/ADSC) is 12 digits, PRM 14 digits.
    if len(value) != n or not value.isascii() or not value.isdigit():
        raise InvalidTx(f"bad_{what}", f"{what} must be {n} digits, got {value!r}")


def check_kva(kva: int) -> None:
    if kva < 1:
        raise InvalidTx("bad_kva", "subscribed power must be at least 1 kVA")


def check_meter_free(lg: Ledger, meter: str, owner: bytes) -> None:
    # One Linky meter belongs to one household.
    holder = lg.ov.get(key_meter_of(lg, meter))
    if holder is not None and holder != owner:
        raise InvalidTx("meter_in_use", f"meter {meter} is registered to another household")


def check_prm_free(lg: Ledger, prm: str) -> None:
    # One delivery point (PRM) is one household's.
    if lg.ov.get(key_prm_of(lg, prm)) is not None:
        raise InvalidTx("prm_in_use", f"PRM {prm} is registered to another household")


def check_key_not_reserved(key: bytes) -> None:
    # The all-zero key stands for the solidarity gift target: it is nobody's.
    if key == SOLIDARITY:
        raise InvalidTx("reserved_key", "this key stands for the solidarity gift target")


def check_key_registrable(lg: Ledger, key: bytes) -> None:
    # DESIGN §12: a key that is a household now, or was replaced by another key, cannot
    # be registered; a key that moved out may be, and keeps its account.
    check_key_not_reserved(key)
    check_not_erased(lg, key)
    if lg.get_household(key) is not None:
        raise InvalidTx("already_registered", f"{key.hex()[:16]}… is already a household")
    if lg.ov.get(L.key_association(key)) is not None:
        raise InvalidTx("key_in_use", f"{key.hex()[:16]}… is an association's key")
    status = lg.ov.get(L.key_status(key))
    if status is not None and status[0] == L.KS_ROTATED:
        raise InvalidTx("key_rotated", f"{key.hex()[:16]}… was replaced by another key")


def process_register_household(lg: Ledger, tx: RegisterHousehold, tx_id: bytes) -> None:
    # DESIGN §4 RegisterHousehold (registrar): key, meter, PRM, label, kVA, kWc.
    lg.require_registrar(tx.signer)
    check_digits(tx.meter, 12, "meter")
    check_digits(tx.prm, 14, "prm")
    check_kva(tx.kva)
    check_key_registrable(lg, tx.key)
    check_meter_free(lg, tx.meter, tx.key)
    check_prm_free(lg, tx.prm)
    lg.process_nonce(tx.signer, tx.nonce)
    cancel_erasure(lg, tx.key, lg.ov.get(L.key_status(tx.key)))
    lg.ov.delete(L.key_status(tx.key))
    process_new_household(lg, tx.key, tx.meter, tx.prm, tx.label, tx.kva, tx.peak_w)


def process_new_household(lg: Ledger, key: bytes, meter: str, prm: str, label: str, kva: int,
                          peak_w: int) -> None:
    """Write a household record (no baseline yet), its meter and PRM index and its account."""
    hh = [meter, prm, label, kva, peak_w, False, lg.height, 0, 0, 0, 0, False]
    lg.ov.put(L.key_household(key), hh)
    lg.ov.put(key_meter_of(lg, meter), key)
    lg.ov.put(key_prm_of(lg, prm), key)
    lg.resalted.update(get_resalted_by_prm(lg, prm))     # a former occupant's consent, statistics
    lg.get_account(key)


def process_update_household(lg: Ledger, tx: UpdateHousehold, tx_id: bytes) -> None:
    # DESIGN §4 UpdateHousehold (registrar): a meter change with a new base index, or
    # the solidarity flag.
    lg.require_registrar(tx.signer)
    hh = lg.require_household(tx.key, "unknown_household")
    check_digits(tx.meter, 12, "meter")
    check_kva(tx.kva)
    check_meter_free(lg, tx.meter, tx.key)
    lg.process_nonce(tx.signer, tx.nonce)
    if tx.meter != hh[L.HH_METER]:
        lg.ov.delete(key_meter_of(lg, hh[L.HH_METER]))
        lg.ov.put(key_meter_of(lg, tx.meter), tx.key)
        # DESIGN §4: the first reading after a meter change only sets the baseline.
        # seq and t keep rising across the change, so old readings cannot be replayed.
        hh[L.HH_BASELINE] = False
        hh[L.HH_METER] = tx.meter
    hh[L.HH_KVA], hh[L.HH_PEAK_W], hh[L.HH_SOLIDARITY] = tx.kva, tx.peak_w, tx.solidarity
    lg.ov.mark(L.key_household(tx.key))


def compute_settled_boundary(now_s: int, interval_s: int, grace_s: int) -> int:
    """DESIGN §4: interval [kΔ, (k+1)Δ) has settled once time >= (k+1)Δ + grace.
    Returns the end of the last settled interval: every interval before it is closed."""
    if now_s < grace_s:
        return 0
    return (now_s - grace_s) // interval_s * interval_s


def get_settled_until(lg: Ledger) -> int:
    """Unix s before which every interval has settled (as of this block's time)."""
    params = lg.params
    boundary = compute_settled_boundary(lg.now_s, params["settlement_interval_s"], params["settlement_grace_s"])
    return max(lg.get_meta(L.META_SETTLED, 0), boundary)


def check_reading_order(lg: Ledger, hh: list, tx: MeterReading) -> None:
    # DESIGN §4 MeterReading: seq and t must rise.
    if tx.seq <= hh[L.HH_SEQ]:
        raise InvalidTx("stale_seq", f"seq {tx.seq} is not above the last one, {hh[L.HH_SEQ]}")
    # The agent's seq is its signing clock in ms (node/meter/agent.py): bounded like a nonce.
    lg.check_not_ahead(tx.seq, "seq_ahead", "seq")
    if tx.t <= hh[L.HH_T]:
        raise InvalidTx("stale_time", f"t {tx.t} is not after the last reading's, {hh[L.HH_T]}")


def check_reading_time(lg: Ledger, tx: MeterReading) -> int:
    """Checks t against the block time and settled intervals; returns t's interval start."""
    # DESIGN §4: t <= block time + 60 s; 5 s from protocol version 2 (tokens/upgrades.py).
    ahead = get_rule("max_reading_ahead_s", lg.version)
    if tx.t > lg.now_s + ahead:
        raise InvalidTx("future_reading", f"t {tx.t} is more than {ahead} s past block time {lg.now_s}")
    interval_s = lg.params["settlement_interval_s"]
    start = tx.t - tx.t % interval_s
    # DESIGN §4: a reading whose t falls in a settled interval is refused as late.
    if start < get_settled_until(lg):
        raise InvalidTx("late_reading", f"t {tx.t} falls in an interval that has already settled")
    return start


def compute_reading_deltas(hh: list, tx: MeterReading) -> tuple[int, int]:
    # DESIGN §4: the cumulative indexes must never fall.
    d_imp = tx.import_wh - hh[L.HH_IMPORT]
    d_exp = tx.export_wh - hh[L.HH_EXPORT]
    if d_imp < 0 or d_exp < 0:
        raise InvalidTx("index_fell", "a cumulative meter index went down")
    return d_imp, d_exp


def check_physics_cap(hh: list, tx: MeterReading, d_imp: int, d_exp: int) -> None:
    # DESIGN §4: import <= subscribed kVA x elapsed time, export <= peak power x elapsed time.
    elapsed = tx.t - hh[L.HH_T]
    if d_imp * 3600 > hh[L.HH_KVA] * 1000 * elapsed:
        raise InvalidTx("physics_cap", f"import of {d_imp} Wh in {elapsed} s exceeds {hh[L.HH_KVA]} kVA")
    if d_exp * 3600 > hh[L.HH_PEAK_W] * elapsed:
        raise InvalidTx("physics_cap", f"export of {d_exp} Wh in {elapsed} s exceeds {hh[L.HH_PEAK_W]} W peak")


def check_clear_sky(lg: Ledger, hh: list, tx: MeterReading, d_exp: int) -> None:
    # docs/reconciliation.md "Sky cap": export <= kWc × clear-sky table × margin over the
    # reading's span; the table is 0 at night, so night export is refused.
    sky = lg.genesis.sky
    if sky is None or not d_exp:
        return
    cap = sky.compute_export_cap_wh(hh[L.HH_PEAK_W], lg.params["clear_sky_margin_bp"], hh[L.HH_T], tx.t)
    if d_exp > cap:
        raise InvalidTx("above_clear_sky",
                        f"export of {d_exp} Wh from {hh[L.HH_T]} to {tx.t} exceeds the clear-sky cap of {cap} Wh")


def process_meter_reading(lg: Ledger, tx: MeterReading, tx_id: bytes) -> None:
    hh = lg.require_household(tx.signer)
    if tx.meter != hh[L.HH_METER]:
        raise InvalidTx("wrong_meter", f"meter {tx.meter} is not this household's meter")
    check_reading_order(lg, hh, tx)
    start = check_reading_time(lg, tx)
    if hh[L.HH_BASELINE]:
        d_imp, d_exp = compute_reading_deltas(hh, tx)
        check_physics_cap(hh, tx, d_imp, d_exp)
        check_clear_sky(lg, hh, tx, d_exp)
    else:
        # DESIGN §4: the first reading after registration or a meter change sets the baseline.
        d_imp = d_exp = 0
        hh[L.HH_BASELINE] = True
    hh[L.HH_SEQ], hh[L.HH_T], hh[L.HH_IMPORT], hh[L.HH_EXPORT] = tx.seq, tx.t, tx.import_wh, tx.export_wh
    lg.ov.mark(L.HOUSEHOLD + tx.signer)
    if d_imp or d_exp:
        process_interval_energy(lg, tx.signer, start, d_imp, d_exp)


def process_interval_energy(lg: Ledger, addr: bytes, start: int, d_imp: int, d_exp: int) -> None:
    # DESIGN §4: deltas count for the settlement interval that contains t; the ledger
    # keeps E_j, I_i, ΣE and ΣI per interval, updated as readings arrive.
    ov = lg.ov
    ikey = L.key_interval(start)
    iv = ov.get(ikey)
    if iv is None:
        end = start + lg.params["settlement_interval_s"]
        iv = [end, 0, 0, 0, False, 0, 0, 0]
        ov.put(ikey, iv)
        ov.put(L.key_open(end, start), 1)
    iv[L.IV_SUM_E] += d_exp
    iv[L.IV_SUM_I] += d_imp
    ov.mark(ikey)
    ekey = L.key_entry(start, addr)
    entry = ov.get(ekey)
    if entry is None:
        ov.put(ekey, [d_exp, d_imp, 0, 0])
    else:
        entry[L.IE_E] += d_exp
        entry[L.IE_I] += d_imp
        ov.mark(ekey)
