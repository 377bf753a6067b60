"""Half-hourly settlement and the treasury epoch (DESIGN §4 "Settlement", "Treasury epoch").

Settlement runs at the start of a block: every interval whose end + grace is at or
before the block time settles, oldest first. Only intervals that received energy
have records; the rest settle trivially by moving ``meta/settled_until`` on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from governance.rounding import compute_largest_remainder
from tokens import layout as L
from tokens.genesis import DEFAULT_PARAMS
from tokens.kv import encode_value
from tokens.ledger import Ledger
from tokens.rules_assoc import get_association, get_fund_addresses, is_active_association, process_fund_gift
from tokens.rules_household import get_settled_until
from tokens.txs import SOLIDARITY
from wire.units import BasisPoints, Minutes, Wh

KWH = L.CLASS_INDEX["kwh"]
DAY_S = 86_400
# DESIGN §5 Weights: contributions count over the trailing 365 days.
CONTRIBUTION_DAYS = 365


@dataclass(frozen=True)
class Settled:
    """Event: interval [start, end) settled in this block."""

    start: int
    end: int
    sum_e: int
    sum_i: int
    m: int
    levy: int
    exported: int
    producers: int
    consumers: int
    kind: str = "settlement"


@dataclass(frozen=True)
class EpochRun:
    """Event: the treasury's kwh was split among the category funds."""

    epoch_start: int
    distributed: int
    allocation: tuple[int, ...]
    shares: tuple[tuple[str, int], ...]
    kind: str = "epoch"


@dataclass(frozen=True)
class HistoryLeft:
    """Event: settled intervals that left the state (DESIGN §4 "History"). ``records``
    are their ``int/`` and ``ie/`` entries as they last were: the node archives them."""

    cutoff: int
    intervals: int
    records: tuple[tuple[bytes, bytes], ...]
    kind: str = "history"


def get_due_intervals(lg: Ledger, until: int) -> list[tuple[int, int]]:
    """(end, start) of every interval with data that ends at or before ``until``."""
    due = []
    for key, _ in lg.ov.iter_prefix(L.OPEN):
        end, start = L.from_u64(key[5:13]), L.from_u64(key[13:21])
        if end > until:
            break
        due.append((end, start))
    return due


def process_settlements(lg: Ledger, events: list) -> None:
    # DESIGN §4: an interval settles in the first block whose time is at or past
    # (k+1)Δ + grace; after an idle gap, every due interval settles, in order.
    until = get_settled_until(lg)
    for end, start in get_due_intervals(lg, until):
        events.append(process_interval(lg, start))
        lg.ov.delete(L.key_open(end, start))
    if until != lg.get_meta(L.META_SETTLED, 0):
        lg.ov.put(L.META_SETTLED, until)


def process_history(lg: Ledger, events: list) -> None:
    """DESIGN §4 "History": a settled interval whose end is ``history_retention_s`` or more
    behind the block time leaves the state, its aggregate and every household's entry.
    No rule reads a settled interval (settlement reads open ones, a key move renames
    open ones, a late reading is refused by ``meta/settled_until``): what stays is for
    queries and proofs. Deterministic: block time and the state alone decide it."""
    cutoff = lg.now_s - lg.params["history_retention_s"]
    records: list[tuple[bytes, bytes]] = []
    count = 0
    # Committed keys only: this block's own new intervals are open, never due; the scan
    # stops at the first interval starting at or after the cutoff (keys are in time order).
    for ikey in lg.ov.iter_committed_keys(L.INTERVAL):
        start = L.from_u64(ikey[len(L.INTERVAL):])
        if start >= cutoff:
            break
        iv = lg.ov.get(ikey)
        if not iv[L.IV_SETTLED] or iv[L.IV_END] > cutoff:
            continue
        records.append((ikey, encode_value(iv)))
        lg.ov.delete(ikey)
        # Corrections still waiting for enough households leave with it, unshown
        # (rules_reconcile.process_pending_correction): the archive keeps the record shown.
        if lg.genesis.seals_payloads and lg.ov.get(L.key_interval_correction(start)) is not None:
            lg.ov.delete(L.key_interval_correction(start))
        for ekey, entry in lg.ov.iter_prefix(L.INTERVAL_ENTRY + L.u64(start)):
            records.append((ekey, encode_value(entry)))
            lg.ov.delete(ekey)
        count += 1
    if count:
        events.append(HistoryLeft(cutoff, count, tuple(records)))


