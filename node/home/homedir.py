"""Writing a commune's genesis and one home directory per node (DESIGN §3).

A home holds ``key.json`` (the node's Ed25519 key, 0600), a copy of ``genesis.json``
and ``config.json`` (name, role, listen multiaddr, HTTP address).
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.home.errors import HomeError
from node.home.keyfile import load_key, new_keypair, save_key
from node.home.receivekeys import (
    RECEIVE_DIR, delete_receive_keys, get_receive_dir, load_receive_keys, read_made_after_cut, save_receive_key,
)
from tokens.genesis import (
    Genesis, GenesisError, HouseholdSpec, default_params, parse_genesis, parse_genesis_household, seal_household,
)
from tokens.sky import Sky
from wire.seal import compute_commune_public, seal_holder_secret

GENESIS_FILE = "genesis.json"
KEY_FILE = "key.json"
CONFIG_FILE = "config.json"
# docs/privacy.md "Genesis households": on a commune that seals, each genesis household's
# home gets its own record (meter, PRM, label, kVA, peak), which genesis.json holds sealed.
HOUSEHOLD_FILE = "household.json"
DEFAULT_HTTP_PORT = 8700


@dataclass(frozen=True)
class Home:
    path: Path
    genesis: Genesis
    config: dict[str, Any]


def household_doc(i: int, key_hex: str, producer: bool) -> dict[str, Any]:
    # Deterministic, well-formed serials: 12-digit ADSC, 14-digit PRM.
    return {
        "key": key_hex,
        "meter": f"0214{i:08d}",
        "prm": f"300000{i:08d}",
        "label": f"Foyer {i}",
        "kva": 9 if producer else 6,
        "peak_w": 6000 if producer else 0,
    }


def validator_ips(first: str | None, count: int) -> list[str]:
    """127.0.0.1 for every validator by default; otherwise ``first``, ``first`` + 1, ...

    Distinct addresses serve containers or network namespaces (docker/compose.yaml).
    """
    if first is None:
        return ["127.0.0.1"] * count
    try:
        start = ipaddress.IPv4Address(first)
        ips = [str(start + i) for i in range(count)]
    except (ipaddress.AddressValueError, ValueError):
        raise HomeError(f"bad --validator-ip {first!r}: expected an IPv4 address with room for {count}") from None
    return ips


def _write_json(path: Path, doc: Any) -> bytes:
    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    path.write_bytes(data)
    return data


def create_network(out: Path, *, name: str, insee: str, validators: int, households: int = 0,
                   base_port: int = 26656, time_scale: int = 1, genesis_time: int | None = None,
                   http_base: int = DEFAULT_HTTP_PORT, params: dict[str, Any] | None = None,
                   extra_households: list[dict[str, Any]] = (), validator_ip: str | None = None,
                   sky: Sky | None = None, seal_payloads: bool = False,
                   classes: list[dict[str, Any]] | None = None) -> Genesis:
    """Write ``out/genesis.json`` and the homes of every node; return the parsed genesis.
    With ``sky`` (node/home/sky.py), the genesis carries the clear-sky table and readings
    are capped by it (docs/reconciliation.md). With ``seal_payloads``, a fresh commune
    data key sealed to each validator (docs/privacy.md); its secret is written nowhere.
    ``classes``: the commune-defined token classes (docs/classes.md)."""
    if validators < 1:
        raise HomeError("--validators must be at least 1")
    if households < 0:
        raise HomeError("--households must not be negative")
    if not 1 <= base_port <= 65535 - validators - households:
        raise HomeError("--base-port leaves no room for every node's port")
    ips = validator_ips(validator_ip, validators)
    out = Path(out)
    if (out / GENESIS_FILE).exists():
        raise HomeError(f"{out / GENESIS_FILE} already exists; choose an empty directory")
    out.mkdir(parents=True, exist_ok=True)
    keys = {f"validator-{i}": new_keypair() for i in range(validators)}
    keys.update({f"household-{i}": new_keypair() for i in range(households)})
    keys["registrar"] = new_keypair()
    doc: dict[str, Any] = {
        "commune": {"name": name, "insee": insee},
        "genesis_time": int(time.time()) if genesis_time is None else genesis_time,
        "dev": time_scale != 1,
        "validators": [
            {"name": f"validator-{i}", "key": keys[f"validator-{i}"].public.hex(),
             "addr": f"/ip4/{ips[i]}/tcp/{base_port + i}"}
            for i in range(validators)
        ],
        "registrars": [keys["registrar"].public.hex()],
        # Roughly 30 % of households produce (DESIGN §4 example commune).
        "households": [household_doc(i, keys[f"household-{i}"].public.hex(), i % 10 < 3)
                       for i in range(households)] + list(extra_households),
        # Every parameter of DESIGN §3 is written out, so the constitution is self-describing.
        "params": {**default_params(), **(params or {}), "time_scale": time_scale},
    }
    if sky is not None:
        doc["sky"] = sky.to_doc()
    if classes:
        doc["classes"] = classes
    own_records: dict[str, dict[str, Any]] = {}
    # docs/privacy.md "Receive keys": each validator's copy of epoch 0 is sealed to a
    # receive key written into its home only, apart from its identity key.
    receive = {f"validator-{i}": os.urandom(32) for i in range(validators)} if seal_payloads else {}
    if seal_payloads:
        doc["sealing"] = make_sealing_doc([keys[f"validator-{i}"].public for i in range(validators)],
                                          {keys[name].public: compute_commune_public(secret)
                                           for name, secret in receive.items()})
        own_records = {h["key"]: h for h in doc["households"]}
        doc["households"] = [seal_household_doc(bytes.fromhex(doc["sealing"]["public"]), h)
                             for h in doc["households"]]
    try:
        genesis_bytes = json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
        genesis = parse_genesis(genesis_bytes)
    except GenesisError as exc:
        raise HomeError(f"invalid genesis: {exc}") from None
    (out / GENESIS_FILE).write_bytes(genesis_bytes)
    for index, (node_name, key) in enumerate(keys.items()):
        home = out / node_name
        home.mkdir(exist_ok=True)
        save_key(home / KEY_FILE, key)
        if node_name in receive:
            save_receive_key(get_receive_dir(home), receive[node_name])
        (home / GENESIS_FILE).write_bytes(genesis_bytes)
        role = node_name.split("-")[0]
        if key.public.hex() in own_records:
            _write_json(home / HOUSEHOLD_FILE, own_records[key.public.hex()])
        _write_json(home / CONFIG_FILE, {
            "name": node_name,
            "role": role,
            "listen": f"/ip4/127.0.0.1/tcp/{base_port + index}",
            "http": f"127.0.0.1:{http_base + index}",
        })
    return genesis


def make_sealing_doc(validators: list[bytes], receive: dict[bytes, bytes] | None = None) -> dict[str, Any]:
    """A genesis ``sealing`` section: a new commune data key of epoch 0, its secret
    sealed to each validator's receive key (``receive``: validator key -> X25519 public
    key), or its identity key if it has none there, and then forgotten."""
    secret = os.urandom(32)
    receive = receive or {}
    doc = {"public": compute_commune_public(secret).hex(),
           "sealed": {key.hex(): seal_holder_secret(key, receive.get(key), secret, os.urandom(32)).hex()
                      for key in validators}}
    if receive:
        doc["receive"] = {key.hex(): public.hex() for key, public in receive.items()}
    return doc


def seal_household_doc(commune_public: bytes, household: dict[str, Any]) -> dict[str, Any]:
    """A genesis household whose personal fields are sealed to the commune key of epoch 0:
    only its key stays in clear (docs/privacy.md "Genesis households"). Checked as a
    clear one first, so a bad serial is refused here, not when the validators open it."""
    try:
        spec = parse_genesis_household(household)
    except GenesisError as exc:
        raise HomeError(f"invalid genesis: {exc}") from None
    return {"key": household["key"], "sealed": seal_household(commune_public, spec, os.urandom(32)).hex()}


def load_household_spec(genesis: Genesis, home_dir: Path) -> HouseholdSpec | None:
    """This home's genesis household record: from genesis.json, or, where the genesis
    seals it, from the home's own ``household.json`` (None for a node that is no genesis
    household). The local networks' simulated meters read their serial here."""
    own = load_key(Path(home_dir) / KEY_FILE).public
    spec = next((h for h in genesis.households if h.key == own), None)
    if spec is None or not spec.sealed:
        return spec
    path = Path(home_dir) / HOUSEHOLD_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise HomeError(f"{path} not found: the genesis seals this household's record") from None
    except (OSError, ValueError) as exc:
        raise HomeError(f"corrupt {path}: {exc}") from None
    if not isinstance(record, dict) or record.get("key") != own.hex():
        raise HomeError(f"{path}: not this household's record")
    try:
        return parse_genesis_household(record)
    except GenesisError as exc:
        raise HomeError(f"{path}: {exc}") from None


