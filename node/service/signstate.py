"""The double-sign record on disk (DESIGN §6; CometBFT privval/file.go).

The engine's ``PersistBeforeSign`` effect lands here: the record is written to a
temporary file, fsynced, renamed over the old one and the directory fsynced, all
before the signed message that follows it is handed to the network.
"""

from __future__ import annotations

import os
from pathlib import Path

from consensus.block import Commit
from consensus.privval import INITIAL_SIGN_STATE, SignState, check_record_fresh, compute_reset_state
from node.service.errors import ServiceError
from wire import MAX_BLOCK_BYTES, DecodeError, decode
from wire.units import Height

SIGN_STATE_FILE = "sign_state.bin"
SIGN_JOURNAL_FILE = "sign_journal.log"
# How far below the stored height to look for this key's last precommit: a validator
# that was away longer than this has no signature there that a stale record could repeat.
SIGNED_LOOKBACK = 10_000
SIGN_STATE_EXIT = 4


class SignStateRefused(ServiceError):
    """The validator will not start: its double-sign record is missing or stale."""

    exit_code = SIGN_STATE_EXIT


def load_sign_state(home: Path) -> SignState:
    """The last signed (h, r, s) of this validator; the initial state if it never signed."""
    path = Path(home) / SIGN_STATE_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return INITIAL_SIGN_STATE
    except OSError as exc:
        raise ServiceError(f"cannot read {path}: {exc.strerror}") from None
    try:
        state = decode(data, SignState)
    except DecodeError as exc:
        # Never guess: signing again without the record could equivocate.
        raise ServiceError(f"corrupt double-sign record {path}: {exc.reason}; "
                       "restore it from a backup before starting this validator") from None
    return state


def save_sign_state(home: Path, state: SignState) -> None:
    """Durably replace the record: after this returns, a crash cannot lose it."""
    write_durably(Path(home) / SIGN_STATE_FILE, state.encode())


def write_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temporary file, fsync, rename, fsync of the directory."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def append_sign_journal(home: Path, state: SignState) -> None:
    """Audit trail (``node run --sign-journal``): one line "height round step sign_hash"
    per signature, appended after the record is saved and before the message is sent,
    so that every signature that ever left the process is listed, across restarts."""
    line = f"{state.height} {state.round} {state.step} {state.sign_hash.hex()}\n".encode()
    fd = os.open(Path(home) / SIGN_JOURNAL_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def find_signed_height(store, key: bytes) -> Height | None:
    """The highest stored commit holding ``key``'s precommit, looking SIGNED_LOOKBACK down."""
    top = store.height()
    for height in range(top, max(0, top - SIGNED_LOOKBACK), -1):
        raw = store.commit(height)
        if raw is None:
            break
        if any(sig.validator == key for sig in decode(raw, Commit, MAX_BLOCK_BYTES).sigs):
            return Height(height)
    return None


def start_record_if_missing(home: Path) -> bool:
    """A running full node just became a validator: write the initial record now, so
    that its restart before its first vote is not refused as a lost record (a missing
    file always means a lost one). Returns whether it wrote one; an existing record
    (a validator removed and added again) is kept."""
    if (Path(home) / SIGN_STATE_FILE).exists():
        return False
    save_sign_state(home, INITIAL_SIGN_STATE)
    return True


def prepare_sign_state(home: Path, store, key: bytes, is_validator: bool, reset_at: int | None, *,
                       new_home: bool = False) -> None:
    """Refuse to start a validator whose record is missing or older than its store, saying
    how to recover; ``reset_at`` (the operator's explicit --reset-sign-state-at-height)
    writes a fresh record that signs nothing below that height. ``new_home``: the store was
    empty at this start (it was just filled by state sync, or holds only genesis)."""
    signed = find_signed_height(store, key)
    if reset_at is not None:
        floor = max(store.height(), signed or 0) + 1
        if reset_at < floor:
            raise SignStateRefused(f"--reset-sign-state-at-height {reset_at} is too low: this store is at "
                                   f"height {store.height()}; give a height no validator has reached, "
                                   f"at least {floor} (the network's height + 2 is safe)")
        save_sign_state(home, compute_reset_state(Height(reset_at)))
        return
    present = (Path(home) / SIGN_STATE_FILE).exists()
    if not present and is_validator and (store.height() == 0 or new_home):
        # A new validator: its record exists from its first start, so that a later
        # missing file always means a lost one.
        save_sign_state(home, INITIAL_SIGN_STATE)
        return
    verdict = check_record_fresh(load_sign_state(home) if present else None, signed, is_validator)
    if verdict.allow:
        return
    what = (f"{SIGN_STATE_FILE} is missing" if verdict.reason == "missing" else
            f"{SIGN_STATE_FILE} (height {load_sign_state(home).height}) is older than the store, "
            f"which holds this validator's precommit at height {signed}")
    raise SignStateRefused(f"refusing to sign: {what} in {home} (restored from a backup?); copy back this "
                           "validator's latest sign_state.bin, or, if it is lost, start once with "
                           "--reset-sign-state-at-height H where H is above every height it may have signed "
                           "(the network's current height + 2)")
