"""A scheduled upgrade on a live validator (real processes): the CLI schedules version 2
and then a version this software lacks; headers switch to version 2 at its height, the
node stops before the unknown one with exit status 3 and one line, and ``node verify``
replays the chain across the upgrade."""

from __future__ import annotations

import json

from consensus.block import Block
from node.service.upgrades import UPGRADE_EXIT
from node.store import Store
from node.store.store import DB_DIR
from tests.support.nodes import run_cli
from tests.support.wait import wait_for
from tokens.upgrades import PROTOCOL_VERSION
from wire import MAX_BLOCK_BYTES, decode


def schedule(v0, tmp_path, version: int, height: int) -> None:
    home = v0.home
    proposed, signed = tmp_path / f"up{version}.json", tmp_path / f"up{version}-signed.json"
    for args in (("propose", "--version", str(version), "--height", str(height), "--out", str(proposed),
                  "--node", v0.url),
                 ("cosign", "--in", str(proposed), "--key", str(home / "key.json"), "--out", str(signed)),
                 ("submit", "--in", str(signed), "--node", v0.url)):
        done = run_cli("upgrade", *args)
        assert done.returncode == 0, done.stderr


def test_a_live_chain_crosses_an_upgrade_and_halts_before_an_unknown_one(cluster_of, tmp_path) -> None:
    cluster = cluster_of(1, 0, max_idle_s=1)
    v0 = cluster.start("validator-0")[0]
    cluster.wait_height(1, [v0])
    # One block a second: leave the CLI (three processes per upgrade) time to act.
    v2_at = v0.height() + 25
    schedule(v0, tmp_path, 2, v2_at)
    wait_for(lambda: len(v0.get_json("/upgrades")["scheduled"]) == 1, 30, "version 2 scheduled")
    unknown_at = v2_at + 12
    schedule(v0, tmp_path, PROTOCOL_VERSION + 1, unknown_at)
    wait_for(lambda: len(v0.get_json("/upgrades")["scheduled"]) == 2, 30, "the unknown version scheduled")
    status = v0.get_json("/upgrades")
    assert [s["supported"] for s in status["scheduled"]] == [True, False]

    assert v0.wait(timeout=120) == UPGRADE_EXIT
    log = v0.log_path.read_text()
    assert f"halting at height {unknown_at - 1}: the chain runs protocol version {PROTOCOL_VERSION + 1}" in log

    verified = run_cli("node", "verify", "--home", str(v0.home), "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["height"] == unknown_at - 1
    with Store.open(v0.home / DB_DIR, create=False) as store:
        versions = {h: decode(store.block(h), Block, MAX_BLOCK_BYTES).header.version
                    for h in range(1, store.height() + 1)}
    assert {versions[h] for h in versions if h < v2_at} == {1}
    assert {versions[h] for h in versions if h >= v2_at} == {2}

    # Started again with the same software, it refuses at once, with the same line.
    again = run_cli("node", "run", "--home", str(v0.home), "--http", f"127.0.0.1:{v0.http_port}")
    assert again.returncode == UPGRADE_EXIT and len(again.stderr.strip().splitlines()) == 1
