"""Erasure of a deregistered household's private data (docs/privacy.md "Erasure").

A ``Deregister`` schedules the erasure of the household's private data
``erasure_after_s`` later (the parameter in force at the Deregister; 2 years by
default, the CNIL's practice for sub-daily meter data). The first block at or past that
time, before its txs, erases from the state every entry the key owns
(tokens/layout.py ``OWNED_AT``: account, commune class balances, key status, gifts,
interval entries, contributions, pending recovery), its sealed data keys of every epoch (``hdk/``: with
them its leaf salt) and those of the keys it moved from (``get_former_keys``: a rotation
or recovery leaves the old key's data keys behind, which open its envelopes in the
blocks), the offers it made, its votes and the delegations that name it;
what its account still holds of kwh and hour goes to the treasury (on a chain that
seals, through the levy pool, so the treasury never moves by one household's balance),
and what it holds
of a commune-defined class is written off that class's supply, so every class's
conservation holds. On a chain that seals, it makes the next rotation of the commune
data key a cut (``meta/cut_due``, tokens/rules_seal.py). The erasure is public: ``erased/`` sha256(key) → [height, unix s], and the key
may never be registered again (``key_erased``): its nonce is gone with its account, so
its old signed txs would replay.

Pure and deterministic: block time and the state alone decide it. What nodes do with
it (drop the opened data key and txs, the archived entries) is node/'s, on the
``HouseholdErased`` event of the committed block.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass

from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.ledger import Ledger
from tokens.sealing import OFFER_MAKER

# genesis.DEFAULT_PARAMS["erasure_after_s"]; a state whose stored parameters predate it
# (a chain made before erasure) reads this default.
DEFAULT_ERASURE_AFTER_S = 2 * 365 * 86_400


@dataclass(frozen=True)
class HouseholdErased:
    """Event: the private data of ``key`` left the state. ``key`` is for the node (its
    caches and archive); the state records only ``key_hash``."""

    key: bytes
    key_hash: bytes
    kwh: int            # what its account held, now the treasury's
    hour: int
    entries: int        # state entries deleted
    former: tuple[bytes, ...] = ()  # the keys it moved from, whose data keys went too
    kind: str = "household_erased"


def compute_key_hash(addr: bytes) -> bytes:
    """What the public ``erased/`` record names: sha256 of the key."""
    return hashlib.sha256(addr).digest()


def get_erasure_after_s(lg: Ledger) -> int:
    return lg.params.get("erasure_after_s", DEFAULT_ERASURE_AFTER_S)


def schedule_erasure(lg: Ledger, addr: bytes) -> int:
    """At Deregister: queue ``addr``'s erasure; returns its time (unix s)."""
    erase_at = lg.now_s + get_erasure_after_s(lg)
    lg.ov.put(L.key_erase_due(erase_at, addr), 1)
    return erase_at


def cancel_erasure(lg: Ledger, addr: bytes, status: list | None) -> None:
    """At a new registration of a deregistered key: its erasure no longer happens."""
    if status is not None and status[0] == L.KS_DEREGISTERED and len(status) > 2:
        lg.ov.delete(L.key_erase_due(status[2], addr))


def get_erasure(lg: Ledger, addr: bytes) -> list | None:
    """[height, unix s] of ``addr``'s erasure, or None."""
    return lg.ov.get(L.key_erased(compute_key_hash(addr)))


def check_not_erased(lg: Ledger, addr: bytes) -> None:
    if get_erasure(lg, addr) is not None:
        raise InvalidTx("key_erased", f"{addr.hex()[:16]}…'s household data was erased: this key may not be "
                                      "registered again (use a new key)")


def process_due_erasures(lg: Ledger, events: list) -> None:
    # docs/privacy.md "Erasure": the first block at or past erase_at erases, before its txs.
    due = []
    for key, _ in lg.ov.iter_prefix(L.ERASE_DUE):
        if L.from_u64(key[len(L.ERASE_DUE):len(L.ERASE_DUE) + 8]) > lg.now_s:
            break
        due.append(key)
    for key in due:
        lg.ov.delete(key)
        events.append(process_erase_household(lg, key[len(L.ERASE_DUE) + 8:]))


def _delete(lg: Ledger, key: bytes) -> int:
    if lg.ov.get(key) is None:
        return 0
    lg.ov.delete(key)
    return 1


def _delete_prefix(lg: Ledger, prefix: bytes, suffix: bytes = b"") -> int:
    keys = [key for key, _ in lg.ov.iter_prefix(prefix) if key.endswith(suffix)]
    for key in keys:
        lg.ov.delete(key)
    return len(keys)


