"""Reconciliation with the grid operator's official load curves (issue 18,
docs/reconciliation.md).

Provisional settlement runs on what each household's meter agent signs (the TIC, in real
time). The next day the registrar posts the official half-hourly curve of each consenting
household (``Reconcile``, one per household and day): for every interval the official
energy replaces the self-reported one, the difference is minted or burned, the levy and
the consumers' matched shares are re-split, and the settlement invariants keep holding
(every balance sums to ``meta/totals``; per interval Σ minted + levy − Σ allocated ==
ΣE − M, M == min(ΣE, ΣI)).

The window: a settled interval's entries leave the state ``history_retention_s`` after
its end (tokens/settlement.process_history) and no rule may read the node archive. An
interval whose entries may have left is therefore refused (``reconcile_too_late``):
never treated as zero, which would mint its energy a second time.
"""

from __future__ import annotations

from dataclasses import dataclass

from governance.rounding import compute_largest_remainder
from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.genesis import DEFAULT_PARAMS
from tokens.indexkeys import key_prm_of
from tokens.ledger import Ledger
from tokens.rules_household import get_settled_until
from tokens.settlement import DAY_S, PublicSums, process_contribution, process_public_sums
from tokens.txs import Consent, Reconcile

# Official curves are half-hourly (Enedis: interval_length 1800 s).
OFFICIAL_INTERVAL_S = 1800
# A household is flagged after this many reconciled days in a row above reconcile_flag_bp.
FLAG_DAYS = 3


@dataclass(frozen=True)
class Reconciled:
    """Event: one household-day of official data applied."""

    household: bytes
    prm: str
    start: int
    intervals: int
    delta_e: int          # official − provisional export, Wh (minted if > 0, burned if < 0)
    delta_i: int
    deviation_bp: int
    flagged: bool
    kind: str = "reconciled"


def process_consent(lg: Ledger, tx: Consent, tx_id: bytes) -> None:
    # docs/reconciliation.md "Consent": recorded per delivery point, for the household
    # there now. A key rotation or recovery keeps it (the household record, with its
    # ``since`` height, moves whole); a new occupant of the PRM must consent anew.
    lg.require_registrar(tx.signer)
    addr = lg.ov.get(key_prm_of(lg, tx.prm))
    if addr is None:
        raise InvalidTx("unknown_prm", f"no household at delivery point {tx.prm}")
    lg.process_nonce(tx.signer, tx.nonce)
    if tx.granted:
        hh = lg.require_household(addr)
        lg.ov.put(L.key_consent(tx.prm), [hh[L.HH_SINCE], lg.now_s])
    else:
        lg.ov.delete(L.key_consent(tx.prm))


def get_consent(lg: Ledger, prm: str, hh: list) -> list | None:
    """The consent of the household now at ``prm``: [since height, since unix s], or None."""
    rec = lg.ov.get(L.key_consent(prm))
    return rec if rec is not None and rec[0] == hh[L.HH_SINCE] else None


def check_reconcile(lg: Ledger, tx: Reconcile) -> tuple[bytes, list]:
    """Every refusal of a Reconcile, before anything changes; returns (key, household)."""
    interval_s = lg.params["settlement_interval_s"]
    if interval_s != OFFICIAL_INTERVAL_S:
        raise InvalidTx("interval_mismatch", f"official curves are half-hourly; settlement is {interval_s} s")
    n = get_curve_length(tx)
    if not n or (tx.export_wh and tx.import_wh and len(tx.export_wh) != len(tx.import_wh)):
        raise InvalidTx("bad_curve", "export and import must have the same number (1 to 50) of intervals; "
                                     "one of them may be empty (that direction is not reconciled)")
    if tx.start % interval_s:
        raise InvalidTx("bad_start", f"start {tx.start} is not on the {interval_s} s grid")
    addr = lg.ov.get(key_prm_of(lg, tx.prm))
    if addr is None:
        raise InvalidTx("unknown_prm", f"no household at delivery point {tx.prm}")
    hh = lg.require_household(addr)
    consent = get_consent(lg, tx.prm, hh)
    if consent is None:
        raise InvalidTx("no_consent", f"the household at {tx.prm} has not consented to reconciliation")
    if tx.start < consent[1] - consent[1] % interval_s:
        raise InvalidTx("before_consent", f"start {tx.start} is before the consent ({consent[1]})")
    end = tx.start + n * interval_s
    if end > get_settled_until(lg):
        raise InvalidTx("not_settled", f"the intervals up to {end} have not all settled yet")
    cutoff = lg.now_s - lg.params["history_retention_s"]
    if tx.start + interval_s <= cutoff:
        raise InvalidTx("reconcile_too_late",
                        f"the interval at {tx.start} ended {lg.now_s - tx.start - interval_s} s ago: its entries "
                        f"have left the state (history_retention_s {lg.params['history_retention_s']})")
    # DESIGN §4 physics: even official data cannot beat the subscribed power or the panels.
    for k, (e, i) in enumerate(zip(get_curve(tx.export_wh, n), get_curve(tx.import_wh, n))):
        if (e or 0) * 3600 > hh[L.HH_PEAK_W] * interval_s or (i or 0) * 3600 > hh[L.HH_KVA] * 1000 * interval_s:
            raise InvalidTx("physics_cap", f"interval {k}: {e} Wh out, {i} Wh in exceeds the household's powers")
    return addr, hh