def create_home(path: Path, genesis_file: Path, *, key_file: Path | None = None, listen: str,
                http: str, name: str | None = None) -> tuple[Home, bool]:
    """A home for a node joining a running network: a copy of the commune's genesis,
    the node's key (``key_file``'s, or a new one) and its config.

    Returns the home and whether it was created now. An existing home is reused only
    if it holds the same genesis: a node must never join another commune's chain
    with this commune's database."""
    path = Path(path)
    try:
        genesis_bytes = Path(genesis_file).read_bytes()
        genesis = parse_genesis(genesis_bytes)
    except OSError as exc:
        raise HomeError(f"cannot read {genesis_file}: {exc.strerror or exc}") from None
    except GenesisError as exc:
        raise HomeError(f"{genesis_file}: {exc}") from None
    if (path / GENESIS_FILE).exists():
        home = load_home(path)
        if home.genesis.chain_id != genesis.chain_id:
            raise HomeError(f"{path} already holds another commune's chain ({home.genesis.name}); "
                            "choose an empty --home")
        if key_file is not None and load_key(key_file).public != home_key(home).public:
            raise HomeError(f"{path} already holds another key than {key_file}")
        return home, False
    key = load_key(key_file) if key_file is not None else new_keypair()
    path.mkdir(parents=True, exist_ok=True)
    save_key(path / KEY_FILE, key)
    if key_file is not None:
        move_receive_keys(Path(key_file).parent / RECEIVE_DIR, get_receive_dir(path))
    (path / GENESIS_FILE).write_bytes(genesis_bytes)
    is_validator = key.public in {v.key for v in genesis.validators}
    _write_json(path / CONFIG_FILE, {"name": name or path.name, "role": "validator" if is_validator else "household",
                                     "listen": listen, "http": http})
    return load_home(path), True