def process_pool_balance(lg: Ledger, addr: bytes, kwh: int, hour: int) -> None:
    """On a chain that seals, what the household still held goes to the treasury through
    the levy pool (docs/privacy.md "Public aggregates"), counted among the producers by
    its key's hash: moved straight in, the treasury's step would be one household's
    balance. Supply still holds, the pooled levy counted (a debt is the pool's to bear
    until the treasury takes it)."""
    if not (kwh or hour):
        return
    pool = lg.ov.get(L.POOL) or [0, 0, 0, [], []]
    pool[L.PL_LEVY] += kwh
    if hour or len(pool) > L.PL_HOUR:
        pool[L.PL_HOUR:] = [(pool[L.PL_HOUR] if len(pool) > L.PL_HOUR else 0) + hour]
    pool[L.PL_PRODUCERS] = sorted(set(pool[L.PL_PRODUCERS]) | {compute_key_hash(addr)})
    lg.ov.put(L.POOL, pool)


def process_hash_pool_keys(lg: Ledger, addr: bytes) -> None:
    """The levy pool counts the household among those its sums come from: by its key's
    hash from now on, still one distinct household."""
    pool = lg.ov.get(L.POOL)
    if pool is not None and (addr in pool[L.PL_PRODUCERS] or addr in pool[L.PL_CONSUMERS]):
        hashed = compute_key_hash(addr)
        for field in (L.PL_PRODUCERS, L.PL_CONSUMERS):
            pool[field] = sorted({hashed if k == addr else k for k in pool[field]})
        lg.ov.put(L.POOL, pool)


def process_hash_pending_corrections(lg: Ledger, addr: bytes) -> None:
    """Corrections waiting for enough households (``icor/``) count it the same way."""
    for key, pending in lg.ov.iter_prefix(L.INTERVAL_CORRECTION):
        if addr in pending[L.IC_HOUSEHOLDS]:
            hashed = compute_key_hash(addr)
            pending[L.IC_HOUSEHOLDS] = sorted({hashed if k == addr else k for k in pending[L.IC_HOUSEHOLDS]})
            lg.ov.put(key, pending)


def process_hash_gift_pool_givers(lg: Ledger, addr: bytes) -> None:
    """Gifts waiting for enough givers (``gpool``) count it the same way."""
    pool = lg.ov.get(L.GIFT_POOL)
    if pool is None or not any(addr in row[L.GP_GIVERS] for row in pool):
        return
    hashed = compute_key_hash(addr)
    for row in pool:
        row[L.GP_GIVERS] = sorted({hashed if k == addr else k for k in row[L.GP_GIVERS]})
    lg.ov.put(L.GIFT_POOL, pool)


def get_former_keys(lg: Ledger, addr: bytes) -> list[bytes]:
    """The keys household ``addr`` moved from (RotateKey, a completed recovery), each
    rotation back to its first key: their ``kst/`` status names the key they moved to.
    One scan of the key statuses per step back (erasures are rare; no reverse index)."""
    former: list[bytes] = []
    wanted = {addr}
    while wanted:
        found = [key[len(L.KEY_STATUS):] for key, status in lg.ov.iter_prefix(L.KEY_STATUS)
                 if status[0] == L.KS_ROTATED and status[1] in wanted]
        wanted = {old for old in found if old not in former and old != addr}
        former.extend(sorted(wanted))
    return former


def get_offer_keys(lg: Ledger, makers: Collection[bytes]) -> list[bytes]:
    """The open offers made by one of ``makers``: their leaves take the maker's salt
    (tokens/sealing.py ``OFFER_MAKER``), so they are hashed anew when it appears or
    leaves. One scan of the offers: a first data key and an erasure are rare."""
    return [key for key, offer in lg.ov.iter_prefix(L.OFFER) if offer[OFFER_MAKER] in makers]


def process_erase_former_keys(lg: Ledger, former: list[bytes]) -> int:
    """A moved household's former keys lose their data keys (and with them its envelopes
    signed under them stop opening: docs/privacy.md "Erasure"). Each keeps its
    ``rotated`` status, so it still signs nothing and is never taken again; that leaf,
    and the offers a former key made before the move (they lapse at their expiry),
    salted with the salt that leaves with the data keys (its own, or the one its salt
    link named: docs/privacy.md "Moving a household to a new key"), are hashed anew
    unsalted."""
    count = 0
    for old in former:
        gone = _delete_prefix(lg, L.HOUSEHOLD_DATA_KEY + old) + _delete_prefix(lg, L.REWRAPPED_DATA_KEY + old)
        gone += _delete(lg, L.key_salt_link(old))
        if gone:
            lg.resalted.add(L.key_status(old))
            lg.resalted.update(get_offer_keys(lg, {old}))
        count += gone
    return count


