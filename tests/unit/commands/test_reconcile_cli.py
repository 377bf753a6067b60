"""``voisinage registrar consent | reconcile`` (issue 18, docs/reconciliation.md) against a
small real HTTP node whose ledger is the real state transition over a MemoryKV
(tests/unit/commands/test_euro_cli.py's LedgerNode): official curves in the Data Connect
JSON and the customer-area CSV shapes; bad curves refused per household, one line each,
the rest applied, the invariants intact."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from node.cli import main
from node.home.keyfile import save_key
from node.clock import compute_local_day_start
from tests.unit.commands.test_euro_cli import kwh, serving
from tests.unit.tokens.commune import REGISTRAR, Chain, make_genesis
from tests.unit.tokens.test_properties import check_conservation, check_settled_intervals
from tokens import layout as L
from tokens import txs as T
from tokens.kv import decode_value

HALF = 1800


def prm(i: int) -> str:
    return f"300000{i:08d}"


def data_connect(prm_id, day: dt.date, values, unit="W", interval="1800", direction=None, ranks=None) -> dict:
    rtype = {"measurement_kind": "power", "unit": unit, "aggregate": "average", "interval_length": interval}
    if direction:
        rtype["flow_direction"] = direction
    ranks = ranks or list(range(1, len(values) + 1))
    return {"meter_reading": {
        "usage_point_id": prm_id, "start": day.isoformat(), "end": (day + dt.timedelta(days=1)).isoformat(),
        "quality": "BRUT", "reading_type": rtype,
        "interval_reading": [{"rank": str(r), "value": str(v)} for r, v in zip(ranks, values)]}}


def customer_csv(prm_id, day: dt.date, values, kind="Production") -> str:
    start = compute_local_day_start(day)
    lines = ["Identifiant PRM;Type de donnees;Date de debut;Date de fin;Grandeur physique;Grandeur metier;"
             "Etape metier;Unite;Pas en minutes",
             f"{prm_id};Courbe de charge;{day:%d/%m/%Y};{day + dt.timedelta(days=1):%d/%m/%Y};Energie active;"
             f"{kind};Comptage Brut;W;30", "", "Horodate;Valeur"]
    for k, v in enumerate(values):
        end = start + (k + 1) * HALF
        offset = dt.timedelta(hours=2 if dt.datetime.fromtimestamp(end, dt.timezone.utc).month in range(4, 11) else 1)
        lines.append(f"{dt.datetime.fromtimestamp(end, dt.timezone(offset)).isoformat()};{v}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def commune(tmp_path):
    """Households 0..3 (0 and 1 produce); the day before yesterday (local), producer 0
    said it exported 500 Wh in the day's first half hour and consumer 2 imported 300."""
    genesis, keys = make_genesis(4, {"levy_bp": 1000, "history_retention_s": 4 * 86_400})
    chain = Chain(genesis)
    day = dt.date.today() - dt.timedelta(days=2)
    d0 = compute_local_day_start(day)
    chain.block([chain.tx(T.Consent, REGISTRAR, prm=prm(i), granted=True, memo="") for i in range(3)]
                + [chain.reading(k, i, 1, d0 - 100, 0, 0) for i, k in enumerate(keys)], at=d0 - 50)
    chain.block([chain.reading(keys[0], 0, 2, d0 + 600, 0, 500), chain.reading(keys[2], 2, 2, d0 + 600, 300, 0)],
                at=d0 + 601)
    chain.block(at=int(time.time()) - 5)
    files = {"registrar": str(tmp_path / "registrar.json")}
    save_key(tmp_path / "registrar.json", REGISTRAR)
    with serving(chain) as url:
        yield chain, keys, files, url, day


