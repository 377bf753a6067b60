"""schemathesis against /openapi.json of a live household node: every check, no failure.

The run uses every schemathesis check (no 5xx, status codes, content types and
response bodies as documented, invalid input refused, valid input accepted, 405
with Allow for other methods). Its size and result are printed (pytest -s shows
them) and kept as JSON beside the test's files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.livenet import LiveNet

MAX_EXAMPLES = 60           # per operation and phase; ~1 000 requests in all
RUN_TIMEOUT_S = 240
CONFIG = Path(__file__).with_name("schemathesis.toml")


def find_schemathesis() -> Path:
    st = Path(sys.executable).parent / "st"
    if not st.exists():
        raise AssertionError(f"schemathesis is not installed ({st} missing): run `make install` "
                             "(it is in the test extras of pyproject.toml)")
    return st


def test_schemathesis_finds_no_failure(livenet: LiveNet, tmp_path):
    livenet.wait_settled_production("household-0")      # real intervals and consumers to read
    report = tmp_path / "schemathesis.json"
    cmd = [str(find_schemathesis()), "--config-file", str(CONFIG), "run",
           livenet.url("household-0") + "/openapi.json", "--checks", "all",
           "--max-examples", str(MAX_EXAMPLES), "--seed", "20240601", "--no-color", "--workers", "2",
           "--request-timeout", "30",
           "--generation-database", "none", "--report", "json", "--report-json-path", str(report)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=tmp_path)
    assert report.exists(), f"schemathesis wrote no report:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    doc = json.loads(report.read_text())
    cases = doc["test_cases"]
    print(f"\nschemathesis: {cases['generated']} cases over {doc['operations']['tested']} operations, "
          f"{cases['with_failures']} with failures, {len(doc['errors'])} errors, exit {doc['exit_code']}")
    output = f"{done.stdout[-6000:]}\n{done.stderr[-2000:]}\n{livenet.logs()}"
    assert (doc["failures"], doc["errors"], cases["with_failures"]) == ([], [], 0), output
    # Every operation the node documents (node/api/routes.py) was tested: with the euro,
    # proof, registrar and reconciliation routes, the dashboard's assets, /openapi.json,
    # /metrics and the 12 consent and Data Connect operations, 39 of them.
    documented = sum(len(methods) for methods in livenet.get_json("household-0", "/openapi.json")["paths"].values())
    assert doc["operations"]["tested"] == doc["operations"]["total"] == documented >= 39, output
    assert cases["generated"] >= 500, output
    assert done.returncode == 0, output