def process_force_settle(lg: Ledger, events: list) -> None:
    """Settle every open interval now (used when the interval length changes)."""
    last_end = lg.get_meta(L.META_SETTLED, 0)
    for end, start in get_due_intervals(lg, 2**64):
        events.append(process_interval(lg, start))
        lg.ov.delete(L.key_open(end, start))
        last_end = max(last_end, end)
    lg.ov.put(L.META_SETTLED, last_end)


def process_interval(lg: Ledger, start: int) -> Settled:
    ikey = L.key_interval(start)
    iv = lg.ov.get(ikey)
    entries = [(key[-32:], rec) for key, rec in lg.ov.iter_prefix(L.INTERVAL_ENTRY + L.u64(start))]
    if sum(r[L.IE_E] for _, r in entries) != iv[L.IV_SUM_E] or sum(r[L.IE_I] for _, r in entries) != iv[L.IV_SUM_I]:
        raise RuntimeError(f"interval {start}: aggregates disagree with their entries")
    levy = process_mint(lg, start, entries)
    m = process_matching(lg, start, entries, iv[L.IV_SUM_E], iv[L.IV_SUM_I])
    iv[L.IV_M], iv[L.IV_SETTLED], iv[L.IV_LEVY] = m, True, levy
    iv[L.IV_MINTED], iv[L.IV_ALLOCATED] = iv[L.IV_SUM_E], m
    producers = [addr for addr, r in entries if r[L.IE_E]]
    consumers = [addr for addr, r in entries if r[L.IE_I]]
    show_e = show_m = True
    if lg.genesis.seals_payloads:
        # docs/privacy.md "Public aggregates": the sums shown are the API's (ΣE when
        # min_aggregate households exported, M when as many imported too); the record
        # is public only when both are, and stays a salted leaf the validators alone
        # read otherwise; what a hidden sum adds to the treasury and totals waits in the pool.
        least = lg.params.get("min_aggregate", DEFAULT_PARAMS["min_aggregate"])
        show_e = len(producers) >= least
        show_m = show_e and len(consumers) >= least
        del iv[L.IV_PUBLIC:]
        iv.append(show_m)
    lg.ov.mark(ikey)
    allocated_to = [addr for addr, r in entries if r[L.IE_ALLOCATED]]
    process_public_sums(lg, PublicSums(levy, iv[L.IV_SUM_E], m, producers, allocated_to), show_e, show_m)
    return Settled(start, iv[L.IV_END], iv[L.IV_SUM_E], iv[L.IV_SUM_I], m, levy, iv[L.IV_SUM_E] - m,
                   len(producers), len(consumers))


@dataclass(frozen=True)
class PublicSums:
    """What an interval (or a correction) adds to the treasury (``levy``) and to the
    totals since genesis (``minted`` ΣE, ``allocated`` M), and the households each part
    comes from: who exported, and who was allocated a share of M."""

    levy: Wh
    minted: Wh
    allocated: Wh
    producers: list[bytes]
    consumers: list[bytes]


