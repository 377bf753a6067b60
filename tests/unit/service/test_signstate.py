"""The double-sign record on disk and the sign journal (DESIGN §6, CometBFT privval/file.go)."""

from __future__ import annotations

import os

import pytest

from consensus.block import Commit, CommitSig
from consensus.privval import INITIAL_SIGN_STATE, SignState
from node.service.errors import ServiceError
from node.service.signstate import (
    SIGN_JOURNAL_FILE, SIGN_STATE_EXIT, SIGN_STATE_FILE, SignStateRefused, append_sign_journal, load_sign_state,
    prepare_sign_state, save_sign_state, start_record_if_missing,
)
from node.store import Store

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


# --- prepare_sign_state: a validator starts only with a record as new as its store ---

KEY = b"\x07" * 32
OTHER = b"\x08" * 32


def stored(tmp_path, heights_signed: set[int], top: int) -> Store:
    """A real store at height ``top`` whose commits carry KEY's precommit at ``heights_signed``."""
    store = Store.open(tmp_path / "db")
    store.init_genesis(b"\x01" * 32, {b"k": b"v"}, b"\x02" * 32)
    for h in range(1, top + 1):
        signers = (KEY, OTHER) if h in heights_signed else (OTHER,)
        commit = Commit(height=h, round=0, block_id=h.to_bytes(32, "big"),
                        sigs=tuple(CommitSig(validator=k, sig=bytes(64)) for k in signers))
        store.commit_block(h, h.to_bytes(32, "big"), b"block", commit.encode(), {}, b"\x02" * 32)
    return store


def test_a_new_validator_gets_its_record_at_its_first_start(tmp_path) -> None:
    with stored(tmp_path, set(), 0) as store:
        prepare_sign_state(tmp_path, store, KEY, True, None)
    assert load_sign_state(tmp_path) == INITIAL_SIGN_STATE and (tmp_path / SIGN_STATE_FILE).exists()


def test_invalid_validator_without_its_record_refuses_to_start(tmp_path) -> None:
    with stored(tmp_path, {2}, 3) as store, pytest.raises(SignStateRefused, match="missing.*--reset-sign-state"):
        prepare_sign_state(tmp_path, store, KEY, True, None)
    assert SignStateRefused("x").exit_code == SIGN_STATE_EXIT != 1
    assert not (tmp_path / SIGN_STATE_FILE).exists()


def test_invalid_record_older_than_the_stored_precommits_refuses_to_start(tmp_path) -> None:
    save_sign_state(tmp_path, STATE)            # height 7
    with stored(tmp_path, {8}, 9) as store, pytest.raises(SignStateRefused, match="older than the store.*height 8"):
        prepare_sign_state(tmp_path, store, KEY, True, None)
    assert load_sign_state(tmp_path) == STATE


def test_a_household_node_that_never_signed_needs_no_record(tmp_path) -> None:
    with stored(tmp_path, set(), 3) as store:
        prepare_sign_state(tmp_path, store, KEY, False, None)
    assert not (tmp_path / SIGN_STATE_FILE).exists()


def test_reset_writes_a_record_at_the_given_height_only_above_the_store(tmp_path) -> None:
    with stored(tmp_path, {3}, 3) as store:
        with pytest.raises(SignStateRefused, match="too low.*at least 4"):
            prepare_sign_state(tmp_path, store, KEY, True, 3)
        prepare_sign_state(tmp_path, store, KEY, True, 6)
        assert load_sign_state(tmp_path).height == 6
        prepare_sign_state(tmp_path, store, KEY, True, None)     # the record now starts it


def test_a_full_node_promoted_to_validator_starts_its_record_at_once(tmp_path) -> None:
    assert start_record_if_missing(tmp_path)
    assert load_sign_state(tmp_path) == INITIAL_SIGN_STATE
    with stored(tmp_path, set(), 3) as store:      # restarted before its first vote
        prepare_sign_state(tmp_path, store, KEY, True, None)
    save_sign_state(tmp_path, STATE)
    assert not start_record_if_missing(tmp_path)   # a validator added again keeps its record
    assert load_sign_state(tmp_path) == STATE


def test_a_home_just_filled_by_state_sync_starts_a_new_validators_record(tmp_path) -> None:
    with stored(tmp_path, set(), 5) as store:
        with pytest.raises(SignStateRefused, match="missing"):
            prepare_sign_state(tmp_path, store, KEY, True, None)
        prepare_sign_state(tmp_path, store, KEY, True, None, new_home=True)
    assert load_sign_state(tmp_path) == INITIAL_SIGN_STATE
