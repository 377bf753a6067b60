"""Household governance commands against a tiny real HTTP node (DESIGN §9):
``voisinage gov delegate | allocate | propose | vote | show``, and ``bench tally``."""

from __future__ import annotations

import json
import socket

import pytest

from node.cli import main
from node.bench.tally import run_tally_bench
from node.home.keyfile import save_key
from tests.support.fake_node import JSONHandler, serve_handler
from tokens.txs import AllocationBallot, Delegate, Propose, Vote, decode_tx
from wire import DecodeError, Keypair, verify_message

CHAIN_ID = bytes(range(32))
KEY = Keypair(bytes([7]) * 32)
OTHER = Keypair(bytes([8]) * 32).public
PROPOSAL = bytes([9]) * 32


CHAIN_NOW_S = 1_234_567_890     # far from this machine's clock


class FakeNode(JSONHandler):
    """GET /status and /governance/*, POST /tx: checks the signature like a node would."""

    received: list = []
    refuse: str | None = None

    def do_GET(self):
        docs = {
            "/status": {"chain_id": CHAIN_ID.hex(), "height": 3, "time_ms": CHAIN_NOW_S * 1000},
            "/governance/allocation": {"allocation": {"pensions": 4000, "energy": 6000},
                                       "categories": ["pensions", "energy", "roads", "startups", "canteen",
                                                      "security"]},
            "/governance/proposals": [{"id": PROPOSAL.hex(), "param": "levy_bp", "status": "open"}],
            "/commune": {"sealing": None},      # a chain that does not seal payloads
        }
        if self.path in docs:
            self.answer(200, docs[self.path])
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self):
        data = self.rfile.read(int(self.headers["content-length"]))
        if self.path != "/tx" or self.headers["content-type"] != "application/msgpack":
            return self.answer(400, {"error": "expected a msgpack tx"})
        try:
            tx = decode_tx(data)
        except DecodeError as exc:
            return self.answer(400, {"error": str(exc)})
        if not verify_message(tx, CHAIN_ID):
            return self.answer(400, {"error": "bad signature"})
        if self.refuse:
            return self.answer(400, {"error": self.refuse})
        self.received.append(tx)
        self.answer(202, {"id": tx.id().hex()})


@pytest.fixture(scope="module")
def server_url():
    with serve_handler(FakeNode) as url:
        yield url


@pytest.fixture
def node(server_url):
    FakeNode.received = []
    FakeNode.refuse = None
    return server_url, FakeNode


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "key.json"
    save_key(path, KEY)
    return str(path)


def run_cli(capsys, *args):
    """``voisinage ARGS``: exit code, stdout, stderr."""
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def gov(capsys, *args):
    return run_cli(capsys, "gov", *args)


def test_delegate_signs_and_posts_a_delegate_tx(node, key_file, capsys):
    url, fake = node
    rc, out, err = gov(capsys, "delegate", "--topic", "allocation", "--to", OTHER.hex(), "--node", url,
                       "--key", key_file)
    assert (rc, err) == (0, "")
    [tx] = fake.received
    assert isinstance(tx, Delegate)
    assert (tx.signer, tx.topic, tx.to) == (KEY.public, "allocation", OTHER)
    assert tx.nonce > 1_600_000_000_000          # a clock in milliseconds
    assert out.strip() == tx.id().hex()


def test_delegate_none_is_an_explicit_none(node, key_file, capsys):
    url, fake = node
    rc, _, _ = gov(capsys, "delegate", "--topic", "params", "--none", "--node", url, "--key", key_file)
    assert rc == 0
    assert (fake.received[0].topic, fake.received[0].to) == ("params", None)


def test_allocate_posts_a_ballot(node, key_file, capsys):
    url, fake = node
    rc, _, _ = gov(capsys, "allocate", "--bps", "4000,1000,1000,2000,1000,1000", "--node", url, "--key", key_file)
    assert rc == 0
    [tx] = fake.received
    assert isinstance(tx, AllocationBallot)
    assert [(e.category, e.bp) for e in tx.entries] == [
        ("canteen", 1000), ("energy", 1000), ("pensions", 4000), ("roads", 1000), ("security", 1000),
        ("startups", 2000)]


def test_allocate_by_name_leaves_out_the_categories_it_does_not_name(node, key_file, capsys):
    url, fake = node
    rc, _, _ = gov(capsys, "allocate", "--bps", "roads=6000, pensions=4000,energy=0", "--node", url,
                   "--key", key_file)
    assert rc == 0
    assert [(e.category, e.bp) for e in fake.received[0].entries] == [("pensions", 4000), ("roads", 6000)]


def test_propose_posts_canonical_json_value(node, key_file, capsys):
    url, fake = node
    rc, _, _ = gov(capsys, "propose", "--param", "credit_limit", "--value", '{"kwh": 1, "hour": 2}',
                   "--voting-end", "1900000000", "--node", url, "--key", key_file)
    assert rc == 0
    [tx] = fake.received
    assert isinstance(tx, Propose)
    assert (tx.param, tx.value, tx.voting_end) == ("credit_limit", '{"hour":2,"kwh":1}', 1_900_000_000)


