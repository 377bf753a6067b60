"""``voisinage tx redeem``, ``registrar pay-debt | mark-paid | ledger | association`` (docs/euro.md)
against a small real HTTP node whose ledger is the real state transition function over a
MemoryKV: every posted tx is applied as a block, every read is the API's own query.

The accountant's CSV is checked against the state: its totals, over the whole history,
are the chain's euro totals and the sums of the payout and debt payment records."""

from __future__ import annotations

import contextlib
import csv
import io
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from node.api.views import get_account_view
from node.cli import main
from node.commands import euro as euro_cli
from node.home.keyfile import save_key
from tests.support.fake_node import JSONHandler, serve_handler
from tests.unit.tokens.commune import REGISTRAR, Chain, keypair, make_genesis
from tests.unit.tokens.test_properties import check_conservation, scan
from tokens import InvalidLedgerBlock
from tokens import layout as L
from tokens.kv import decode_value
from tokens.queries_euro import get_euro_ledger, get_payout
from tokens.queries import get_sealing
from wire import compute_id

EXPORT_WH, IMPORT_WH = 1_501, 1_000
CLUB = keypair("association", 0)


class LedgerNode(JSONHandler):
    chain: Chain

    def do_GET(self):
        c, url = self.chain, urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/status":
            return self.answer(200, {"chain_id": c.genesis.chain_id.hex(), "height": c.height,
                                     "time_ms": c.time_s * 1000})
        if url.path.startswith("/accounts/"):
            doc = get_account_view(c.kv, bytes.fromhex(url.path.rsplit("/", 1)[1]))
            return self.answer(200, doc) if doc else self.answer(404, {"error": "unknown account"})
        if url.path == "/commune":
            return self.answer(200, {"sealing": get_sealing(c.kv)})
        if url.path.startswith("/euro/payouts/"):
            doc = get_payout(c.kv, bytes.fromhex(url.path.rsplit("/", 1)[1]))
            return self.answer(200, doc) if doc else self.answer(404, {"error": "no such payout"})
        if url.path == "/euro/ledger":
            after = bytes.fromhex(q["after"]) if "after" in q else None
            return self.answer(200, get_euro_ledger(c.kv, int(q["from"]), int(q["to"]), after, int(q["limit"])))
        self.answer(404, {"error": "not found"})

    def do_POST(self):
        data = self.rfile.read(int(self.headers["content-length"]))
        try:
            self.chain.block([data])
        except InvalidLedgerBlock as exc:
            return self.answer(400, {"error": f"{exc.reason}: {exc.detail}"})
        self.answer(202, {"id": compute_id(data).hex()})


@contextlib.contextmanager
def serving(chain: Chain, handler: type[LedgerNode] = LedgerNode):
    """``handler`` (a LedgerNode) over ``chain`` on a free loopback port; yields its URL."""
    handler.chain = chain
    with serve_handler(handler) as url:
        yield url


@pytest.fixture
def commune(tmp_path):
    """A commune at today's time: household 0 holds kWh, household 2 owes some; the
    registrar's, households' and the association's key files; a node serving it."""
    genesis, keys = make_genesis(4)
    chain = Chain(genesis)
    t0 = chain.time_s
    chain.block([chain.reading(keys[0], 0, 1, t0 + 1, 0, 0), chain.reading(keys[2], 2, 1, t0 + 1, 0, 0)], at=t0 + 1)
    chain.block([chain.reading(keys[0], 0, 2, t0 + 1000, 0, EXPORT_WH),
                 chain.reading(keys[2], 2, 2, t0 + 1000, IMPORT_WH, 0)], at=t0 + 1000)
    yield from serve_ledger(LedgerNode, chain, keys, tmp_path, {"registrar": REGISTRAR, "hh0": keys[0],
                                                               "hh2": keys[2], "club": CLUB})


def serve_ledger(handler: type[LedgerNode], chain: Chain, keys, tmp_path, key_files: dict):
    """Bring the chain to today's time, write the key files, serve the chain over HTTP:
    yields (chain, keys, {name: key file}, url) and stops the server after."""
    chain.block(at=int(time.time()) - 5)        # the CLI's nonces are its clock in ms
    files = {}
    for name, key in key_files.items():
        files[name] = str(tmp_path / f"{name}.json")
        save_key(tmp_path / f"{name}.json", key)
    with serving(chain, handler) as url:
        yield chain, keys, files, url


