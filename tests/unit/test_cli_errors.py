"""node/cli.py: every room's own error reaches a person as one line, even inside a nursery's group."""

from __future__ import annotations

import pytest

from node.cli import ONE_LINE_ERRORS, main
from node.errors import find_only
from node.home.errors import HomeError
from node.store import StoreLocked


def test_a_home_error_from_a_command_is_one_line(tmp_path, capsys):
    assert main(["node", "verify", "--home", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "home directory not found" in err and err.count("\n") == 1


@pytest.mark.parametrize("args,expected", [
    (["--pruning", "full"], "--pruning must be one of archive, default"),
    (["--keep-states", "1"], "--keep-states must be at least 2"),
    (["--keep-blocks", "-1"], "--keep-blocks must be 0"),
    (["--keep-days", "0"], "--keep-days must be at least 1"),
    (["--archive-keep-days", "-3"], "--archive-keep-days must be 0"),
])
def test_invalid_node_run_pruning_is_one_line(tmp_path, capsys, args, expected):
    """Refused before the home is even looked at: nothing is opened or written."""
    assert main(["node", "run", "--home", str(tmp_path / "missing"), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1
    assert not (tmp_path / "missing").exists()


def test_find_only_unwraps_nested_groups_holding_one_setup_error():
    inner = StoreLocked("db is locked")
    group = BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [inner])])
    assert find_only(group, ONE_LINE_ERRORS) is inner


@pytest.mark.parametrize("errors", [[StoreLocked("x"), ValueError("bug")], [HomeError("a"), HomeError("b")]])
def test_invalid_group_with_a_bug_or_two_errors_is_not_one_line(errors):
    # A programming error must keep its traceback; two errors are not one line's story.
    assert find_only(BaseExceptionGroup("g", errors), ONE_LINE_ERRORS) is None
