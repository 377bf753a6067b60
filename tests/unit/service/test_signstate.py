"""The double-sign record on disk and the sign journal (DESIGN §6, CometBFT privval/file.go)."""

from __future__ import annotations

import os

import pytest

from consensus.privval import INITIAL_SIGN_STATE, SignState
from node.service.errors import ServiceError
from node.service.signstate import (
    SIGN_JOURNAL_FILE, SIGN_STATE_FILE, append_sign_journal, load_sign_state, save_sign_state,
)

STATE = SignState(height=7, round=2, step=3, sign_hash=b"\xab" * 32, locked_round=2, locked_id=b"\x01" * 32)


def test_a_validator_that_never_signed_starts_from_the_initial_record(tmp_path) -> None:
    assert load_sign_state(tmp_path) == INITIAL_SIGN_STATE


def test_saved_record_loads_back_and_is_private(tmp_path) -> None:
    save_sign_state(tmp_path, STATE)
    assert load_sign_state(tmp_path) == STATE
    assert os.stat(tmp_path / SIGN_STATE_FILE).st_mode & 0o077 == 0
    assert not (tmp_path / (SIGN_STATE_FILE + ".tmp")).exists()


def test_invalid_corrupt_record_refuses_to_start(tmp_path) -> None:
    (tmp_path / SIGN_STATE_FILE).write_bytes(STATE.encode()[:-3])
    with pytest.raises(ServiceError, match="corrupt double-sign record"):
        load_sign_state(tmp_path)


def test_journal_appends_one_line_per_signature(tmp_path) -> None:
    append_sign_journal(tmp_path, STATE)
    append_sign_journal(tmp_path, SignState(height=8, round=0, step=1, sign_hash=b"\xcd" * 32,
                                            locked_round=-1, locked_id=None))
    lines = (tmp_path / SIGN_JOURNAL_FILE).read_text().splitlines()
    assert lines == [f"7 2 3 {'ab' * 32}", f"8 0 1 {'cd' * 32}"]
