"""Membership changes (DESIGN §12): Deregister (moving out), RotateKey, RecoverKey and
CancelRecovery, and the completion of due recoveries at the start of a block.

A key's status lives under ``kst/`` (tokens/layout.py): a household key under
recovery may sign nothing but CancelRecovery, a rotated key signs nothing, and a
deregistered key keeps its account (it may still transfer what it holds, and may be
registered again). Rotation and a completed recovery are one move,
``process_move_household``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.indexkeys import get_resalted_by_prm, key_meter_of, key_prm_of
from tokens.ledger import Ledger
from tokens.rules_erasure import check_not_erased, schedule_erasure
from tokens.rules_household import check_key_not_reserved
from tokens.rules_seal import get_owned_keys
from tokens.sealing import get_salt_source
from tokens.settlement import DAY_S, get_first_contribution_day
from tokens.txs import CancelRecovery, Deregister, RecoverKey, RotateKey, Tx

FRESH_ACCOUNT = [0, 0, 0]


@dataclass(frozen=True)
class KeyMoved:
    """Event: household ``old`` now lives under ``new`` (a rotation or a completed recovery)."""

    old: bytes
    new: bytes
    recovered: bool
    kind: str = "key_moved"


@dataclass(frozen=True)
class RecoveryDropped:
    """Event: a due recovery could not complete because its new key was taken meanwhile."""

    old: bytes
    new: bytes
    kind: str = "recovery_dropped"


def get_key_status(lg: Ledger, addr: bytes) -> list | None:
    return lg.ov.get(L.key_status(addr))


def is_former_household(lg: Ledger, addr: bytes) -> bool:
    status = get_key_status(lg, addr)
    return status is not None and status[0] == L.KS_DEREGISTERED


def check_signers_active(lg: Ledger, tx: Tx) -> None:
    # DESIGN §12: during a recovery's delay the old key may only cancel it; a rotated
    # key signs nothing. Checked for every signer of every tx, verified or not.
    for field, _ in tx.SIGNERS:
        key = getattr(tx, field)
        status = get_key_status(lg, key)
        if status is None:
            continue
        if status[0] == L.KS_ROTATED:
            raise InvalidTx("key_rotated", f"{key.hex()[:16]}… was replaced by {status[1].hex()[:16]}…")
        if status[0] == L.KS_RECOVERING and not isinstance(tx, CancelRecovery):
            raise InvalidTx("recovery_pending", f"{key.hex()[:16]}… is being recovered: it may only cancel")


def check_key_unused(lg: Ledger, key: bytes) -> None:
    # A new key must be fresh, so that nothing it already holds or signed mixes with
    # what it takes over: no household, account, status or registrar record.
    check_key_not_reserved(key)
    check_not_erased(lg, key)
    acct = lg.ov.get(L.key_account(key))
    if (lg.get_household(key) is not None or (acct is not None and acct != FRESH_ACCOUNT)
            or get_key_status(lg, key) is not None or lg.ov.get(L.key_registrar(key)) is not None):
        raise InvalidTx("key_in_use", f"{key.hex()[:16]}… is already known to the ledger")


def get_open_proposal_ids(lg: Ledger) -> list[bytes]:
    return [key[len(L.PENDING) + 8:] for key, _ in lg.ov.iter_prefix(L.PENDING)]


def get_interval_starts(lg: Ledger) -> list[int]:
    """Every interval still in the state, open or settled (at most history_retention_s of them)."""
    return [L.from_u64(key[len(L.INTERVAL):]) for key, _ in lg.ov.iter_prefix(L.INTERVAL)]


def process_rename(lg: Ledger, old_key: bytes, new_key: bytes) -> None:
    """Move one record to another key (nothing if absent)."""
    value = lg.ov.get(old_key)
    if value is not None:
        lg.ov.delete(old_key)
        lg.ov.put(new_key, value)


def process_rename_prefix(lg: Ledger, old_prefix: bytes, new_prefix: bytes) -> None:
    for key, value in lg.ov.iter_prefix(old_prefix):
        lg.ov.delete(key)
        lg.ov.put(new_prefix + key[len(old_prefix):], value)


def process_votes(lg: Ledger, old: bytes, new: bytes | None) -> None:
    """Votes of ``old`` on open proposals move to ``new``, or end (``new`` None)."""
    for pid in get_open_proposal_ids(lg):
        if new is None:
            lg.ov.delete(L.key_vote(pid, old))
        else:
            process_rename(lg, L.key_vote(pid, old), L.key_vote(pid, new))


def process_gifts_to(lg: Ledger, old: bytes, new: bytes | None) -> None:
    """Standing gifts to ``old`` now go to ``new``, or end (``new`` None). One scan of
    every gift: membership changes are rare, and no reverse index is kept."""
    for key, gift in lg.ov.iter_prefix(L.GIFT):
        if gift[0] != old:
            continue
        if new is None:
            lg.ov.delete(key)
        else:
            gift[0] = new
            lg.ov.mark(key)


def process_delegations_to(lg: Ledger, old: bytes, new: bytes) -> None:
    """Delegations to ``old`` now name ``new`` (one scan, as for gifts)."""
    for key, to in lg.ov.iter_prefix(L.DELEGATION):
        if to == old:
            lg.ov.put(key, new)


def process_contributions(lg: Ledger, old: bytes, new: bytes) -> None:
    # DESIGN §5 Weights: the trailing 365 days of contributions follow the household.
    for day in range(get_first_contribution_day(lg.now_s), lg.now_s // DAY_S + 1):
        rec = lg.ov.get(L.key_contribution(old, day))
        if rec is not None:
            lg.ov.delete(L.key_contribution(old, day))
            lg.ov.put(L.key_contribution(new, day), rec)


def process_move_household(lg: Ledger, old: bytes, new: bytes) -> None:
    """DESIGN §12: the household, its meter and PRM, balances, gifts (given and
    received), ballot, votes on open proposals, delegations (given and received),
    energy in unsettled intervals and contributions move from ``old`` to ``new``.
    ``old`` keeps only a ``rotated`` status. Open offers made by or reserved for
    ``old`` can no longer be accepted and lapse at their expiry."""
    hh = lg.ov.get(L.key_household(old))
    process_rename(lg, L.key_household(old), L.key_household(new))
    lg.ov.put(key_meter_of(lg, hh[L.HH_METER]), new)
    lg.ov.put(key_prm_of(lg, hh[L.HH_PRM]), new)
    lg.resalted.update(get_resalted_by_prm(lg, hh[L.HH_PRM]))
    kwh, hour, _ = lg.get_account(old)
    lg.ov.delete(L.key_account(old))
    lg.ov.put(L.key_account(new), [kwh, hour, 0])
    process_rename_prefix(lg, L.GIFT + old, L.GIFT + new)
    process_rename_prefix(lg, L.CLASS_BALANCE + old, L.CLASS_BALANCE + new)
    process_rename_prefix(lg, L.DELEGATION + old, L.DELEGATION + new)
    process_rename(lg, L.BALLOT + old, L.BALLOT + new)
    process_votes(lg, old, new)
    process_gifts_to(lg, old, new)
    process_delegations_to(lg, old, new)
    # Open intervals' energy, and settled intervals' entries still in the state, so that
    # the household's reconciliation (docs/reconciliation.md) finds them under its key.
    for start in get_interval_starts(lg):
        process_rename(lg, L.key_entry(start, old), L.key_entry(start, new))
    process_contributions(lg, old, new)
    lg.ov.put(L.key_status(old), [L.KS_ROTATED, new, lg.height])
    process_salt_link(lg, old, new)


def process_salt_link(lg: Ledger, old: bytes, new: bytes) -> None:
    """On a chain that seals, ``new`` takes the salt of ``old`` until it publishes a data
    key of its own (docs/privacy.md "Moving a household to a new key"): without it, the
    entries that just moved would be unsalted leaves whose value hashes a proof of a
    neighbouring key shows. The link names the key that holds the salt (``old``, or what
    ``old``'s own link names when it moved before publishing one), so ``read_salt`` needs
    one step. What ``new`` already held (a fresh account, class balances sent to it) is
    hashed anew with that salt; what moved is written in this block anyway."""
    if lg.ov.get(L.META_DATA_EPOCH) is None:
        return      # a clear chain: no salts, and its state root stays as it was
    source = get_salt_source(lg.ov.get, old)
    if source is None:
        return      # ``old`` had no salt either: nothing to inherit
    lg.ov.put(L.key_salt_link(new), source[0])
    lg.resalted.update(get_owned_keys(lg, new))


def process_rotate_key(lg: Ledger, tx: RotateKey, tx_id: bytes) -> None:
    # DESIGN §12: a household moves to a new key; both keys sign.
    lg.require_household(tx.signer)
    check_key_unused(lg, tx.new_key)
    lg.process_nonce(tx.signer, tx.nonce)
    process_move_household(lg, tx.signer, tx.new_key)
    lg.events.append(KeyMoved(tx.signer, tx.new_key, False))


def process_recover_key(lg: Ledger, tx: RecoverKey, tx_id: bytes) -> None:
    # DESIGN §12: the registrar starts a recovery; it completes after recovery_delay_s
    # (the delay in force now), unless the old key cancels it.
    lg.require_registrar(tx.signer)
    lg.require_household(tx.key, "unknown_household")
    if get_key_status(lg, tx.key) is not None:
        raise InvalidTx("recovery_pending", f"{tx.key.hex()[:16]}… is already being recovered")
    check_key_unused(lg, tx.new_key)
    lg.process_nonce(tx.signer, tx.nonce)
    completes_at = lg.now_s + lg.params["recovery_delay_s"]
    lg.ov.put(L.key_status(tx.key), [L.KS_RECOVERING, tx.new_key, lg.now_s, completes_at])
    lg.ov.put(L.key_recovery_due(completes_at, tx.key), 1)


def process_cancel_recovery(lg: Ledger, tx: CancelRecovery, tx_id: bytes) -> None:
    # DESIGN §12: the old key cancels a pending recovery of itself.
    status = get_key_status(lg, tx.signer)
    if status is None or status[0] != L.KS_RECOVERING:
        raise InvalidTx("no_recovery", f"no recovery of {tx.signer.hex()[:16]}… is pending")
    lg.process_nonce(tx.signer, tx.nonce)
    process_end_recovery(lg, tx.signer, status)


def process_end_recovery(lg: Ledger, old: bytes, status: list) -> None:
    lg.ov.delete(L.key_status(old))
    lg.ov.delete(L.key_recovery_due(status[3], old))


def process_due_recoveries(lg: Ledger, events: list) -> None:
    # DESIGN §12: a recovery completes in the first block whose time is at or past its
    # start + delay, before the block's txs (the new key may act in that block).
    due = []
    for key, _ in lg.ov.iter_prefix(L.RECOVERY_DUE):
        if L.from_u64(key[len(L.RECOVERY_DUE):len(L.RECOVERY_DUE) + 8]) > lg.now_s:
            break
        due.append(key[len(L.RECOVERY_DUE) + 8:])
    for old in due:
        status = get_key_status(lg, old)
        new = status[1]
        process_end_recovery(lg, old, status)
        try:
            check_key_unused(lg, new)
        except InvalidTx:
            events.append(RecoveryDropped(old, new))
            continue
        process_move_household(lg, old, new)
        events.append(KeyMoved(old, new, True))


def process_deregister(lg: Ledger, tx: Deregister, tx_id: bytes) -> None:
    # DESIGN §12 moving out: the registrar ends a household; its account stays with its key.
    lg.require_registrar(tx.signer)
    lg.require_household(tx.key, "unknown_household")
    lg.process_nonce(tx.signer, tx.nonce)
    process_end_household(lg, tx.key)


def process_end_household(lg: Ledger, key: bytes) -> None:
    """The household record, its meter and PRM entries, its gifts (given and received),
    ballot, delegations and votes on open proposals, and a pending recovery all end, so
    the next occupant may register the same meter and PRM in the next block. Delegations
    to it now end at a non-voter: abstention (DESIGN §5). Its account stays until its
    private data is erased, ``erasure_after_s`` later (tokens/rules_erasure.py)."""
    hh = lg.ov.get(L.key_household(key))
    lg.ov.delete(L.key_household(key))
    lg.ov.delete(key_meter_of(lg, hh[L.HH_METER]))
    lg.ov.delete(key_prm_of(lg, hh[L.HH_PRM]))
    lg.resalted.update(get_resalted_by_prm(lg, hh[L.HH_PRM]))
    for gift_key, _ in lg.ov.iter_prefix(L.GIFT + key):
        lg.ov.delete(gift_key)
    process_gifts_to(lg, key, None)
    for dlg_key, _ in lg.ov.iter_prefix(L.DELEGATION + key):
        lg.ov.delete(dlg_key)
    lg.ov.delete(L.BALLOT + key)
    process_votes(lg, key, None)
    status = get_key_status(lg, key)
    if status is not None:
        process_end_recovery(lg, key, status)
    lg.get_account(key)
    lg.ov.mark(L.key_account(key))
    lg.ov.put(L.key_status(key), [L.KS_DEREGISTERED, lg.height, schedule_erasure(lg, key)])