def run(capsys, *args):
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def kwh(chain: Chain, key) -> int:
    return decode_value(chain.kv.get(L.key_account(key.public)))[0]


def test_redeem_pay_debt_mark_paid_and_a_csv_whose_totals_are_the_chains(commune, capsys, tmp_path):
    chain, keys, files, url = commune
    rc, out, err = run(capsys, "tx", "redeem", "--amount", "1000", "--node", url, "--key", files["hh0"])
    assert (rc, err) == (0, "")
    payout_id = out.strip()
    assert decode_value(chain.kv.get(L.key_payout(bytes.fromhex(payout_id))))[L.PO_CENTS] == 20
    rc, _, err = run(capsys, "tx", "redeem", "--amount", "300", "--node", url, "--key", files["hh0"])
    assert (rc, err) == (0, "")
    rc, _, err = run(capsys, "registrar", "pay-debt", "--household-pub", keys[2].public.hex(), "--euros", "0.15",
                     "--ref", "CHQ 001234", "--node", url, "--key", files["registrar"])
    assert (rc, err) == (0, "") and kwh(chain, keys[2]) == -IMPORT_WH + 750
    rc, _, err = run(capsys, "registrar", "mark-paid", "--payout", payout_id, "--ref", "SEPA-2026-12-0001",
                     "--node", url, "--key", files["registrar"])
    assert (rc, err) == (0, "")
    check_conservation(chain.kv)

    rc, out, err = run(capsys, "registrar", "ledger", "--from", "2000-01-01", "--to", "2099-12-31", "--csv",
                       "--node", url, "--key", files["registrar"])
    assert (rc, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    events = [r for r in rows if ":" not in r["kind"]]
    assert [r["kind"] for r in events] == ["redeem", "redeem", "pay-debt", "paid"]
    assert events[0]["status"] == "paid" and events[1]["status"] == "owed"
    assert events[0]["label"] == "Foyer 0" and events[2]["ref"] == "CHQ 001234"
    assert events[3]["ref"] == "SEPA-2026-12-0001" and events[3]["euros"] == "0.20"
    summary = {r["kind"]: r for r in rows if ":" in r["kind"]}
    # The export's totals reconcile with the chain: meta/euro and the records themselves.
    redeemed, owed, paid, cleared, received = decode_value(chain.kv.get(L.META_EURO))
    payouts = [rec for _, rec in scan(chain.kv, L.PAYOUT)]
    payments = [rec for _, rec in scan(chain.kv, L.DEBT_PAYMENT)]
    assert (int(summary["total:redeem"]["wh"]), int(summary["total:redeem"]["cents"])) == (redeemed, owed) == (
        sum(p[L.PO_AMOUNT] for p in payouts), sum(p[L.PO_CENTS] for p in payouts)) == (1300, 26)
    assert int(summary["total:paid"]["cents"]) == paid == 20
    assert (int(summary["total:pay-debt"]["wh"]), int(summary["total:pay-debt"]["cents"])) == (cleared, received) == (
        sum(p[L.DP_AMOUNT] for p in payments), sum(p[L.DP_CENTS] for p in payments)) == (750, 15)
    assert int(summary["chain:outstanding"]["cents"]) == owed - paid == sum(
        p[L.PO_CENTS] for p in payouts if p[L.PO_STATUS] == "owed") == 6
    for kind in ("redeem", "paid", "pay-debt"):
        assert summary[f"total:{kind}"]["cents"] == summary[f"chain:{kind}"]["cents"]
    assert int(summary["chain:redeem"]["height"]) == chain.height


def test_the_ledger_pages_and_a_narrow_range_leaves_out_what_is_outside(commune, capsys, monkeypatch):
    chain, keys, files, url = commune
    for amount in (100, 200, 300):
        assert run(capsys, "tx", "redeem", "--amount", str(amount), "--node", url, "--key", files["hh0"])[0] == 0
    monkeypatch.setattr(euro_cli, "LEDGER_PAGE", 2)
    rc, out, _ = run(capsys, "registrar", "ledger", "--from", "2000-01-01", "--to", "2099-12-31", "--node", url,
                     "--key", files["registrar"])
    assert rc == 0 and out.count(" redeem ") == 3 and "redeemed 0.600 kWh for 0.12 EUR" in out
    rc, out, _ = run(capsys, "registrar", "ledger", "--from", "2000-01-01", "--to", "2000-01-02", "--csv",
                     "--node", url, "--key", files["registrar"])
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rc == 0 and [r["kind"] for r in rows if ":" not in r["kind"]] == []
    totals = {r["kind"]: r for r in rows}
    assert totals["total:redeem"]["cents"] == "0" and totals["chain:redeem"]["cents"] == "12"


def test_association_add_then_a_gift_and_a_transfer_to_it(commune, capsys):
    chain, keys, files, url = commune
    rc, _, err = run(capsys, "registrar", "association", "add", "--pub", CLUB.public.hex(), "--name",
                     "Comité des fêtes", "--node", url, "--key", files["registrar"])
    assert (rc, err) == (0, "")
    assert decode_value(chain.kv.get(L.key_association(CLUB.public)))[0] == "Comité des fêtes"
    rc, _, err = run(capsys, "tx", "transfer", "--to", CLUB.public.hex(), "--amount", "100", "--node", url,
                     "--key", files["hh0"])
    assert (rc, err) == (0, "") and kwh(chain, CLUB) == 100
    rc, _, err = run(capsys, "registrar", "association", "remove", "--pub", CLUB.public.hex(), "--memo", "dissous",
                     "--node", url, "--key", files["registrar"])
    assert (rc, err) == (0, "")
    rc, _, err = run(capsys, "registrar", "association", "remove", "--pub", CLUB.public.hex(), "--node", url,
                     "--key", files["registrar"])
    assert rc == 1 and "unknown_association" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["tx", "redeem", "--amount", "0"], "--amount must be a positive integer"),
    (["tx", "redeem", "--amount", "100", "--class", "hour"], "only kwh has a euro price"),
    (["tx", "redeem", "--amount", "99999999"], "insufficient_balance"),
    (["tx", "redeem", "--amount", "10"], "below_one_cent"),
    (["registrar", "pay-debt", "--household-pub", "zz", "--euros", "1", "--ref", "x"], "--household-pub must be"),
    (["registrar", "pay-debt", "--household-pub", "HH2", "--euros", "1.234", "--ref", "x"], "at most 2 decimals"),
    (["registrar", "pay-debt", "--household-pub", "HH2", "--euros", "-1", "--ref", "x"], "positive amount"),
    (["registrar", "pay-debt", "--household-pub", "HH2", "--euros", "deux", "--ref", "x"], "amount of euros"),
    (["registrar", "pay-debt", "--household-pub", "HH2", "--euros", "1", "--ref", "n°1"], "--ref: a reference"),
    (["registrar", "pay-debt", "--household-pub", "HH2", "--euros", "1", "--ref", "x" * 36], "1 to 35"),
    (["registrar", "pay-debt", "--household-pub", "HH2", "--euros", "5", "--ref", "x"], "over_debt"),
    (["registrar", "pay-debt", "--household-pub", "HH0", "--euros", "0.01", "--ref", "x"], "no_debt"),
    (["registrar", "mark-paid", "--payout", "ab" * 32, "--ref", "x"], "no payout"),
    (["registrar", "mark-paid", "--payout", "ab", "--ref", "x"], "--payout must be 64 hex"),
    (["registrar", "ledger", "--from", "2026-13-01", "--to", "2026-12-31"], "--from must be a date"),
    (["registrar", "ledger", "--from", "2026-12-31", "--to", "2026-01-01"], "is before --from"),
    (["registrar", "ledger", "--from", "2026-01-01", "--to", "2026-01-02"], "give the registrar's --key"),
    (["registrar", "association", "add", "--pub", "CLUB", "--name", " "], "--name: an association's name"),
    (["registrar", "association", "add", "--pub", "HH0", "--name", "Club"], "key_in_use"),
    (["registrar", "association", "remove", "--pub", "CLUB", "--memo", "x" * 141], "--memo is 141 bytes"),
])
def test_bad_input_is_one_line_a_non_zero_exit_and_changes_nothing(commune, capsys, argv, message):
    chain, keys, files, url = commune
    subst = {"HH0": keys[0].public.hex(), "HH2": keys[2].public.hex(), "CLUB": CLUB.public.hex()}
    argv = [subst.get(a, a) for a in argv]
    signer = files["registrar"] if argv[0] == "registrar" else files["hh0"]
    extra = ["--node", url] + ([] if argv[1] == "ledger" else ["--key", signer])
    before = chain.kv.items()
    rc, out, err = run(capsys, *argv, *extra)
    assert rc != 0 and message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert chain.kv.items() == before
