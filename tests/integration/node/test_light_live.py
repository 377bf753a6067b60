"""A household node in light mode on real processes (docs/privacy.md "Household nodes").

One validator, household-0 as a full node, household-1 as ``node run --light``, and
household-2 as a full node that lies to household nodes (``--byzantine lie-proofs``:
every account it proves is a rich one). The light node follows the chain by headers
over libp2p, shows its own balance and curve through its API as the validator has
them, bans the liar, and its store holds no block and nothing of household-0's."""

from __future__ import annotations

import pytest

from node.store.light import LightStore
from node.store.store import DB_DIR
from tests.support.livenet import STARTUP_S, LiveNet
from tests.support.nodes import NodeProc
from tests.support.ports import free_port
from tests.support.wait import wait_for
from tokens.visibility import is_readable_by

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def balance(net: LiveNet, name: str, addr: str) -> int | None:
    """The balance as node ``name`` shows it to the household itself (signed: docs/privacy.md)."""
    doc = net.get_json(name, f"/accounts/{addr}", signer=net.name_of(addr))
    return None if doc is None else doc["balances"]["kwh"]


def test_light_household_follows_shows_its_own_data_and_bans_a_lying_peer(tmp_path) -> None:
    net = LiveNet(tmp_path, feed=False, households=3)
    liar = NodeProc("household-2", tmp_path / "household-2", free_port(),
                    ("--byzantine", "lie-proofs", "--listen", f"/ip4/127.0.0.1/tcp/{free_port()}"))
    net.nodes["household-2"] = liar
    try:
        net.start_nodes("validator-0", "household-0", "household-2")
        liar_addr = net.status("household-2")["listen_addrs"][0]
        net.nodes["household-1"].extra = ("--light", "--peer", liar_addr)
        net.start_nodes("household-1")
        net.start_feeder()
        light, me = "household-1", net.address("household-1")
        assert net.status(light)["light"] is True
        # Its own balance, proven, equal to the validator's once both show the same height.
        wait_for(lambda: net.height(light) >= net.height("validator-0") - 1 and
                 balance(net, light, me) == balance(net, "validator-0", me) != 0 and
                 net.height(light) > 5, 120, "the light node's balance to match the validator's", net.logs)
        row = net.wait_settled_import(light)
        full = net.get_json("validator-0", f"/households/{me}/intervals?from={row['start']}&to={row['start']}",
                            signer=light)
        assert full["intervals"] == [row]
        # The liar was asked in turn, refused and banned; its rich account never showed.
        log = net.nodes[light].log_path
        wait_for(lambda: "sent a bad header chain or proof" in log.read_text(), 120,
                 "the light node to catch the lying peer", net.logs)
        assert "does not reach the state root" in log.read_text()
        assert balance(net, light, me) < 1_000_000
        assert net.get(light, "/blocks/1").status_code == 404
    finally:
        net.stop()
    # What it kept: headers and its own and public entries, nothing of household-0's.
    other = net.key("household-0").public
    with LightStore.open(tmp_path / "household-1" / DB_DIR) as store, \
            LightStore.open(tmp_path / "validator-0" / DB_DIR) as full:
        assert store.is_light() and store.header_top() > 5
        entries = list(store.iter_entries())
        assert not [k for k, _ in entries if k.startswith(b"b/")]
        assert not [k for k, v in entries if other in k or other in v]
        assert all(is_readable_by(full.state, k, net.key("household-1").public) for k, _ in store.state.iter_prefix(b""))


def test_light_node_refuses_to_run_a_validator_or_a_full_home(tmp_path) -> None:
    net = LiveNet(tmp_path, feed=False)
    for name, match in (("validator-0", "validator cannot run in light mode"), ):
        node = net.nodes[name]
        node.extra = ("--light",)
        node.start()
        assert node.wait(STARTUP_S) != 0
        assert match in node.log_path.read_text()
