"""node/home/homedir.py create_home: the home of a node joining a running commune (`node join`)."""

from __future__ import annotations

import json

import pytest

from node.home.errors import HomeError
from node.home.homedir import (
    CONFIG_FILE, GENESIS_FILE, KEY_FILE, create_home, create_network, home_key, is_private,
)
from node.home.keyfile import load_key, new_keypair, save_key
from node.home.receivekeys import RECEIVE_DIR, get_receive_dir, load_receive_keys, new_receive_key


@pytest.fixture
def commune(tmp_path):
    create_network(tmp_path / "net", name="Joinville", insee="12345", validators=1, households=1)
    return tmp_path / "net"


def test_a_new_home_holds_the_same_genesis_bytes_the_given_key_and_a_household_config(tmp_path, commune):
    key_file = tmp_path / "mine.json"
    save_key(key_file, new_keypair())
    home, created = create_home(tmp_path / "box", commune / GENESIS_FILE, key_file=key_file,
                                listen="/ip4/0.0.0.0/tcp/26700", http="127.0.0.1:8799")
    assert created
    assert (home.path / GENESIS_FILE).read_bytes() == (commune / GENESIS_FILE).read_bytes()   # same chain id
    assert home_key(home).public == load_key(key_file).public
    config = json.loads((home.path / CONFIG_FILE).read_text())
    assert config == {"name": "box", "role": "household", "listen": "/ip4/0.0.0.0/tcp/26700",
                      "http": "127.0.0.1:8799"}


def test_without_a_key_file_a_new_key_is_made_and_kept_on_reuse(tmp_path, commune):
    first, created = create_home(tmp_path / "box", commune / GENESIS_FILE, listen="/ip4/127.0.0.1/tcp/1",
                                 http="127.0.0.1:1")
    again, created_again = create_home(tmp_path / "box", commune / GENESIS_FILE, listen="/ip4/127.0.0.1/tcp/2",
                                       http="127.0.0.1:2")
    assert created and not created_again
    assert home_key(again).public == home_key(first).public
    assert (tmp_path / "box" / KEY_FILE).stat().st_mode & 0o077 == 0


def test_invalid_reuse_with_another_communes_genesis_is_refused(tmp_path, commune):
    create_network(tmp_path / "other", name="Autreville", insee="54321", validators=1)
    create_home(tmp_path / "box", commune / GENESIS_FILE, listen="/ip4/127.0.0.1/tcp/1", http="127.0.0.1:1")
    with pytest.raises(HomeError, match="another commune's chain"):
        create_home(tmp_path / "box", tmp_path / "other" / GENESIS_FILE, listen="/ip4/127.0.0.1/tcp/1",
                    http="127.0.0.1:1")


def test_invalid_reuse_with_another_key_is_refused(tmp_path, commune):
    create_home(tmp_path / "box", commune / GENESIS_FILE, listen="/ip4/127.0.0.1/tcp/1", http="127.0.0.1:1")
    save_key(tmp_path / "other.json", new_keypair())
    with pytest.raises(HomeError, match="another key"):
        create_home(tmp_path / "box", commune / GENESIS_FILE, key_file=tmp_path / "other.json",
                    listen="/ip4/127.0.0.1/tcp/1", http="127.0.0.1:1")


@pytest.mark.parametrize("content, reason", [(None, "cannot read"), (b"{not json", "genesis")])
def test_invalid_genesis_file_is_one_clear_error_and_writes_nothing(tmp_path, content, reason):
    genesis = tmp_path / "genesis.json"
    if content is not None:
        genesis.write_bytes(content)
    with pytest.raises(HomeError, match=reason):
        create_home(tmp_path / "box", genesis, listen="/ip4/127.0.0.1/tcp/1", http="127.0.0.1:1")
    assert not (tmp_path / "box").exists()


def test_a_validator_key_gets_the_validator_role(tmp_path, commune):
    home, _ = create_home(tmp_path / "v", commune / GENESIS_FILE, key_file=commune / "validator-0" / KEY_FILE,
                          listen="/ip4/127.0.0.1/tcp/1", http="127.0.0.1:1")
    assert json.loads((home.path / CONFIG_FILE).read_text())["role"] == "validator"


def test_the_receive_keys_beside_the_key_file_move_into_the_home(tmp_path, commune):
    # docs/privacy.md "Receive keys": published with `validator publish-receive-key`
    # before the node could run, they go where the node deletes them at a cut.
    key_file = tmp_path / "auditor.json"
    save_key(key_file, new_keypair())
    public, secret = new_receive_key(tmp_path / RECEIVE_DIR)
    home, _ = create_home(tmp_path / "box", commune / GENESIS_FILE, key_file=key_file,
                          listen="/ip4/0.0.0.0/tcp/26700", http="127.0.0.1:8799")
    assert load_receive_keys(get_receive_dir(home.path)) == {public: secret}
    assert load_receive_keys(tmp_path / RECEIVE_DIR) == {}
    assert is_private(get_receive_dir(home.path) / f"{public.hex()}.key")