def process_public_sums(lg: Ledger, sums: PublicSums, show_e: bool, show_m: bool) -> None:
    """The levy and ΣE to the treasury and the totals when ΣE is shown (``show_e``), M to
    the totals when it is (``show_m``); a part not shown goes to the pool (``pool``), with
    the households it comes from, which the treasury epoch releases once enough of them
    made it up (``process_release_pool``). A public sum that moved by a hidden part would
    give it back by subtraction, and a shown part in the pool would give the hidden ones
    back from the release the same way: the pool holds hidden parts only."""
    totals = lg.get_meta(L.META_TOTALS, [0, 0])
    pool = lg.ov.get(L.POOL) or [0, 0, 0, [], []]
    producers, consumers = set(pool[L.PL_PRODUCERS]), set(pool[L.PL_CONSUMERS])
    pooled = False
    if show_e:
        lg.process_treasury(KWH, sums.levy)
        totals[0] += sums.minted
    elif sums.levy or sums.minted:
        pool[L.PL_LEVY] += sums.levy
        pool[L.PL_MINTED] += sums.minted
        producers.update(sums.producers)
        pooled = True
    if show_m:
        totals[1] += sums.allocated
    elif sums.allocated:
        # M is ΣE or ΣI, whichever is smaller: both sides count.
        pool[L.PL_ALLOCATED] += sums.allocated
        producers.update(sums.producers)
        consumers.update(sums.consumers)
        pooled = True
    if show_e or show_m:
        lg.ov.put(L.META_TOTALS, totals)
    if pooled:
        pool[L.PL_PRODUCERS], pool[L.PL_CONSUMERS] = sorted(producers), sorted(consumers)
        lg.ov.put(L.POOL, pool)


def process_release_pool(lg: Ledger) -> None:
    """At the treasury epoch, before the split: the pool joins the treasury and the totals
    when the households its hidden parts come from are at least ``min_aggregate`` on
    each side that has any (who exported; who was allocated a share of M); otherwise it
    waits for the next epoch. What becomes public is a sum over that many households,
    never one small interval's."""
    pool = lg.ov.get(L.POOL)
    if pool is None:
        return
    least = lg.params.get("min_aggregate", DEFAULT_PARAMS["min_aggregate"])
    if any(0 < len(pool[side]) < least for side in (L.PL_PRODUCERS, L.PL_CONSUMERS)):
        return
    lg.ov.delete(L.POOL)
    process_public_sums(lg, PublicSums(pool[L.PL_LEVY], pool[L.PL_MINTED], pool[L.PL_ALLOCATED], [], []), True, True)
    if len(pool) > L.PL_HOUR:
        lg.process_treasury(L.CLASS_INDEX["hour"], pool[L.PL_HOUR])


def process_mint(lg: Ledger, start: int, entries: list[tuple[bytes, list]]) -> Wh:
    # DESIGN §4 settlement step 1: producer j gets E_j·(1−levy), the treasury E_j·levy
    # (each producer's levy is rounded down, so j's two parts sum to E_j exactly).
    levy_bp = lg.params["levy_bp"]
    day = start // DAY_S
    total_levy = 0
    needy = functools.cache(lambda: get_solidarity_households(lg))
    funds = functools.cache(lambda: get_fund_addresses(lg))
    for addr, rec in entries:
        e = rec[L.IE_E]
        if not e:
            continue
        levy = e * levy_bp // 10_000
        net = e - levy
        total_levy += levy
        if levy:
            process_contribution(lg, addr, day, levy, 0)
        kept = net - process_gifts(lg, addr, start, net, needy, funds)
        lg.process_credit(addr, "kwh", kept)
        rec[L.IE_MINTED] = net
        lg.ov.mark(L.key_entry(start, addr))
    return total_levy


def process_gifts(lg: Ledger, giver: bytes, start: int, net: Wh, needy: Callable[[], list[bytes]],
                  funds: Callable[[], dict[bytes, str]]) -> Wh:
    # DESIGN §4 settlement step 1: standing gifts move their share of j's mint.
    # A gift applies to intervals that start before its ``until``; once an interval
    # at or after ``until`` settles it can never apply again and is dropped.
    # tokens/rules_assoc.py: the beneficiary may be a category fund or an association;
    # a fund no longer in the categories, or an association struck off, gets nothing
    # and the share stays with the producer.
    # On a chain that seals, a share to a public account (a fund, an association) waits
    # in the gift pool (process_release_gift_pool): one producer's share per interval
    # would draw its production curve on that account.
    pools = lg.genesis.seals_payloads
    given = 0
    for key, (beneficiary, bp, until) in lg.ov.iter_prefix(L.GIFT + giver):
        if until <= start:
            lg.ov.delete(key)
            continue
        share = net * bp // 10_000
        if not share:
            continue
        if beneficiary == SOLIDARITY:
            given += process_solidarity_gift(lg, giver, share, needy())
        elif beneficiary in funds():
            if pools:
                process_pool_gift(lg, beneficiary, giver, share)
            else:
                process_fund_gift(lg, funds()[beneficiary], share)
            given += share
        elif is_gift_recipient(lg, beneficiary):
            if pools and get_association(lg, beneficiary) is not None:
                process_pool_gift(lg, beneficiary, giver, share)
            else:
                lg.process_credit(beneficiary, "kwh", share)
            given += share
    if given > net:
        raise RuntimeError("standing gifts exceed 10 000 bp")
    return given


