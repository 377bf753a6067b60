"""genesis new: homes, key modes, every DESIGN §3 parameter written out."""

import json
import stat

import pytest

from node.home.errors import HomeError
from node.home.homedir import create_network, load_home
from tokens.genesis import DEFAULT_PARAMS, compute_chain_id


def test_genesis_lists_every_parameter_with_its_default(tmp_path):
    create_network(tmp_path / "net", name="Testville", insee="99999", validators=4, households=8, base_port=27000)
    doc = json.loads((tmp_path / "net" / "genesis.json").read_text())
    assert doc["params"] == DEFAULT_PARAMS
    assert [v["addr"] for v in doc["validators"]] == [f"/ip4/127.0.0.1/tcp/{27000 + i}" for i in range(4)]


def test_every_home_holds_its_key_at_mode_0600_and_the_same_chain(tmp_path):
    genesis = create_network(tmp_path, name="T", insee="99999", validators=2, households=3)
    names = [f"validator-{i}" for i in range(2)] + [f"household-{i}" for i in range(3)] + ["registrar"]
    for name in names:
        key = tmp_path / name / "key.json"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert load_home(tmp_path / name).genesis.chain_id == genesis.chain_id
    assert genesis.chain_id == compute_chain_id((tmp_path / "genesis.json").read_bytes())


def test_invalid_genesis_new_into_a_used_directory(tmp_path):
    create_network(tmp_path, name="T", insee="99999", validators=1)
    with pytest.raises(HomeError, match="already exists"):
        create_network(tmp_path, name="T", insee="99999", validators=1)


def test_invalid_validator_ip(tmp_path):
    with pytest.raises(HomeError, match="--validator-ip"):
        create_network(tmp_path, name="T", insee="99999", validators=2, validator_ip="300.0.0.1")
