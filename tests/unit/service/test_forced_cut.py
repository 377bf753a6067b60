"""The cut is forced (docs/privacy.md "Erasure", "The cut is forced"): once an erasure
makes the cut due, the validators' nodes build it, co-sign it over the tx gossip and
take it into a mempool, with no operator command; it commits and every holder's node
deletes the older epochs and the receive keys that opened them. GET /status's ``cut``
and the ``voisinage_cut_overdue`` gauge say it is overdue before, and no longer after.
Real LevelDB stores, real ``Node`` objects; blocks committed through each node's
ledger app, gossip carried by hand from one node's handler to the next."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.home.homedir import KEY_FILE, create_network, load_home, load_household_spec
from node.home.keyfile import load_key
from node.net import Outcome
from node.service.cuts import CUT_TURN_S, describe_cut, get_builder, get_pending_cut
from node.service.node import Node
from node.service.runner import open_store
from tests.unit.service.test_cut_node import commit_all, fresh_receive_keys, home_receive_keys, what_opens
from tokens import layout as L
from tokens import txs as T
from tokens.queries import get_sealing
from tokens.sealing import build_commune_sealed, build_sealed, build_set_data_key
from wire import Keypair, decode
from wire.seal import NO_LINK, compute_commune_public

HOUR = 3600
ERASE_AFTER = 2 * HOUR
OVERDUE_S = 300


def open_commune(root: Path, validators: int, port: int) -> list[Node]:
    """A sealing commune of ``validators`` validators and two households, whose chain
    time starts far enough back that the erasure below happens before now."""
    now = int(time.time())
    create_network(root, name="Testville", insee="12345", validators=validators, households=2, base_port=port,
                   genesis_time=now - ERASE_AFTER - 6 * HOUR, seal_payloads=True,
                   params={"erasure_after_s": ERASE_AFTER})
    return [Node(load_home(root / f"validator-{i}"), open_store(load_home(root / f"validator-{i}")),
                 cut_overdue_s=OVERDUE_S) for i in range(validators)]


def running_commune(tmp_path: Path, validators: int, port: int) -> Iterator[tuple[Path, list[Node]]]:
    root = tmp_path / "commune"
    nodes = open_commune(root, validators, port)
    try:
        yield root, nodes
    finally:
        for node in nodes:
            node.store.close()


@pytest.fixture
def three(tmp_path: Path) -> Iterator[tuple[Path, list[Node]]]:
    yield from running_commune(tmp_path, 3, 40700)


@pytest.fixture
def alone(tmp_path: Path) -> Iterator[tuple[Path, list[Node]]]:
    yield from running_commune(tmp_path, 1, 40800)


def erase_one(root: Path, nodes: list[Node], vkeys: list[Keypair]) -> tuple[Keypair, int]:
    """Two households publish their data keys and seal a reading; one is deregistered,
    and erased in a block ten minutes before now. (the erased household, erasure time)."""
    gone, stays = (load_key(root / f"household-{i}" / KEY_FILE) for i in range(2))
    registrar = load_key(root / "registrar" / KEY_FILE)
    chain_id = nodes[0].chain_id
    public = bytes.fromhex(get_sealing(nodes[0].store.state)["public"])
    erased_at = int(time.time()) - 600
    left = erased_at - ERASE_AFTER
    t = (left - 2 * HOUR) // 1800 * 1800
    setkeys = [build_set_data_key(k, chain_id, 1, 0, public, os.urandom(32)).encode() for k in (gone, stays)]
    commit_all(nodes, vkeys, setkeys + fresh_receive_keys(nodes), t - 60)
    assert fresh_receive_keys(nodes) == []
    readings = []
    for i, k in enumerate((gone, stays)):
        meter = load_household_spec(nodes[0].genesis, root / f"household-{i}").meter
        inner = T.MeterReading(signer=k.public, meter=meter, seq=1, t=t, import_wh=300, export_wh=100,
                               sig=bytes(64))
        readings.append(build_sealed(inner, k, chain_id, 0, os.urandom(24)).encode())
    commit_all(nodes, vkeys, readings, t + 1)
    deregister = build_commune_sealed(T.Deregister(signer=registrar.public, nonce=1, key=gone.public, memo="départ",
                                                   sig=bytes(64)), registrar, chain_id, 0, public,
                                      os.urandom(32)).encode()
    commit_all(nodes, vkeys, [deregister], left)
    assert all(node.drive_cut() == [] for node in nodes)     # nothing due yet: no node builds a cut
    assert nodes[0].status()["cut"] == {"cut_due": False, "cut_pending_s": None, "cut_overdue": False}
    commit_all(nodes, vkeys, [], erased_at)                   # the erasure
    assert nodes[0].store.state.get(L.key_household_data_key(gone.public, 0)) is None
    return gone, erased_at


def read_gauge(node: Node, name: str) -> float:
    for line in node.render_metrics().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in the metrics")


def test_validators_nodes_make_the_due_cut_and_the_holders_delete_the_old_epochs(three, caplog):
    root, nodes = three
    vkeys = [load_key(root / f"validator-{i}" / KEY_FILE) for i in range(3)]
    gone, erased_at = erase_one(root, nodes, vkeys)
    state = nodes[0].store.state
    assert get_pending_cut(state).since_s == erased_at

    # The signal: due at once, overdue once it waited longer than the node's --cut-overdue-s.
    assert describe_cut(state, erased_at + OVERDUE_S, OVERDUE_S) == {"cut_due": True, "cut_pending_s": OVERDUE_S,
                                                          "cut_overdue": False}
    status = nodes[0].status()["cut"]
    assert status["cut_due"] and status["cut_overdue"] and status["cut_pending_s"] >= 600
    assert read_gauge(nodes[0], "voisinage_cut_overdue") == 1.0
    assert read_gauge(nodes[0], "voisinage_cut_pending_seconds") >= 600
    assert "Sealed nonce 1 of epoch 0" in what_opens(nodes, vkeys, gone.public, root)

    # No operator command: each validator's node looks at the due cut, as after a block.
    # Exactly one, whose turn it is, builds it, co-signed by itself alone: too few to commit.
    built = {i: node.drive_cut() for i, node in enumerate(nodes)}
    builders = [i for i, out in built.items() if out]
    assert len(builders) == 1 and len(built[builders[0]]) == 1
    b = builders[0]
    height = nodes[0].store.height() + 1
    assert get_builder(state, height, int(time.time())) == vkeys[b].public
    proposal = decode(built[b][0], T.RotateDataKey)
    assert proposal.link == NO_LINK and proposal.nonce == 1 and [s.validator for s in proposal.sigs] == [vkeys[b].public]
    assert all(len(node.mempool) == 0 for node in nodes)
    # A forged co-signature is the sender's fault (REJECT); a rotation with a link is not gathered.
    forged = dataclasses.replace(proposal, sigs=(T.ValidatorSig(validator=vkeys[(b + 1) % 3].public,
                                                                 sig=bytes(64)),))
    other = nodes[(b + 1) % 3]
    assert other.on_tx("peer", forged.encode()).outcome is Outcome.REJECT
    linked = dataclasses.replace(proposal, link=bytes(71) + b"\x01")
    assert other.take_cut_proposal(linked.encode()) is None

    # Gossip reaches the next validator: it checks its own copy, co-signs, and with two
    # of three signatures takes the cut into its mempool.
    caplog.set_level("INFO", logger="voisinage.node")
    verdict, passed = other.take_cut_proposal(built[b][0])
    assert verdict.outcome is Outcome.ACCEPT
    cut = decode(passed, T.RotateDataKey)
    assert sorted(s.validator for s in cut.sigs) == sorted([vkeys[b].public, vkeys[(b + 1) % 3].public])
    assert [entry.data for entry in other.mempool.entries()] == [passed]
    assert any("co-signed the cut of the commune data key at epoch 1" in r.getMessage() for r in caplog.records)
    # The third node, hearing the builder's copy late, co-signs too and takes its own
    # quorum (the same cut, one more signature).
    third = nodes[(b + 2) % 3]
    assert third.on_tx("peer", built[b][0]).outcome is Outcome.ACCEPT
    assert len(third.mempool) == 1

    commit_all(nodes, vkeys, [entry.data for entry in other.mempool.entries()], erased_at + 700)
    for i, node in enumerate(nodes):
        assert sorted(node.keys.secrets) == [1]
        assert list(home_receive_keys(root, i)) == list(node.keys.receive) == list(node.keys.receive_used)
    sealing = get_sealing(nodes[0].store.state)
    assert not sealing["cut_due"] and sealing["cut"] == {"epoch": 1, "height": nodes[0].store.height()}
    assert what_opens(nodes, vkeys, gone.public, root) == []
    # The signal clears; nothing more is built or gossiped.
    assert nodes[0].status()["cut"] == {"cut_due": False, "cut_pending_s": None, "cut_overdue": False}
    assert read_gauge(nodes[0], "voisinage_cut_overdue") == 0.0
    assert read_gauge(nodes[0], "voisinage_cut_pending_seconds") == -1.0
    assert all(node.drive_cut() == [] for node in nodes)
    verdict = nodes[0].on_tx("peer", built[b][0])
    assert verdict.outcome is Outcome.IGNORE


def test_the_builders_turn_passes_to_the_next_validator(three):
    root, nodes = three
    vkeys = [load_key(root / f"validator-{i}" / KEY_FILE) for i in range(3)]
    _, erased_at = erase_one(root, nodes, vkeys)
    state, height = nodes[0].store.state, nodes[0].store.height() + 1
    turns = [get_builder(state, height, erased_at + k * CUT_TURN_S) for k in range(4)]
    assert len(set(turns[:3])) == 3 and turns[3] == turns[0]


def test_a_lone_validator_takes_its_own_cut(alone):
    root, nodes = alone
    vkeys = [load_key(root / "validator-0" / KEY_FILE)]
    gone, erased_at = erase_one(root, nodes, vkeys)
    node = nodes[0]
    out = node.drive_cut()
    assert [entry.data for entry in node.mempool.entries()] == out and len(out) == 1
    commit_all(nodes, vkeys, out, erased_at + 700)
    assert sorted(node.keys.secrets) == [1] and not node.status()["cut"]["cut_due"]
    assert what_opens(nodes, vkeys, gone.public, root) == []
    assert compute_commune_public(node.keys.secrets[1]) == decode(out[0], T.RotateDataKey).public
