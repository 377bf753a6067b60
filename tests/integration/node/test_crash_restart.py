"""A validator killed with SIGKILL mid-run restarts, catches up on the
same blocks and never double-signs (DESIGN §6 "Double-sign protection", §8)."""

from __future__ import annotations

import signal

from tests.integration.node.sigkill_flow import check_no_double_sign, find_double_signs, read_journal, run_flow
from tests.support.nodes import CONVERGE_S
from tests.support.wait import wait_for

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


def test_all_validators_killed_after_prevoting_resume_the_height(cluster_of) -> None:
    """A power cut of every validator while at least 2 of 4 have prevoted: none may prevote
    again at that round, so without their old messages (ownlog.py) the height never ends."""
    cluster = cluster_of(4)
    for name in cluster.validator_names:
        cluster.node(name, "--sign-journal")
    nodes = cluster.start(*cluster.validator_names)
    cluster.wait_height(3, nodes)
    wait_for(lambda: sum(is_last_signature_a_prevote(n.home) for n in nodes) >= 2, CONVERGE_S,
             "two validators to have just prevoted", cluster.logs, poll_s=0.001)
    for node in nodes:
        node.signal(signal.SIGKILL)
    assert [node.wait() for node in nodes] == [-9] * 4
    for node in nodes:
        node.start()
    base = max(node.wait_ready()["height"] for node in nodes)
    cluster.wait_height(base + 2, nodes)
    cluster.assert_agree(nodes)
    resumed = [n for n in nodes if "signed before the restart" in n.log_path.read_text()]
    assert len(resumed) >= 2, cluster.logs()
    for node in nodes:
        assert not find_double_signs(read_journal(node.home)), node.name


def is_last_signature_a_prevote(home) -> bool:
    rows = read_journal(home)
    return bool(rows) and rows[-1][2] == 2
