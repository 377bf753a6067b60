"""genesis new: homes, key modes, every DESIGN §3 parameter written out."""

import json
import stat

import pytest

from node.home.errors import HomeError
from node.home.homedir import HOUSEHOLD_FILE, KEY_FILE, create_network, is_private, load_home, load_household_spec
from node.home.keyfile import load_key
from node.home.receivekeys import get_receive_dir, load_receive_keys
from tokens.genesis import DEFAULT_PARAMS, compute_chain_id, open_households
from tokens.sealing import compute_genesis_keyring


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


def test_a_sealing_network_seals_its_households_and_gives_each_its_own_record(tmp_path):
    clear = create_network(tmp_path / "clear", name="T", insee="99999", validators=1, households=2)
    text = (tmp_path / "clear" / "genesis.json").read_text()
    # Without --seal-payloads nothing changes: the records in clear, no household.json.
    assert all(h.meter in text and h.prm in text and not h.sealed for h in clear.households)
    assert not list((tmp_path / "clear").glob(f"*/{HOUSEHOLD_FILE}"))
    assert load_household_spec(clear, tmp_path / "clear" / "household-1") == clear.households[1]

    genesis = create_network(tmp_path / "sealed", name="T", insee="99999", validators=2, households=3,
                             seal_payloads=True)
    text = (tmp_path / "sealed" / "genesis.json").read_text()
    assert genesis.seals_households and "Foyer" not in text and '"prm"' not in text and '"meter"' not in text
    validator = load_key(tmp_path / "sealed" / "validator-1" / KEY_FILE)
    # docs/privacy.md "Receive keys": epoch 0 is sealed to a receive key in the
    # validator's home (mode 0600), which its identity key alone does not open.
    receive_dir = get_receive_dir(tmp_path / "sealed" / "validator-1")
    receive = load_receive_keys(receive_dir)
    assert len(receive) == 1 and all(is_private(path) for path in receive_dir.iterdir())
    assert genesis.sealing.get_receive(1) == next(iter(receive))
    assert compute_genesis_keyring(genesis, validator.seed, validator.public).secrets == {}
    secret = compute_genesis_keyring(genesis, validator.seed, validator.public, receive).secrets[0]
    opened = open_households(genesis, secret)
    for i in range(3):
        home = tmp_path / "sealed" / f"household-{i}"
        own = load_household_spec(genesis, home)
        assert own == opened[i] and own.prm not in text and own.label == f"Foyer {i}"
    # A home whose record is missing or another's: one line.
    (tmp_path / "sealed" / "household-0" / HOUSEHOLD_FILE).unlink()
    with pytest.raises(HomeError, match="not found"):
        load_household_spec(genesis, tmp_path / "sealed" / "household-0")
    other = (tmp_path / "sealed" / "household-1" / HOUSEHOLD_FILE).read_text()
    (tmp_path / "sealed" / "household-2" / HOUSEHOLD_FILE).write_text(other)
    with pytest.raises(HomeError, match="not this household's record"):
        load_household_spec(genesis, tmp_path / "sealed" / "household-2")
    assert load_household_spec(genesis, tmp_path / "sealed" / "validator-0") is None
