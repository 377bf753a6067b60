"""``localnet up`` homes (node/localnet/launcher.py): a new network seals household
payloads unless told not to, and a reused home keeps the choice its genesis made."""

from __future__ import annotations

import json

import pytest

from node.localnet.errors import LocalnetError
from node.localnet.launcher import LocalnetConfig, prepare_nodes
from node.localnet.ports import find_listen_port_block


def config(tmp_path, **kw) -> LocalnetConfig:
    return LocalnetConfig(validators=1, households=1, home=tmp_path / "net",
                          http_base=find_listen_port_block(3), **kw)


def test_a_new_network_seals_by_default_and_its_household_runs_light(tmp_path):
    home, nodes = prepare_nodes(config(tmp_path), None)
    assert json.loads((home / "genesis.json").read_text())["sealing"] is not None
    assert [(n.name, n.light) for n in nodes] == [("validator-0", False), ("household-0", True)]


def test_no_seal_makes_a_clear_network_with_full_household_nodes(tmp_path):
    home, nodes = prepare_nodes(config(tmp_path, seal=False), None)
    assert json.loads((home / "genesis.json").read_text()).get("sealing") is None
    assert not any(n.light for n in nodes)


@pytest.mark.parametrize("made,asked,error", [(False, None, None), (True, None, None), (False, True, "does not seal"),
                                              (True, False, "seals payloads; --no-seal")])
def test_a_reused_home_keeps_its_genesis_choice(tmp_path, made, asked, error):
    prepare_nodes(config(tmp_path, seal=made), None)
    if error:
        with pytest.raises(LocalnetError, match=error):
            prepare_nodes(config(tmp_path, seal=asked), None)
    else:
        _, nodes = prepare_nodes(config(tmp_path, seal=asked), None)
        assert any(n.light for n in nodes) is made