def process_pool_gift(lg: Ledger, beneficiary: bytes, giver: bytes, share: Wh) -> None:
    """``share`` of ``giver``'s mint for ``beneficiary`` into the gift pool, its giver counted."""
    rows = {row[L.GP_BENEFICIARY]: row for row in lg.ov.get(L.GIFT_POOL) or []}
    row = rows.get(beneficiary) or [beneficiary, 0, []]
    row[L.GP_AMOUNT] += share
    row[L.GP_GIVERS] = sorted(set(row[L.GP_GIVERS]) | {giver})
    rows[beneficiary] = row
    lg.ov.put(L.GIFT_POOL, [rows[k] for k in sorted(rows)])


def process_release_gift_pool(lg: Ledger) -> None:
    """At the treasury epoch, before the split (docs/privacy.md "Public aggregates"):
    each beneficiary whose pooled gifts come from at least ``min_aggregate`` givers
    receives them, so what its public account shows move is a sum over that many
    households; the others wait. A fund no longer in the categories, or an association
    struck off meanwhile, cannot receive: its share goes to the treasury (the givers were
    already debited, and giving it back would show each one's share)."""
    pool = lg.ov.get(L.GIFT_POOL)
    if pool is None:
        return
    least = lg.params.get("min_aggregate", DEFAULT_PARAMS["min_aggregate"])
    funds = get_fund_addresses(lg)
    waiting = []
    for row in pool:
        beneficiary, amount, givers = row
        if len(givers) < least:
            waiting.append(row)
        elif beneficiary in funds:
            process_fund_gift(lg, funds[beneficiary], amount)
        elif is_active_association(lg, beneficiary):
            lg.process_credit(beneficiary, "kwh", amount)
        else:
            lg.process_treasury(KWH, amount)
    if waiting:
        lg.ov.put(L.GIFT_POOL, waiting)
    else:
        lg.ov.delete(L.GIFT_POOL)


def is_gift_recipient(lg: Ledger, addr: bytes) -> bool:
    """An association in force, or a household (present, or whose key moved out or was
    replaced: its account stays with the key, DESIGN §12). Anything else, such as the
    address of a fund no longer in the categories, receives nothing."""
    assoc = get_association(lg, addr)
    if assoc is not None:
        return assoc[2] == 0
    return lg.get_household(addr) is not None or lg.ov.get(L.key_status(addr)) is not None


def get_solidarity_households(lg: Ledger) -> list[bytes]:
    """Households flagged solidarity (UpdateHousehold), sorted by address."""
    return [key[len(L.HOUSEHOLD):] for key, hh in lg.ov.iter_prefix(L.HOUSEHOLD) if hh[L.HH_SOLIDARITY]]


def process_solidarity_gift(lg: Ledger, giver: bytes, share: Wh, needy: list[bytes]) -> Wh:
    """A gift to SOLIDARITY: ``share`` split equally among the flagged households other
    than the giver, largest remainder tie-broken by address (DESIGN §4 step 3). With
    none flagged it stays with the producer. Returns what was given."""
    targets = [addr for addr in needy if addr != giver]
    parts = compute_largest_remainder(share, [(addr, 1) for addr in targets])
    for addr, part in zip(targets, parts):
        if part:
            lg.process_credit(addr, "kwh", part)
    return sum(parts)


