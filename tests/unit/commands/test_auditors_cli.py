"""``gov propose-auditors``, ``gov auditors``, ``tx service --out`` + ``tx cosign`` and
``registrar reconcile`` on a commune that seals payloads, against a small real HTTP node
whose ledger is the real state transition function with a validator's keyring
(docs/privacy.md "Auditors", "What is sealed")."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from node.cli import main
from tests.unit.commands.test_euro_cli import LedgerNode, serve_ledger
from tests.unit.commands.test_reconcile_cli import data_connect
from tests.unit.tokens.commune import REGISTRAR, balances, keypair
from tests.unit.tokens.test_sealing import SealChain
from tokens import txs as T
from tokens.rules_auditors import MAX_AUDITORS_PER_PROPOSAL

AUDITOR = keypair("auditor", 1)


@pytest.fixture
def commune(tmp_path):
    chain = SealChain()
    chain.block([chain.set_data_key(k) for k in chain.households])
    keys = chain.households
    yield from serve_ledger(LedgerNode, chain, keys, tmp_path,
                            {"registrar": REGISTRAR, "hh0": keys[0], "hh1": keys[1], "hh2": keys[2]})


def run(capsys, *args):
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_a_passed_proposal_appoints_an_auditor_that_gov_auditors_lists(commune, capsys):
    chain, keys, files, url = commune
    rc, out, err = run(capsys, "gov", "auditors", "--node", url)
    assert rc == 0 and "(none)" in out
    rc, out, err = run(capsys, "gov", "propose-auditors", "--add", AUDITOR.public.hex(), "--window", "60",
                       "--node", url, "--key", files["hh0"])
    assert (rc, err) == (0, "")
    chain.block([chain.tx(T.Vote, k, proposal=bytes.fromhex(out.strip()), choice="yes") for k in keys[1:]])
    chain.block(dt_s=120)
    rc, out, err = run(capsys, "gov", "auditors", "--node", url)
    assert rc == 0 and AUDITOR.public.hex() in out and "rotation of the commune data key is due" in out
    rc, out, _ = run(capsys, "gov", "auditors", "--node", url, "--json")
    doc = json.loads(out)
    assert doc["rotation_due"] is True and [a["key"] for a in doc["auditors"]] == [AUDITOR.public.hex()]
    # The same key again: refused before anything is posted.
    rc, out, err = run(capsys, "gov", "propose-auditors", "--add", AUDITOR.public.hex(), "--window", "60",
                       "--node", url, "--key", files["hh0"])
    assert rc != 0 and "already_auditor" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, words", [
    (["--add", "zz"], "--add must be 64 hex"),
    ([], "bad_auditor_set"),
    (["--remove", "ab" * 32], "unknown_auditor"),
    ([x for i in range(MAX_AUDITORS_PER_PROPOSAL + 1) for x in ("--add", keypair("a", i).public.hex())],
     f"at most {MAX_AUDITORS_PER_PROPOSAL}"),
])
def test_invalid_propose_auditors_is_one_line(commune, capsys, args, words):
    chain, keys, files, url = commune
    rc, out, err = run(capsys, "gov", "propose-auditors", *args, "--window", "60", "--node", url,
                       "--key", files["hh0"])
    assert rc != 0 and out == "" and words in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_invalid_propose_auditors_via_gov_propose(commune, capsys):
    _, _, files, url = commune
    rc, _, err = run(capsys, "gov", "propose", "--param", "auditors", "--value", "{}", "--window", "60",
                     "--node", url, "--key", files["hh0"])
    assert rc != 0 and "propose-auditors" in err and len(err.strip().splitlines()) == 1


def test_remote_cosigning_on_a_sealing_chain(commune, capsys, tmp_path):
    chain, keys, files, url = commune
    half = tmp_path / "service.hex"
    rc, out, err = run(capsys, "tx", "service", "--provider", keys[1].public.hex(), "--minutes", "45",
                       "--out", str(half), "--node", url, "--key", files["hh0"])
    assert rc == 0 and "sealed" in out, err
    assert len(half.read_text().split()) == 2
    # Somebody else's key is refused; then the provider co-signs and posts it sealed.
    rc, _, err = run(capsys, "tx", "cosign", "--tx", str(half), "--node", url, "--key", files["hh2"])
    assert rc != 0 and "not your key" in err
    rc, out, err = run(capsys, "tx", "cosign", "--tx", str(half), "--node", url, "--key", files["hh1"])
    assert rc == 0, err
    posted = chain.blocks[-1][1][0]
    assert isinstance(T.decode_tx(posted), T.SealedCosigned) and keys[1].public not in posted
    assert balances(chain, keys[1])[1] == 45
    # The clear line alone (an older beneficiary's file) is refused in one line.
    clear_only = tmp_path / "clear.hex"
    clear_only.write_text(half.read_text().split()[0] + "\n")
    rc, _, err = run(capsys, "tx", "cosign", "--tx", str(clear_only), "--node", url, "--key", files["hh1"])
    assert rc != 0 and "seals household payloads" in err and len(err.strip().splitlines()) == 1


def test_registrar_reconcile_posts_the_curve_sealed_to_the_commune(commune, capsys, tmp_path):
    chain, keys, files, url = commune
    curve = tmp_path / "curve.json"
    day = dt.date.fromtimestamp(chain.time_s) - dt.timedelta(days=1)
    curve.write_text(json.dumps({"usage_point": [data_connect("30000000000000", day, [0] * 48)]}))
    rc, out, err = run(capsys, "registrar", "reconcile", "--file", str(curve), "--node", url,
                       "--key", files["registrar"])
    # Refused by the Reconcile's own rule (no consent yet): the node opened it; in clear it
    # would have been must_seal.
    assert rc != 0 and "must_seal" not in err and "no_consent" in err, err