def run(capsys, *args):
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_reconcile_applies_good_households_and_refuses_bad_ones_one_line_each(commune, capsys, tmp_path):
    chain, keys, files, url, day = commune
    n = (compute_local_day_start(day + dt.timedelta(days=1)) - compute_local_day_start(day)) // HALF
    zeros = [0] * n
    consumption = {"usage_point": [
        data_connect(prm(2), day, [500] + zeros[1:]),                           # 250 Wh official, 300 said
        data_connect(prm(3), day, zeros),                                       # no consent
        data_connect("3000000000", day, zeros),                                 # wrong PRM
        data_connect(prm(5), day, zeros[1:]),                                   # gap
        data_connect(prm(6), day, zeros, ranks=[1, 1] + list(range(3, n + 1))),   # duplicated rank
        data_connect(prm(7), day, zeros, unit="kW"),                            # unit
        data_connect(prm(8), day, zeros, interval="900"),                       # step
    ]}
    (tmp_path / "cons.json").write_text(json.dumps(consumption))
    (tmp_path / "prod.json").write_text(json.dumps({"usage_point": [data_connect(prm(0), day, [800] + zeros[1:])]}))
    (tmp_path / "prod1.csv").write_text(customer_csv(prm(1), day, zeros))
    before = chain.kv.items()
    rc, out, err = run(capsys, "registrar", "reconcile", "--file", str(tmp_path / "cons.json"),
                       "--production-file", str(tmp_path / "prod.json"), "--file", str(tmp_path / "prod1.csv"),
                       "--node", url, "--key", files["registrar"])
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 6 and all(line.startswith("refused ") for line in lines)
    assert any("no_consent" in line and prm(3) in line for line in lines)
    assert any("wrong PRM" in line for line in lines)
    assert any(prm(5) in line and "gap" in line for line in lines)
    assert any(prm(6) in line and "duplicated rank 1" in line for line in lines)
    assert any(prm(7) in line and "unit 'kW'" in line for line in lines)
    assert any(prm(8) in line and "interval_length '900'" in line for line in lines)
    assert "posted 3 household-days, refused 6" in out
    # Official: 0 exported 400 Wh (not 500), 2 imported 250 (not 300): 0 keeps 360,
    # 2 is allocated 250. Household 1's all-zero curve changes nothing.
    assert kwh(chain, keys[0]) == 360 and kwh(chain, keys[2]) == -250 and kwh(chain, keys[1]) == 0
    assert chain.kv.items() != before
    check_conservation(chain.kv)
    check_settled_intervals(chain.kv)
    assert decode_value(chain.kv.get(L.key_reconcile_stats(prm(0))))[L.RC_DAYS] == 1


def test_consent_and_withdrawal(commune, capsys):
    chain, keys, files, url, _ = commune
    rc, _, err = run(capsys, "registrar", "consent", "--prm", prm(3), "--memo", "formulaire 2026-12",
                     "--node", url, "--key", files["registrar"])
    assert (rc, err) == (0, "") and chain.kv.get(L.key_consent(prm(3))) is not None
    rc, _, err = run(capsys, "registrar", "consent", "--prm", prm(3), "--withdraw", "--node", url,
                     "--key", files["registrar"])
    assert (rc, err) == (0, "") and chain.kv.get(L.key_consent(prm(3))) is None
    rc, _, err = run(capsys, "registrar", "consent", "--prm", "123", "--node", url, "--key", files["registrar"])
    assert rc == 1 and err.startswith("error: --prm") and err.count("\n") == 1


def test_a_file_that_is_neither_shape_is_one_line(commune, capsys, tmp_path):
    _, _, files, url, _ = commune
    (tmp_path / "x.csv").write_text("hello;world\n")
    rc, _, err = run(capsys, "registrar", "reconcile", "--file", str(tmp_path / "x.csv"), "--node", url,
                     "--key", files["registrar"])
    assert rc == 1 and "neither Data Connect JSON" in err and err.count("\n") == 1
    rc, _, err = run(capsys, "registrar", "reconcile", "--file", str(tmp_path / "none.json"), "--node", url,
                     "--key", files["registrar"])
    assert rc == 1 and "file not found" in err and err.count("\n") == 1
