"""Token classes on the command line (docs/classes.md): ``genesis new --class/--classes``,
``registrar issue``, ``tx transfer --class`` and ``account show``."""

from __future__ import annotations

import json

from node.cli import main
from node.commands.account import format_account
from node.home.homedir import load_genesis_file
from tests.unit.governance.test_gov_cli import (  # noqa: F401  (fixtures)
    OTHER, key_file, node, run_cli, server_url,
)
from tokens.txs import Issue, Transfer

NEW = ["genesis", "new", "--name", "Tri", "--insee", "84007", "--validators", "1"]


def test_genesis_new_declares_classes_from_options_and_a_file(tmp_path, capsys):
    spec = tmp_path / "classes.json"
    spec.write_text(json.dumps([{"name": "sel", "unit": "grain", "credit_limit": 200, "issued_by": "none"}]))
    assert main(NEW + ["--class", "recycled:g", "--class", "points:pt:50", "--classes", str(spec),
                       "--out", str(tmp_path / "net")]) == 0
    genesis = load_genesis_file(tmp_path / "net" / "genesis.json")
    assert genesis.class_names == ("kwh", "hour", "sel", "recycled", "points")
    assert genesis.get_class("sel").issued_by == "none" and genesis.get_class("recycled").issued_by == "registrar"
    assert genesis.params["credit_limit"]["points"] == 50 and genesis.params["credit_limit"]["recycled"] == 0
    assert "token class points (pt, in pt), issued by: registrar, credit limit 50 pt" in capsys.readouterr().out


def test_invalid_genesis_class_options_are_one_line(tmp_path, capsys):
    cases = [
        (["--class", "points"], "--class expects NAME:UNIT"),
        (["--class", "points:pt:lots"], "the credit limit must be a whole number"),
        (["--class", "Points:pt"], "classes[0].name: expected 1 to 8 lowercase"),
        (["--class", "points:pt", "--class", "points:p"], "duplicate class 'points'"),
        (["--class", "kwh:Wh"], "kwh is built in"),
        (["--classes", str(tmp_path / "missing.json")], "cannot read a JSON list"),
    ]
    for i, (args, message) in enumerate(cases):
        out = tmp_path / f"net{i}"
        assert main(NEW + args + ["--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
        assert not (out / "genesis.json").exists()


def test_registrar_issue_signs_an_issue(node, key_file, capsys):
    url, fake = node
    rc, _, err = run_cli(capsys, "registrar", "issue", "--class", "recycled", "--to", OTHER.hex(), "--amount",
                         "12500", "--memo", "déchetterie", "--node", url, "--key", key_file)
    assert (rc, err) == (0, "")
    [tx] = fake.received
    assert isinstance(tx, Issue) and (tx.cls, tx.to, tx.amount, tx.memo) == ("recycled", OTHER, 12_500, "déchetterie")


def test_transfer_takes_a_class_of_the_commune(node, key_file, capsys):
    url, fake = node
    rc, _, _ = run_cli(capsys, "tx", "transfer", "--to", OTHER.hex(), "--amount", "3", "--class", "points",
                       "--node", url, "--key", key_file)
    assert rc == 0 and isinstance(fake.received[0], Transfer) and fake.received[0].cls == "points"
    rc, _, err = run_cli(capsys, "registrar", "issue", "--class", "kg recycled", "--to", OTHER.hex(), "--amount",
                         "1", "--node", url, "--key", key_file)
    assert rc == 1 and "--class must be kwh (Wh), hour (minutes) or a class of the commune" in err
    assert len(fake.received) == 1


def test_account_show_lists_commune_class_balances():
    lines = format_account({"address": "ab" * 32, "balances": {"kwh": 1500, "hour": 90, "points": -20,
                                                                "recycled": 12_500}, "nonce": 3})
    assert "points      -20" in lines and "recycled    12500" in lines
