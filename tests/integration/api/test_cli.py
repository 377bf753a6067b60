"""The household CLI against live nodes: ``voisinage tx …``, ``status``, ``account show``.

Each command signs locally with the household's key file and posts to the node;
the tests then read the committed result back over the API.
"""

from __future__ import annotations

import json

import jsonschema_rs
import pytest

from node.cli import main
from tests.support.livenet import LiveNet
from tests.support.wait import wait_for

HH0, HH1, VAL = "household-0", "household-1", "validator-0"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def submit(capsys, livenet: LiveNet, *argv: str, key: str = HH0) -> str:
    code, out, err = run(capsys, *argv, "--node", livenet.url(key), "--key", str(livenet.key_path(key)))
    assert code == 0, err
    tx_id = out.splitlines()[-1]
    assert len(tx_id) == 64
    return tx_id


def wait_committed(livenet: LiveNet, tx_id: str, account: str) -> dict:
    """The committed tx as /txs lists it for ``account``."""
    def listed():
        # A household's transactions are its own: read on the validator, signed by it.
        doc = livenet.get_json(VAL, f"/txs?account={livenet.address(account)}&limit=100", signer=account)
        return next((t for t in (doc or {}).get("txs", []) if t["id"] == tx_id), None)
    return wait_for(listed, 60, f"tx {tx_id[:12]} committed", livenet.logs)


def test_status_and_account_show(livenet: LiveNet, capsys):
    code, out, _ = run(capsys, "status", "--node", livenet.url(HH0))
    assert code == 0 and "height" in out and livenet.address(HH0) in out
    code, out, _ = run(capsys, "status", "--node", livenet.url(HH0), "--json")
    assert code == 0 and json.loads(out)["chain_id"] == livenet.genesis.chain_id.hex()
    code, out, _ = run(capsys, "account", "show", "--node", livenet.url(HH0))      # the node's own household
    assert code == 0 and "balances    private" in out and "Foyer 0" not in out
    code, out, _ = run(capsys, "account", "show", "--node", livenet.url(HH0), "--key", str(livenet.key_path(HH0)))
    assert code == 0 and "Foyer 0" in out and "kWh" in out
    code, out, _ = run(capsys, "account", "show", "--node", livenet.url(HH1), "--key", str(livenet.key_path(HH1)),
                       "--json")
    assert code == 0 and json.loads(out)["household"]["label"] == "Foyer 1"


def test_transfer_is_committed_for_both_households(livenet: LiveNet, capsys):
    tx_id = submit(capsys, livenet, "tx", "transfer", "--to", livenet.address(HH1), "--amount", "500",
                   "--memo", "merci")
    sent = wait_committed(livenet, tx_id, HH0)
    assert (sent["type"], sent["to"], sent["amount"], sent["cls"], sent["memo"]) == \
        ("tx/transfer", livenet.address(HH1), 500, "kwh", "merci")
    assert wait_committed(livenet, tx_id, HH1)["signer"] == livenet.address(HH0)


def test_gift_then_revoke(livenet: LiveNet, capsys):
    gift_id = submit(capsys, livenet, "tx", "gift", "--to", livenet.address(HH1), "--bp", "2500", "--days", "2")
    wait_committed(livenet, gift_id, HH0)
    gifts = livenet.get_json(HH0, f"/accounts/{livenet.address(HH0)}", signer=HH0)["gifts"]
    assert [(g["id"], g["bp"], g["beneficiary"]) for g in gifts] == [(gift_id, 2500, livenet.address(HH1))]
    revoke_id = submit(capsys, livenet, "tx", "revoke-gift", "--gift", gift_id)
    wait_committed(livenet, revoke_id, HH0)
    assert livenet.get_json(HH0, f"/accounts/{livenet.address(HH0)}", signer=HH0)["gifts"] == []


def test_service_with_both_keys_here_and_with_cosign(livenet: LiveNet, capsys, tmp_path):
    hour = lambda name: livenet.get_json(VAL, f"/accounts/{livenet.address(name)}", signer=name)["balances"]["hour"]
    provider_before, payer_before = hour(HH0), hour(HH1)
    local = submit(capsys, livenet, "tx", "service", "--provider", livenet.address(HH0), "--minutes", "30",
                   "--memo", "jardinage", "--provider-key", str(livenet.key_path(HH0)), key=HH1)
    assert wait_committed(livenet, local, HH0)["provider"] == livenet.address(HH0)
    half = tmp_path / "service.hex"
    code, out, err = run(capsys, "tx", "service", "--provider", livenet.address(HH0), "--minutes", "45",
                         "--out", str(half), "--node", livenet.url(HH1), "--key", str(livenet.key_path(HH1)))
    assert code == 0 and "tx cosign" in out and half.exists()
    cosigned = submit(capsys, livenet, "tx", "cosign", "--tx", str(half), key=HH0)
    wait_committed(livenet, cosigned, HH1)
    assert hour(HH0) - provider_before == 75 and payer_before - hour(HH1) == 75


def test_offer_then_accept(livenet: LiveNet, capsys):
    offer_id = submit(capsys, livenet, "tx", "offer", "--give-amount", "1000", "--give-class", "kwh",
                      "--want-amount", "10", "--want-class", "hour", "--counterparty", livenet.address(HH1),
                      "--hours", "3")
    wait_committed(livenet, offer_id, HH0)
    accept_id = submit(capsys, livenet, "tx", "accept", "--offer", offer_id, key=HH1)
    assert wait_committed(livenet, accept_id, HH1)["offer"] == offer_id