def process_erase_household(lg: Ledger, addr: bytes) -> HouseholdErased:
    """Erase ``addr``'s private data from the state (module doc); the event says what."""
    ov = lg.ov
    kwh, hour, _ = lg.get_account(addr)
    if ov.get(L.META_DATA_EPOCH) is None:
        # Supply: Σ accounts + treasury + funds per class is unchanged (a debt the household
        # left, a negative balance, is the treasury's to bear).
        lg.process_treasury(L.CLASS_INDEX["kwh"], kwh)
        lg.process_treasury(L.CLASS_INDEX["hour"], hour)
    else:
        process_pool_balance(lg, addr, kwh, hour)
    process_hash_pool_keys(lg, addr)
    process_hash_pending_corrections(lg, addr)
    process_hash_gift_pool_givers(lg, addr)
    # A commune-defined class has no treasury (docs/classes.md): what the household held
    # is written off its supply, so Σ balances = csup/ still holds (for a mutual-credit
    # class, csup/ then records the net written-off balance).
    count = 0
    for key, balance in ov.iter_prefix(L.CLASS_BALANCE + addr):
        supply_key = L.CLASS_SUPPLY + key[len(L.CLASS_BALANCE) + L.ADDR_LEN:]
        supply = (ov.get(supply_key) or 0) - balance
        if supply:
            ov.put(supply_key, supply)
        else:
            ov.delete(supply_key)
        ov.delete(key)
        count += 1
    for key in (L.key_account(addr), L.key_household(addr), L.key_status(addr), L.BALLOT + addr):
        count += _delete(lg, key)
    count += _delete_prefix(lg, L.GIFT + addr)
    count += _delete_prefix(lg, L.DELEGATION + addr)
    count += _delete_prefix(lg, L.RECOVERY_DUE, addr)
    count += _delete_prefix(lg, L.HOUSEHOLD_DATA_KEY + addr)
    count += _delete_prefix(lg, L.REWRAPPED_DATA_KEY + addr)
    count += _delete(lg, L.key_salt_link(addr))
    former = get_former_keys(lg, addr)
    count += process_erase_former_keys(lg, former)
    # The blocks still hold its data keys sealed to the commune key of their epochs: the
    # next rotation must be a cut, after which nobody keeps those epochs (rules_seal).
    if ov.get(L.META_DATA_EPOCH) is not None:
        ov.put(L.META_CUT_DUE, lg.height)
    # Interval entries: those of every interval still in the state (none, unless
    # history_retention_s was raised past erasure_after_s after the Deregister).
    for ikey in ov.iter_committed_keys(L.INTERVAL):
        count += _delete(lg, L.key_entry(L.from_u64(ikey[len(L.INTERVAL):]), addr))
    # Contributions: from the oldest day the state holds to today.
    oldest = next(ov.iter_committed_keys(L.CONTRIBUTION), None)
    if oldest is not None:
        first = L.from_u64(oldest[len(L.CONTRIBUTION):len(L.CONTRIBUTION) + 8])
        for day in range(first, lg.now_s // 86_400 + 1):
            count += _delete(lg, L.key_contribution(addr, day))
    # Records of others' that name it: its offers (and their expiry index), its votes;
    # delegations to it become an explicit "none" (both are abstention, DESIGN §5).
    for key, offer in ov.iter_prefix(L.OFFER):
        if offer[0] == addr:
            ov.delete(key)
            count += 1 + _delete(lg, L.key_offer_expiry(offer[6], key[len(L.OFFER):]))
    count += _delete_prefix(lg, L.VOTE, addr)
    for key, to in ov.iter_prefix(L.DELEGATION):
        if to == addr:
            ov.put(key, b"")
    key_hash = compute_key_hash(addr)
    ov.put(L.key_erased(key_hash), [lg.height, lg.now_s])
    return HouseholdErased(addr, key_hash, kwh, hour, count, tuple(former))


__all__ = ["HouseholdErased", "cancel_erasure", "check_not_erased", "compute_key_hash", "get_erasure",
           "get_offer_keys", "process_due_erasures", "schedule_erasure"]