def get_curve_length(tx: Reconcile) -> int:
    return max(len(tx.export_wh), len(tx.import_wh))


def get_curve(values: tuple[int, ...], n: int) -> list[int | None]:
    """One value per interval, or None throughout for a direction not given."""
    return list(values) if values else [None] * n


def process_reconcile(lg: Ledger, tx: Reconcile, tx_id: bytes) -> None:
    lg.require_registrar(tx.signer)
    addr, hh = check_reconcile(lg, tx)
    lg.process_nonce(tx.signer, tx.nonce)
    interval_s = lg.params["settlement_interval_s"]
    prov_e = prov_i = off_e = off_i = 0
    n = get_curve_length(tx)
    for k, (e, i) in enumerate(zip(get_curve(tx.export_wh, n), get_curve(tx.import_wh, n))):
        pe, pi, oe, oi = process_correction(lg, addr, tx.start + k * interval_s, e, i)
        prov_e, prov_i, off_e, off_i = prov_e + pe, prov_i + pi, off_e + oe, off_i + oi
    deviation = compute_deviation_bp(prov_e, off_e, prov_i, off_i)
    stats = lg.ov.get(L.key_reconcile_stats(tx.prm)) or [0, 0, 0, 0, 0, 0, 0]
    stats[L.RC_DAYS] += 1
    stats[L.RC_STREAK] = stats[L.RC_STREAK] + 1 if deviation > lg.params["reconcile_flag_bp"] else 0
    stats[L.RC_PROV_E] += prov_e
    stats[L.RC_OFF_E] += off_e
    stats[L.RC_PROV_I] += prov_i
    stats[L.RC_OFF_I] += off_i
    stats[L.RC_LAST_BP] = deviation
    lg.ov.put(L.key_reconcile_stats(tx.prm), stats)
    lg.events.append(Reconciled(addr, tx.prm, tx.start, n, off_e - prov_e, off_i - prov_i,
                                deviation, stats[L.RC_STREAK] >= FLAG_DAYS))