def process_matching(lg: Ledger, start: int, entries: list[tuple[bytes, list]], sum_e: Wh, sum_i: Wh) -> Wh:
    # DESIGN §4 settlement step 2: M = min(ΣE, ΣI); consumer i is allocated I_i·M/ΣI
    # (largest remainder, ties by address: step 3) and its kwh balance falls by a_i.
    # Never refused: a debt past the credit limit only blocks voluntary spending.
    m = min(sum_e, sum_i)
    consumers = [(addr, rec) for addr, rec in entries if rec[L.IE_I]]
    shares = compute_largest_remainder(m, [(addr, rec[L.IE_I]) for addr, rec in consumers])
    for (addr, rec), a in zip(consumers, shares):
        if a:
            lg.process_credit(addr, "kwh", -a)
        rec[L.IE_ALLOCATED] = a
        lg.ov.mark(L.key_entry(start, addr))
    return m


def process_contribution(lg: Ledger, addr: bytes, day: int, levy: Wh, minutes: Minutes) -> None:
    """Record levy paid and public service per UTC day, for the "contribution" vote
    weight (DESIGN §5: over the trailing 365 days)."""
    key = L.key_contribution(addr, day)
    rec = lg.ov.get(key)
    if rec is None:
        lg.ov.put(key, [levy, minutes])
    else:
        rec[0] += levy
        rec[1] += minutes
        lg.ov.mark(key)


def get_categories(lg: Ledger) -> list[str]:
    return [name for name, _ in lg.params["allocation_categories"]]


def compute_standing_allocation(stored: list | None, cats: list) -> list[BasisPoints]:
    """``meta/allocation`` ([[name, bp], ...]) in the order of the categories ``cats``."""
    by_name = dict(stored or ())
    if by_name.keys() != {name for name, _ in cats}:
        # The genesis default (or the new default after the categories changed).
        return [bp for _, bp in cats]
    return [by_name[name] for name, _ in cats]


def get_standing_allocation(lg: Ledger) -> list[BasisPoints]:
    return compute_standing_allocation(lg.ov.get(L.META_ALLOCATION), lg.params["allocation_categories"])


def process_epoch(lg: Ledger, events: list, get_ballot_allocation) -> None:
    # DESIGN §4 "Treasury epoch": at each epoch boundary (multiples of
    # allocation_epoch_s) the treasury's kwh is split among the category funds by the
    # standing allocation, with largest-remainder rounding.
    epoch_s = lg.params["allocation_epoch_s"]
    next_epoch = lg.get_meta(L.META_NEXT_EPOCH, 0)
    if lg.now_s < next_epoch:
        return
    process_release_pool(lg)
    process_release_gift_pool(lg)
    allocation = get_ballot_allocation(lg)
    names = get_categories(lg)
    lg.ov.put(L.META_ALLOCATION, [[name, bp] for name, bp in zip(names, allocation)])
    treasury = lg.get_treasury()
    amount = max(treasury[KWH], 0)
    shares = compute_largest_remainder(amount, list(enumerate(allocation)))
    for name, share in zip(names, shares):
        if share:
            fund = lg.ov.get(L.key_fund(name)) or [0, 0, 0]
            fund[0] += share
            fund[1] += share
            lg.ov.put(L.key_fund(name), fund)
    lg.process_treasury(KWH, -amount)
    lg.ov.put(L.META_NEXT_EPOCH, (lg.now_s // epoch_s + 1) * epoch_s)
    process_prune_contributions(lg)
    events.append(EpochRun(lg.now_s // epoch_s * epoch_s, amount, tuple(allocation),
                           tuple(zip(names, shares))))


def get_first_contribution_day(now_s: int) -> int:
    """The first UTC day inside the trailing 365-day window."""
    return max(0, now_s // DAY_S - CONTRIBUTION_DAYS + 1)


def process_prune_contributions(lg: Ledger) -> None:
    """Drop contribution records older than the window (keeps the state bounded)."""
    first = get_first_contribution_day(lg.now_s)
    for key, _ in lg.ov.iter_prefix(L.CONTRIBUTION):
        if L.from_u64(key[4:12]) >= first:
            break
        lg.ov.delete(key)
