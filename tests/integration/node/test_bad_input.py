"""Bad input for ``voisinage node run``: one clear line on stderr, a non-zero exit, never
a traceback (DESIGN §9 CLI).

Every case gets its own copy of a validator home from ``voisinage genesis new``, and
all cases run at once as separate processes (a node start costs seconds of imports).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from node.home.homedir import load_home
from node.store import Store
from tests.support.nodes import CLI, REPO, make_commune
from tests.support.ports import free_port

CASE_TIMEOUT_S = 120


@dataclass(frozen=True)
class Outcome:
    code: int | None
    stderr: str


@dataclass(frozen=True)
class Case:
    expect_code: int
    expect_text: str                       # a fragment of the one error line
    args: Callable[[Path, dict], list[str]]
    damage: Callable[[Path, dict], None] = lambda home, ctx: None


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def _run_args(home: Path, ctx: dict, *extra: str) -> list[str]:
    return ["node", "run", "--home", str(home), "--http", f"127.0.0.1:{free_port()}",
            "--listen", "/ip4/127.0.0.1/tcp/0", *extra]


def _write(name: str, data: bytes) -> Callable[[Path, dict], None]:
    return lambda home, ctx: (home / name).write_bytes(data)


def _corrupt_manifest(home: Path, ctx: dict) -> None:
    for path in (home / "db").glob("MANIFEST-*"):
        path.write_bytes(b"\x00not a manifest\xff" * 4)


def _lock_db(home: Path, ctx: dict) -> None:
    ctx["held_store"] = Store.open_home(home)


def _other_genesis(home: Path, ctx: dict) -> None:
    path = home / "genesis.json"
    path.write_bytes(path.read_bytes().replace(b'"Testville"', b'"Otherville"'))


CASES: dict[str, Case] = {
    "unknown_flag": Case(2, "--bogus", lambda home, ctx: ["node", "run", "--home", str(home), "--bogus"]),
    "missing_home_option": Case(2, "--home", lambda home, ctx: ["node", "run"]),
    "missing_home_dir": Case(1, "home directory not found",
                             lambda home, ctx: _run_args(home / "nowhere", ctx)),
    "missing_genesis": Case(1, "no genesis.json", _run_args,
                            lambda home, ctx: (home / "genesis.json").unlink()),
    "corrupt_genesis": Case(1, "genesis.json", _run_args, _write("genesis.json", b"{")),
    "corrupt_config": Case(1, "config.json", _run_args, _write("config.json", b"[")),
    "bad_http_address": Case(1, "bad --http address",
                             lambda home, ctx: ["node", "run", "--home", str(home), "--http", "nonsense"]),
    "http_port_in_use": Case(1, "cannot serve HTTP",
                             lambda home, ctx: ["node", "run", "--home", str(home), "--http",
                                                f"127.0.0.1:{ctx['busy_http'].getsockname()[1]}"]),
    "p2p_port_in_use": Case(1, "cannot listen on",
                            lambda home, ctx: ["node", "run", "--home", str(home), "--http",
                                               f"127.0.0.1:{free_port()}", "--listen",
                                               f"/ip4/127.0.0.1/tcp/{ctx['busy_p2p'].getsockname()[1]}"]),
    "bad_listen_address": Case(1, "bad listen address",
                               lambda home, ctx: ["node", "run", "--home", str(home), "--listen", "garbage",
                                                  "--http", f"127.0.0.1:{free_port()}"]),
    "bad_peer_address": Case(1, "bad peer address",
                             lambda home, ctx: _run_args(home, ctx, "--peer", "/ip4/127.0.0.1/tcp/1")),
    "corrupt_db_current": Case(1, "is corrupt", _run_args, _write("db/CURRENT", b"garbage\n")),
    "corrupt_db_manifest": Case(1, "is corrupt", _run_args, _corrupt_manifest),
    "db_locked": Case(1, "is locked", _run_args, _lock_db),
    "db_of_another_chain": Case(1, "belongs to chain", _run_args, _other_genesis),
    "corrupt_key": Case(1, "corrupt key file", _run_args, _write("key.json", b"{not json")),
    "corrupt_sign_state": Case(1, "corrupt double-sign record", _run_args,
                               _write("sign_state.bin", b"\x93garbage")),
    "corrupt_p2p_key": Case(1, "corrupt libp2p identity", _run_args, _write("p2p.key", b"junk")),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    """Run every case at once; each gets a damaged copy of a validator home with a db."""
    root = tmp_path_factory.mktemp("bad-input")
    commune = make_commune(root / "commune", 4, 1)
    template = commune.home("validator-0")
    from node.service.runner import open_store
    open_store(load_home(template)).close()
    ctx = {"busy_http": _listening_socket(), "busy_p2p": _listening_socket()}
    procs = {}
    try:
        for name, case in CASES.items():
            home = root / name
            shutil.copytree(template, home)
            case.damage(home, ctx)
            procs[name] = subprocess.Popen([*CLI, *case.args(home, ctx)], cwd=REPO, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        yield {name: _collect(proc) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        ctx["busy_http"].close()
        ctx["busy_p2p"].close()
        if "held_store" in ctx:
            ctx["held_store"].close()


def _collect(proc: subprocess.Popen) -> Outcome:
    deadline = time.monotonic() + CASE_TIMEOUT_S
    try:
        _, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        return Outcome(None, stderr)
    return Outcome(proc.returncode, stderr)


@pytest.mark.parametrize("name", sorted(CASES))
def test_invalid_node_run_input(name: str, outcomes: dict[str, Outcome]) -> None:
    case, outcome = CASES[name], outcomes[name]
    assert outcome.code is not None, f"{name}: the node kept running: {outcome.stderr[-500:]}"
    lines = outcome.stderr.strip().splitlines()
    assert outcome.code == case.expect_code, f"{name}: exit {outcome.code}: {outcome.stderr[-800:]}"
    assert "Traceback" not in outcome.stderr
    assert len(lines) == 1, f"{name}: expected one line on stderr, got:\n{outcome.stderr[-800:]}"
    assert lines[0].startswith("error") and case.expect_text in lines[0], lines[0]
