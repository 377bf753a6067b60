"""``voisinage validator`` bad input: one clear line, a non-zero exit, nothing on chain.

One real validator node (a 1-validator commune, so one co-signature is a quorum) answers
``propose-change`` and ``submit``; ``cosign`` works offline on the change file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.home.homedir import KEY_FILE
from node.home.keyfile import load_key
from tests.support.nodes import NodeProc, make_commune, run_cli
from tests.support.ports import free_port

ADDR = "/ip4/127.0.0.1/tcp/27999"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("vcli")
    commune = make_commune(root / "commune", 1, 1)
    node = NodeProc("validator-0", commune.home("validator-0"), free_port()).start()
    node.wait_ready()
    keys = {name: commune.home(name) / KEY_FILE for name in ("validator-0", "household-0")}
    change = root / "change.json"
    done = run_cli("validator", "propose-change", "--node", node.url, "--add", "ab" * 32, "--add-addr", ADDR,
                   "--out", str(change))
    assert done.returncode == 0, done.stderr
    signed = root / "signed.json"
    assert run_cli("validator", "cosign", "--in", str(change), "--key", str(keys["validator-0"]),
                   "--out", str(signed)).returncode == 0
    yield {"node": node, "root": root, "keys": keys, "change": change, "signed": signed,
           "validator": load_key(keys["validator-0"]).public.hex(),
           "household": load_key(keys["household-0"]).public.hex()}
    node.stop()


def fails_in_one_line(*args: str) -> str:
    done = run_cli("validator", *args)
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def write(net: dict, name: str, text: str) -> str:
    path = net["root"] / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("args, expected", [
    (["--add", "zz", "--add-addr", ADDR], "64 hex characters"),
    (["--add", "ab" * 32], "one --add-addr per --add"),
    (["--add", "ab" * 32, "--add-addr", "not-an-addr"], "not a multiaddr"),
    (["--remove", "cd" * 32], "unknown_validator"),
    (["--add", "{validator}", "--add-addr", ADDR], "already_validator"),
    (["--remove", "{validator}"], "leave a validator"),
    ([], "must change something"),
])
def test_invalid_propose_change(net, args, expected) -> None:
    args = [a.format(**net) for a in args]
    line = fails_in_one_line("propose-change", "--node", net["node"].url, *args, "--out", str(net["root"] / "x.json"))
    assert expected in line
    assert not (net["root"] / "x.json").exists()


def test_invalid_propose_change_unreachable_node(net) -> None:
    line = fails_in_one_line("propose-change", "--node", "http://127.0.0.1:9", "--remove", "cd" * 32,
                             "--out", str(net["root"] / "x.json"))
    assert "cannot reach" in line


@pytest.mark.parametrize("content, key, expected", [
    ("not json", "validator-0", "not a validator set change file"),
    ('{"format": "other"}', "validator-0", "not a validator set change file"),
    (None, "household-0", "is not one of this change's validators"),
    ("signed", "validator-0", "already co-signed"),
])
def test_invalid_cosign(net, content, key, expected) -> None:
    path = (str(net["change"]) if content is None else str(net["signed"]) if content == "signed"
            else write(net, "bad.json", content))
    line = fails_in_one_line("cosign", "--in", path, "--key", str(net["keys"][key]), "--out",
                             str(net["root"] / "y.json"))
    assert expected in line


def test_invalid_cosign_missing_file(net) -> None:
    line = fails_in_one_line("cosign", "--in", str(net["root"] / "nowhere.json"), "--key",
                             str(net["keys"]["validator-0"]), "--out", str(net["root"] / "y.json"))
    assert "file not found" in line


def test_invalid_submit_too_few_signatures_or_other_chain(net) -> None:
    line = fails_in_one_line("submit", "--in", str(net["change"]), "--node", net["node"].url)
    assert "too few signatures: 0 of the 1" in line
    doc = json.loads(net["signed"].read_text())
    doc["chain_id"] = "00" * 32
    line = fails_in_one_line("submit", "--in", write(net, "other.json", json.dumps(doc)), "--node", net["node"].url)
    assert "another chain" in line
    tampered = json.loads(net["signed"].read_text())
    tampered["tx"] = tampered["tx"][:-4] + ("0000" if not tampered["tx"].endswith("0000") else "1111")
    line = fails_in_one_line("submit", "--in", write(net, "tampered.json", json.dumps(tampered)), "--node",
                             net["node"].url)
    assert "does not verify" in line
    # Nothing reached the chain: the next change still carries nonce 1.
    assert net["node"].get("/validators/change").json()["next_nonce"] == 1
