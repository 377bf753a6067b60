"""Issue 4 item 7: a validator killed with SIGKILL mid-run restarts, catches up on the
same blocks and never double-signs (DESIGN §6 "Double-sign protection", §8)."""

from __future__ import annotations

from tests.integration.node.sigkill_flow import check_no_double_sign, find_double_signs, run_flow

KILLS = 3


def test_validator_killed_mid_run_catches_up_and_never_double_signs(cluster_of) -> None:
    cluster = cluster_of(4)
    transcript: list[str] = []
    result = run_flow(cluster, KILLS, transcript.append)
    assert result["victim"].exit_codes[:KILLS] == [-9] * KILLS
    check_no_double_sign(cluster, result, transcript.append)
    assert len(transcript) >= 2 * KILLS + 4, transcript


def test_invalid_journal_with_two_hashes_at_one_step_is_a_double_sign() -> None:
    rows = [(5, 0, 2, "aa"), (5, 0, 3, "bb"), (6, 1, 2, "cc"), (6, 1, 2, "cc"), (6, 1, 2, "dd")]
    assert find_double_signs(rows) == {(6, 1, 2): {"cc", "dd"}}
    assert find_double_signs(rows[:4]) == {}
