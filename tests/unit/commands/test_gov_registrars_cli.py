"""``voisinage gov propose-registrars`` (DESIGN §12 "or by a passed proposal") against a
small real HTTP node whose ledger is the real state transition function: the proposal
is posted, voted, tallied, and the removed registrar's next command is refused."""

from __future__ import annotations

import pytest

from node.cli import main
from tests.unit.commands.test_euro_cli import LedgerNode, serve_ledger
from tests.unit.tokens.commune import REGISTRAR, Chain, keypair, make_genesis
from tokens import get_account, get_proposals
from tokens import txs as T
from tokens.queries import get_registrar_set

CLERK = keypair("clerk")


class RegistrarNode(LedgerNode):
    def do_GET(self):
        if self.path == "/registrars":
            return self.answer(200, get_registrar_set(self.chain.kv))
        return super().do_GET()


@pytest.fixture
def commune(tmp_path):
    genesis, keys = make_genesis(3)
    yield from serve_ledger(RegistrarNode, Chain(genesis), keys, tmp_path, {"registrar": REGISTRAR, "hh0": keys[0]})


def run(capsys, *args):
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_a_passed_registrars_proposal_replaces_the_registrar(commune, capsys):
    chain, keys, files, url = commune
    rc, out, err = run(capsys, "gov", "propose-registrars", "--add", CLERK.public.hex(), "--remove",
                       REGISTRAR.public.hex(), "--window", "60", "--node", url, "--key", files["hh0"])
    assert (rc, err) == (0, "")
    [proposal] = get_proposals(chain.kv)
    assert proposal["param"] == "registrars" and proposal["id"] == out.strip()
    chain.block([chain.tx(T.Vote, k, proposal=bytes.fromhex(out.strip()), choice="yes") for k in keys[1:]])
    chain.block(dt_s=120)
    assert get_registrar_set(chain.kv)["registrars"] == [CLERK.public.hex()]
    rc, out, err = run(capsys, "registrar", "register", "--household-pub", keypair("new").public.hex(), "--meter",
                       "021499999999", "--prm", "30000099999999", "--label", "x", "--kva", "6", "--node", url,
                       "--key", files["registrar"])
    assert rc != 0 and out == "" and "not_registrar" in err and len(err.strip().splitlines()) == 1
    assert get_account(chain.kv, keypair("new").public)["household"] is None


@pytest.mark.parametrize("args, words", [
    (["--add", "zz"], "--add must be 64 hex"),
    (["--remove", "ab" * 32], "unknown_registrar"),
    ([], "bad_registrar_set"),
    (["--remove", "REG"], "bad_registrar_set"),
    (["--add", "REG"], "already_registrar"),
], ids=["not_hex", "remove_unknown", "empty", "remove_last", "already"])
def test_a_bad_registrars_proposal_is_one_line_and_posts_nothing(commune, capsys, args, words):
    chain, _, files, url = commune
    args = [REGISTRAR.public.hex() if a == "REG" else a for a in args]
    height = chain.height
    rc, out, err = run(capsys, "gov", "propose-registrars", *args, "--window", "60", "--node", url,
                       "--key", files["hh0"])
    assert rc != 0 and out == "" and words in err and len(err.strip().splitlines()) == 1
    assert chain.height == height and get_proposals(chain.kv) == []


def test_gov_propose_points_to_propose_registrars(commune, capsys):
    _, _, files, url = commune
    rc, _, err = run(capsys, "gov", "propose", "--param", "registrars", "--value", "{}", "--window", "60",
                     "--node", url, "--key", files["hh0"])
    assert rc != 0 and "gov propose-registrars" in err
