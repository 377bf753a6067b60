"""The double-sign record on disk (DESIGN §6; CometBFT privval/file.go).

The engine's ``PersistBeforeSign`` effect lands here: the record is written to a
temporary file, fsynced, renamed over the old one and the directory fsynced, all
before the signed message that follows it is handed to the network.
"""

from __future__ import annotations

import os
from pathlib import Path

from consensus.privval import INITIAL_SIGN_STATE, SignState
from node.service.errors import ServiceError
from wire import DecodeError, decode

SIGN_STATE_FILE = "sign_state.bin"
SIGN_JOURNAL_FILE = "sign_journal.log"


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
