"""``voisinage consent`` and ``account curve``: bad input is one line, before any request
(the node URL given is closed: a request would fail with "cannot reach")."""

from __future__ import annotations

import pytest

from node.cli import main
from node.home.keyfile import save_key
from wire import Keypair

CLOSED = "http://127.0.0.1:9"


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "household.key"
    save_key(path, Keypair(bytes(range(32))))
    return str(path)


@pytest.mark.parametrize("argv, expected", [
    (["account", "curve", "--from", "21/06/2026", "--to", "2026-06-21"], "--from must be a date YYYY-MM-DD"),
    (["account", "curve", "--from", "2026-06-21", "--to", "2026-06-31"], "--to must be a date YYYY-MM-DD"),
    (["consent", "approve", "--url", "https://elsewhere.example/oauth/authorize?client_id=x", "--yes"],
     f"--url must be {CLOSED}/oauth/authorize?..."),
    (["consent", "approve", "--url", f"{CLOSED}/oauth/token?client_id=x", "--yes"], "--url must be"),
    (["consent", "grants"], "cannot reach the node at"),
    (["consent", "reads"], "cannot reach the node at"),
])
def test_invalid_consent_input_is_one_line(capsys, key_file, argv, expected):
    assert main([*argv, "--key", key_file, "--node", CLOSED]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1


def test_invalid_key_file_is_one_line(capsys, tmp_path):
    assert main(["consent", "log", "--key", str(tmp_path / "none.key"), "--node", CLOSED]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