def move_receive_keys(source: Path, target: Path) -> list[bytes]:
    """docs/privacy.md "Receive keys": the receive keys published beside a key file
    (``validator publish-receive-key``) move with it into the node's home, where the
    node deletes them at a cut: none is left behind. Returns their public keys."""
    if Path(source).resolve() == Path(target).resolve():
        return []
    keys = load_receive_keys(source)
    made = read_made_after_cut(source)
    for public, secret in keys.items():
        save_receive_key(target, secret, made.get(public))
    delete_receive_keys(source, list(keys))
    return list(keys)


def load_genesis_file(path: Path) -> Genesis:
    """Read and check a genesis.json; any problem is a one-line ``HomeError``."""
    try:
        return parse_genesis(Path(path).read_bytes())
    except FileNotFoundError:
        raise HomeError(f"genesis not found: {path}") from None
    except OSError as exc:
        raise HomeError(f"cannot read {path}: {exc.strerror or exc}") from None
    except GenesisError as exc:
        raise HomeError(f"{path}: {exc}") from None


def load_home(path: Path) -> Home:
    """Open a home directory; any problem is a one-line ``HomeError``."""
    path = Path(path)
    if not path.is_dir():
        raise HomeError(f"home directory not found: {path}")
    if not (path / GENESIS_FILE).exists():
        raise HomeError(f"no {GENESIS_FILE} in {path}")
    genesis = load_genesis_file(path / GENESIS_FILE)
    try:
        config = json.loads((path / CONFIG_FILE).read_text()) if (path / CONFIG_FILE).exists() else {}
    except (OSError, ValueError) as exc:
        raise HomeError(f"corrupt {path / CONFIG_FILE}: {exc}") from None
    if not isinstance(config, dict):
        raise HomeError(f"corrupt {path / CONFIG_FILE}: expected an object")
    return Home(path, genesis, config)


def home_key(home: Home):
    return load_key(home.path / KEY_FILE)


def is_private(path: Path) -> bool:
    return (os.stat(path).st_mode & 0o077) == 0
