import hashlib

from hypothesis import given, strategies as st

from consensus.privval import INITIAL_SIGN_STATE, SignState, Step, check_hrs
from wire import decode

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
    decision = check_hrs(state(5, 2, Step.PREVOTE), 5, 2, Step.PREVOTE, H2)
    assert not decision.allow
    assert "different bytes" in decision.reason


def test_invalid_lower_hrs():
    last = state(5, 2, Step.PREVOTE)
    for h, r, s in [(5, 2, Step.PROPOSE), (5, 1, Step.PRECOMMIT), (4, 9, Step.PRECOMMIT)]:
        decision = check_hrs(last, h, r, s, H1)
        assert not decision.allow
        assert "below" in decision.reason


def test_sign_state_roundtrip():
    s = SignState(height=3, round=1, step=3, sign_hash=H1, locked_round=1, locked_id=H2)
    assert decode(s.encode(), SignState) == s
    assert decode(INITIAL_SIGN_STATE.encode(), SignState) == INITIAL_SIGN_STATE


hrs = st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(1, 3))


@given(hrs, hrs, st.booleans())
def test_rule_is_the_lexicographic_order(old, new, same_bytes):
    last = state(*old)
    decision = check_hrs(last, *new, H1 if same_bytes else H2)
    assert decision.allow == (new > old or (new == old and same_bytes))