def test_propose_window_counts_from_the_chain_clock_not_this_machines(node, key_file, capsys):
    url, fake = node
    rc, _, _ = gov(capsys, "propose", "--param", "levy_bp", "--value", "900", "--window", "3600",
                   "--node", url, "--key", key_file)
    assert rc == 0
    [tx] = fake.received
    assert tx.voting_end == CHAIN_NOW_S + 3600


def test_vote_posts_a_vote(node, key_file, capsys):
    url, fake = node
    rc, _, _ = gov(capsys, "vote", "--proposal", PROPOSAL.hex(), "--choice", "no", "--node", url, "--key", key_file)
    assert rc == 0
    [tx] = fake.received
    assert isinstance(tx, Vote) and (tx.proposal, tx.choice) == (PROPOSAL, "no")


def test_show_prints_allocation_and_proposals(node, capsys):
    url, _ = node
    rc, out, _ = gov(capsys, "show", "--node", url)
    assert rc == 0
    assert "pensions" in out and "40.00 %" in out and "levy_bp" in out
    rc, out, _ = gov(capsys, "show", "--node", url, "--json")
    assert json.loads(out)["allocation"]["allocation"] == {"pensions": 4000, "energy": 6000}


@pytest.mark.parametrize("args, message", [
    (["delegate", "--to", OTHER.hex(), "--none"], "exactly one of --to or --none"),
    (["delegate"], "exactly one of --to or --none"),
    (["delegate", "--to", "abcd"], "--to must be 64 hex characters"),
    (["delegate", "--topic", "roads", "--none"], "--topic must be one of"),
    (["allocate", "--bps", "pensions=5000,energy=4000"], "must sum to 10000"),
    (["allocate", "--bps", "5000,5000"], "2 numbers for 6 categories"),
    (["allocate", "--bps", "pensions=5000,energy=x"], "'x' is not an integer"),
    (["allocate", "--bps", "pensions=12000,energy=-2000"], "-2000 is negative"),
    (["allocate", "--bps", "pensions=5000,5000"], "every entry as name=bp"),
    (["allocate", "--bps", "parks=10000"], "no category 'parks'"),
    (["allocate", "--bps", "roads=5000,roads=5000"], "named twice"),
    (["propose", "--param", "nope", "--value", "1", "--window", "60"], "unknown parameter 'nope'"),
    (["propose", "--param", "levy_bp", "--value", "{", "--window", "60"], "--value must be JSON"),
    (["propose", "--param", "levy_bp", "--value", "1"], "exactly one of --voting-end or --window"),
    (["vote", "--proposal", PROPOSAL.hex(), "--choice", "maybe"], "--choice must be yes, no or abstain"),
    (["vote", "--proposal", "zz", "--choice", "yes"], "--proposal must be 64 hex"),
])
def test_invalid_household_input_is_one_line_and_posts_nothing(node, key_file, capsys, args, message):
    url, fake = node
    rc, _, err = gov(capsys, *args, "--node", url, "--key", key_file)
    assert rc == 1
    assert message in err and err.count("\n") == 1
    assert fake.received == []


def test_invalid_refused_tx_gives_the_node_reason(node, key_file, capsys):
    url, fake = node
    fake.refuse = "stale nonce"
    rc, _, err = gov(capsys, "vote", "--proposal", PROPOSAL.hex(), "--choice", "yes", "--node", url,
                     "--key", key_file)
    assert rc == 1
    assert err == "error: the node refused the transaction (400): stale nonce\n"


def test_invalid_node_down_is_one_line(key_file, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rc, _, err = gov(capsys, "allocate", "--bps", "10000", "--node", f"http://127.0.0.1:{port}", "--key", key_file)
    assert rc == 1
    assert err.startswith("error: cannot reach the node at") and err.count("\n") == 1


def test_invalid_node_url_and_key_file(tmp_path, capsys):
    rc, _, err = gov(capsys, "show", "--node", "localhost:8700")
    assert rc == 1 and "http:// or https://" in err
    rc, _, err = gov(capsys, "allocate", "--bps", "10000", "--key", str(tmp_path / "none.json"))
    assert rc == 1 and "key file not found" in err


# --- bench tally ----------------------------------------------------------------------------

def test_bench_tally_workload_is_consistent():
    report = run_tally_bench(voters=3000, categories=6, chain=800, seed=4)
    assert report["longest_chain"] == 800 and report["direct_voters"] == 300
    assert sum(report["allocation_bp"]) == 10_000 and len(report["allocation_bp"]) == 6
    assert report["counted_weight"] > 0 and report["abstained_weight"] > 0
    assert report["ratio"] is None or report["ratio"] > 0
    assert isinstance(report["within_goal"], bool)


def test_bench_tally_cli_prints_json(capsys):
    rc = main(["bench", "tally", "--json", "--voters", "2000", "--chain", "500"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert report["voters"] == 2000 and report["categories"] == 10
    assert {"resolve_s", "allocate_s", "total_s", "baseline_s", "ratio"} <= set(report)
