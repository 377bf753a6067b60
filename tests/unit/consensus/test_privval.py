import hashlib

import pytest
from hypothesis import given, strategies as st

from consensus.privval import (
    INITIAL_SIGN_STATE, SignState, check_hrs, check_record_fresh, compute_reset_state, get_sign_step,
)
from consensus.step import NOTHING_SIGNED, SIGNING_STEPS, Step
from consensus.vote import PRECOMMIT, PREVOTE
from tests.unit.consensus.harness import KEYS, make_block, signed_proposal, signed_vote
from wire import decode
from wire.units import Height, Round

H1 = hashlib.sha256(b"one").digest()
H2 = hashlib.sha256(b"two").digest()


def state(h, r, s, sign_hash=H1):
    return SignState(height=h, round=r, step=s, sign_hash=sign_hash, locked_round=-1, locked_id=None)


def test_first_signature_is_allowed():
    assert check_hrs(INITIAL_SIGN_STATE, 1, 0, Step.PROPOSE, H1).allow


def test_higher_step_round_or_height_is_allowed():
    last = state(5, 2, Step.PREVOTE)
    assert check_hrs(last, 5, 2, Step.PRECOMMIT, H2).allow
    assert check_hrs(last, 5, 3, Step.PROPOSE, H2).allow
    assert check_hrs(last, 6, 0, Step.PREVOTE, H2).allow


def test_same_bytes_at_same_hrs_may_be_signed_again():
    assert check_hrs(state(5, 2, Step.PREVOTE), 5, 2, Step.PREVOTE, H1).allow


def test_invalid_different_bytes_at_same_hrs():
    verdict = check_hrs(state(5, 2, Step.PREVOTE), 5, 2, Step.PREVOTE, H2)
    assert not verdict.allow
    assert "different bytes" in verdict.reason


@pytest.mark.parametrize("h, r, s", [(5, 2, Step.PROPOSE), (5, 1, Step.PRECOMMIT), (4, 9, Step.PRECOMMIT)])
def test_invalid_lower_hrs(h, r, s):
    verdict = check_hrs(state(5, 2, Step.PREVOTE), h, r, s, H1)
    assert not verdict.allow
    assert "below" in verdict.reason


@pytest.mark.parametrize("msg, step", [
    (signed_proposal(KEYS[1], 1, 0, make_block(1, None, KEYS[1].public)), Step.PROPOSE),
    (signed_vote(KEYS[1], PREVOTE, 1, 0, None), Step.PREVOTE),
    (signed_vote(KEYS[1], PRECOMMIT, 1, 0, None), Step.PRECOMMIT),
], ids=["proposal", "prevote", "precommit"])
def test_sign_step_of_each_signed_message(msg, step):
    assert get_sign_step(msg) is step


def test_a_stored_record_reads_back_with_the_same_step():
    # Bytes of a sign_state.bin record (h 7, r 2, prevote): the step numbers are a file format.
    stored = bytes.fromhex("98ad63732f7369676e2d737461746501070202c4207692c3ad3540bb803c020b3aee66cd"
                           "8887123234ea0c6e7143c0add73ff431edffc0")
    record = decode(stored, SignState)
    assert (record.height, record.round, Step(record.step)) == (7, 2, Step.PREVOTE)
    assert state(7, 2, Step.PREVOTE).encode() == stored
    assert not check_hrs(record, 7, 2, Step.PROPOSE, H1).allow


def test_nothing_signed_is_below_every_signing_step():
    assert INITIAL_SIGN_STATE.step == NOTHING_SIGNED
    assert all(check_hrs(INITIAL_SIGN_STATE, 0, 0, step, H2).allow for step in SIGNING_STEPS)


def test_sign_state_roundtrip():
    s = SignState(height=3, round=1, step=3, sign_hash=H1, locked_round=1, locked_id=H2)
    assert decode(s.encode(), SignState) == s
    assert decode(INITIAL_SIGN_STATE.encode(), SignState) == INITIAL_SIGN_STATE


hrs = st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(1, 3))


@given(hrs, hrs, st.booleans())
def test_rule_is_the_lexicographic_order(old, new, same_bytes):
    last = state(*old)
    verdict = check_hrs(last, *new, H1 if same_bytes else H2)
    assert verdict.allow == (new > old or (new == old and same_bytes))


# --- a validator's start: its record must exist and be at least as new as its store ---

def test_record_fresh_when_at_or_above_the_last_stored_precommit() -> None:
    record = compute_reset_state(Height(9))
    assert check_record_fresh(record, Height(9), True).allow
    assert check_record_fresh(record, None, True).allow


def test_invalid_record_older_than_the_store() -> None:
    verdict = check_record_fresh(compute_reset_state(Height(3)), Height(9), True)
    assert not verdict.allow and verdict.reason == "older"


def test_invalid_missing_record_of_a_validator() -> None:
    assert check_record_fresh(None, None, True).reason == "missing"
    assert check_record_fresh(None, Height(4), False).reason == "missing"
    assert check_record_fresh(None, None, False).allow


def test_reset_record_refuses_everything_below_its_height() -> None:
    record = compute_reset_state(Height(10))
    assert not check_hrs(record, Height(9), Round(5), Step.PRECOMMIT, b"\x01" * 32).allow
    assert check_hrs(record, Height(10), Round(0), Step.PROPOSE, b"\x01" * 32).allow