@pytest.mark.parametrize("argv, message", [
    (["tx", "transfer", "--to", "zz", "--amount", "5"], "--to must be 64 hex characters"),
    (["tx", "transfer", "--to", "ab" * 32, "--amount", "0"], "--amount must be a positive integer"),
    (["tx", "transfer", "--to", "ab" * 32, "--amount", "5", "--class", "Euro!"], "--class must be kwh"),
    (["tx", "transfer", "--to", "ab" * 32, "--amount", "5", "--memo", "x" * 141], "at most 140"),
    (["tx", "gift", "--to", "ab" * 32, "--bp", "20000", "--days", "1"], "--bp must be between"),
    (["tx", "gift", "--to", "ab" * 32, "--bp", "100"], "give exactly one of --until or --days"),
    (["tx", "service", "--provider", "ab" * 32, "--minutes", "5"], "give --provider-key"),
    (["tx", "offer", "--give-amount", "1", "--give-class", "kwh", "--want-amount", "1", "--want-class", "hour"],
     "give exactly one of --expires or --hours"),
])
def test_invalid_arguments_are_one_line(livenet: LiveNet, capsys, argv, message):
    code, out, err = run(capsys, *argv, "--node", livenet.url(HH0), "--key", str(livenet.key_path(HH0)))
    assert code == 1 and message in err and len(err.splitlines()) == 1 and err.startswith("error: ")


def test_invalid_tx_refused_by_the_node_is_one_line(livenet: LiveNet, capsys):
    # Beyond the credit limit (50 000 Wh below zero): the node answers 400 with the rule.
    code, _, err = run(capsys, "tx", "transfer", "--to", livenet.address(HH1), "--amount", "900000000",
                       "--node", livenet.url(HH0), "--key", str(livenet.key_path(HH0)))
    assert code == 1 and err.startswith("error: the node refused the transaction (400):")
    assert len(err.splitlines()) == 1


def test_invalid_cosign_by_the_wrong_key(livenet: LiveNet, capsys, tmp_path):
    half = tmp_path / "service.hex"
    code, _, err = run(capsys, "tx", "service", "--provider", livenet.address(HH0), "--minutes", "5",
                       "--out", str(half), "--node", livenet.url(HH1), "--key", str(livenet.key_path(HH1)))
    assert code == 0, err
    code, _, err = run(capsys, "tx", "cosign", "--tx", str(half), "--node", livenet.url(HH1),
                       "--key", str(livenet.key_path(HH1)))
    assert code == 1 and "not your key" in err
    half.write_text("not hex\n")
    code, _, err = run(capsys, "tx", "cosign", "--tx", str(half), "--node", livenet.url(HH1),
                       "--key", str(livenet.key_path(HH0)))
    assert code == 1 and "does not hold a hex transaction" in err


def test_invalid_unreachable_node_is_one_line(livenet: LiveNet, capsys):
    code, _, err = run(capsys, "account", "show", "--node", "http://127.0.0.1:1")
    assert code == 1 and err.startswith("error: cannot reach the node") and len(err.splitlines()) == 1


def as_json_schema(schema):
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema says it: the schema, or null."""
    if isinstance(schema, list):
        return [as_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: as_json_schema(v) for k, v in schema.items() if k != "nullable"}
    return {"anyOf": [out, {"type": "null"}]} if schema.get("nullable") else out


def check_schema(livenet: LiveNet, name: str, doc: dict) -> None:
    """``doc`` validates against the node's own OpenAPI component ``name``."""
    spec = livenet.get_json(HH0, "/openapi.json")
    components = as_json_schema(spec["components"])
    jsonschema_rs.validate({"$ref": f"#/components/schemas/{name}", "components": components}, doc)


def test_ballot_by_name_and_solidarity_gift_show_under_the_schemas(livenet: LiveNet, capsys):
    ballot_id = submit(capsys, livenet, "gov", "allocate", "--bps", "roads=6000,canteen=4000", key=HH1)
    gift_id = submit(capsys, livenet, "tx", "gift", "--to", "solidarity", "--bp", "300", "--days", "2", key=HH1)
    wait_committed(livenet, ballot_id, HH1)
    wait_committed(livenet, gift_id, HH1)
    account = livenet.get_json(VAL, f"/accounts/{livenet.address(HH1)}", signer=HH1)
    check_schema(livenet, "Account", account)
    public = livenet.get_json(HH0, f"/accounts/{livenet.address(HH1)}")
    check_schema(livenet, "Account", public)
    assert public["ballot"] == {"canteen": 4000, "roads": 6000} and "gifts" not in public
    assert account["ballot"] == {"canteen": 4000, "roads": 6000}
    assert account["ballot_by_category"]["roads"] == 6000 and account["ballot_by_category"]["pensions"] == 0
    assert [(g["id"], g["solidarity"]) for g in account["gifts"]] == [(gift_id, True)]
    allocation = livenet.get_json(HH0, "/governance/allocation")
    check_schema(livenet, "Allocation", allocation)
    assert allocation["categories"][:3] == ["pensions", "energy", "roads"]
    code, out, _ = run(capsys, "account", "show", "--node", livenet.url(HH0), "--key", str(livenet.key_path(HH1)))
    assert code == 0 and "roads 6000 bp" in out