def compute_deviation_bp(prov_e: int, off_e: int, prov_i: int, off_i: int) -> int:
    """|provisional − official| over official, both directions together, in bp (capped
    at 10 000 000 so it fits; any provisional energy against none official is 10 000)."""
    diff = abs(prov_e - off_e) + abs(prov_i - off_i)
    total = off_e + off_i
    if not total:
        return 10_000 if diff else 0
    return min(diff * 10_000 // total, 10_000_000)


def process_correction(lg: Ledger, addr: bytes, start: int, off_e: int | None,
                       off_i: int | None) -> tuple[int, int, int, int]:
    """Replace ``addr``'s energy in the settled interval ``start`` by the official one
    (a direction given as None keeps the meter's word) and settle the difference; returns
    the provisional (meter-signed) energy it replaced and the energy now in force."""
    seals = lg.genesis.seals_payloads
    ekey = L.key_entry(start, addr)
    entry = lg.ov.get(ekey)
    if entry is None:
        off_e, off_i = off_e or 0, off_i or 0
        if not (off_e or off_i):
            return 0, 0, 0, 0
    else:
        off_e = entry[L.IE_E] if off_e is None else off_e
        off_i = entry[L.IE_I] if off_i is None else off_i
    iv = get_record_to_correct(lg, start)
    if entry is None:
        entry = [0, 0, 0, 0]
        lg.ov.put(ekey, entry)
    if len(entry) == L.IE_PROV_E:
        entry.extend([entry[L.IE_E], entry[L.IE_I]])      # the meter's word, kept once
    provisional = (entry[L.IE_PROV_E], entry[L.IE_PROV_I])
    prev_e = entry[L.IE_E]
    d_e, d_i = off_e - prev_e, off_i - entry[L.IE_I]
    entry[L.IE_E], entry[L.IE_I] = off_e, off_i
    lg.ov.mark(ekey)
    d_levy = process_correct_mint(lg, addr, start, iv, entry, prev_e)
    iv[L.IV_SUM_E] += d_e
    iv[L.IV_SUM_I] += d_i
    old_m = iv[L.IV_M]
    process_resplit(lg, start, iv)
    iv[L.IV_MINTED] += d_e
    iv[L.IV_ALLOCATED] = iv[L.IV_M]
    # One household's correction: on a chain that seals it waits in the pool with the
    # household counted, as a small interval's sums do (docs/privacy.md "Public aggregates").
    process_public_sums(lg, PublicSums(d_levy, d_e, iv[L.IV_M] - old_m, [addr], [addr]), not seals, not seals)
    totals = [1, off_e, off_i, max(d_e, 0), max(-d_e, 0)]
    if seals:
        process_pending_correction(lg, start, iv, addr, totals)
    else:
        lg.ov.put(L.key_interval(start), iv)
        process_reconcile_totals(lg, totals)
    return provisional[0], provisional[1], off_e, off_i


def get_record_to_correct(lg: Ledger, start: int) -> list:
    """The interval record a correction starts from. On a chain that seals, the pending
    one (``icor/``) if corrections wait, else a copy of the ``int/`` record (which keeps
    the sums last shown). A settled interval nobody reported energy in settled
    trivially: it has no record yet."""
    if lg.genesis.seals_payloads:
        pending = lg.ov.get(L.key_interval_correction(start))
        if pending is not None:
            return pending[L.IC_RECORD]
        iv = lg.ov.get(L.key_interval(start))
        if iv is not None:
            return list(iv)
    else:
        iv = lg.ov.get(L.key_interval(start))
        if iv is not None:
            return iv
    return [start + lg.params["settlement_interval_s"], 0, 0, 0, True, 0, 0, 0]


def process_reconcile_totals(lg: Ledger, totals: list[int]) -> None:
    """``meta/reconcile`` += [intervals, official E, official I, Wh minted, Wh burned]."""
    meta = lg.get_meta(L.META_RECONCILE, [0, 0, 0, 0, 0])
    lg.ov.put(L.META_RECONCILE, [a + b for a, b in zip(meta, totals)])


def process_pending_correction(lg: Ledger, start: int, iv: list, addr: bytes, totals: list[int]) -> None:
    """docs/privacy.md "Public aggregates": on a chain that seals, one household's
    correction of an interval would move its record (public once settled as public, and
    in ``/aggregates`` whenever enough households made it) and ``meta/reconcile`` by that
    household's figures alone. The corrected record and the totals wait in ``icor/``
    (validators only, salted) with the households corrected; once ``min_aggregate`` of
    them made it, the record and ``meta/reconcile`` take it all at once: what the public
    sees move is a sum over that many households' corrections."""
    key = L.key_interval_correction(start)
    pending = lg.ov.get(key) or [iv, [], [0, 0, 0, 0, 0]]
    households = set(pending[L.IC_HOUSEHOLDS]) | {addr}
    moved = [a + b for a, b in zip(pending[L.IC_RECONCILE], totals)]
    least = lg.params.get("min_aggregate", DEFAULT_PARAMS["min_aggregate"])
    if len(households) < least:
        lg.ov.put(key, [iv, sorted(households), moved])
        return
    lg.ov.delete(key)
    lg.ov.put(L.key_interval(start), iv)
    process_reconcile_totals(lg, moved)


def process_correct_mint(lg: Ledger, addr: bytes, start: int, iv: list, entry: list, prev_e: int) -> int:
    # The producer's net mint and the treasury's levy follow the new E (today's levy_bp).
    # The difference goes to the producer alone: standing gifts are not re-applied. A
    # treasury levy burned after its epoch ran leaves the treasury short, which the next
    # epoch makes up before it splits anything (tokens/settlement.process_epoch). The
    # caller moves the treasury by the levy difference returned (or pools it).
    old_net = entry[L.IE_MINTED]
    prev_levy = prev_e - old_net          # settlement minted E − levy to the producer
    e = entry[L.IE_E]
    levy = e * lg.params["levy_bp"] // 10_000
    net = e - levy
    lg.process_credit(addr, "kwh", net - old_net)
    if levy != prev_levy:
        process_contribution(lg, addr, start // DAY_S, levy - prev_levy, 0)
    iv[L.IV_LEVY] += levy - prev_levy
    entry[L.IE_MINTED] = net
    return levy - prev_levy


def process_resplit(lg: Ledger, start: int, iv: list) -> None:
    """DESIGN §4 step 2 again on the corrected interval: M = min(ΣE, ΣI) re-split among
    consumers by largest remainder; each balance moves by its new share minus its old."""
    m = min(iv[L.IV_SUM_E], iv[L.IV_SUM_I])
    consumers = [(key[-32:], rec) for key, rec in lg.ov.iter_prefix(L.INTERVAL_ENTRY + L.u64(start))
                 if rec[L.IE_I] or rec[L.IE_ALLOCATED]]
    shares = compute_largest_remainder(m, [(addr, rec[L.IE_I]) for addr, rec in consumers])
    for (addr, rec), a in zip(consumers, shares):
        if a != rec[L.IE_ALLOCATED]:
            lg.process_credit(addr, "kwh", rec[L.IE_ALLOCATED] - a)
            rec[L.IE_ALLOCATED] = a
            lg.ov.mark(L.key_entry(start, addr))
    iv[L.IV_M] = m
