"""consensus/step.py: the steps of a height, their order and their numbers on disk."""

from __future__ import annotations

from consensus.step import NOTHING_SIGNED, SIGNING_STEPS, Step


def test_a_height_runs_through_the_steps_in_number_order():
    assert sorted(Step) == [Step.IDLE, Step.WAIT, Step.PROPOSE, Step.PREVOTE, Step.PRECOMMIT, Step.DECIDED]


def test_signing_steps_keep_the_numbers_of_the_sign_record_file():
    # sign_state.bin stores these numbers: renumbering would reorder old records.
    assert (NOTHING_SIGNED, *SIGNING_STEPS) == (0, 1, 2, 3)
    assert (Step.PROPOSE, Step.PREVOTE, Step.PRECOMMIT) == SIGNING_STEPS


def test_only_signing_steps_are_above_nothing_signed_and_fit_the_record():
    # SignState.step is an unsigned field: the steps at which nothing is signed never go there.
    assert [s for s in Step if s > NOTHING_SIGNED and s < Step.DECIDED] == list(SIGNING_STEPS)
    assert all(s < NOTHING_SIGNED for s in (Step.IDLE, Step.WAIT))
