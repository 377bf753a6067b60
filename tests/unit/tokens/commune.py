"""A small test commune: deterministic keys, a genesis, signed-tx builders and a chain
that applies blocks to a MemoryKV, as a node does (with consensus's header rules, which
node/ gives every ledger). Shared by the tokens tests."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import pytest

from consensus.lightsync import HEADER_RULES
from tokens import (
    BlockContext, BlockResult, InvalidLedgerBlock, InvalidTx, MemoryKV, apply_block, check_tx, genesis_writes,
    get_account, get_rescanned_state_hash, get_state_hash,
)
from tokens import txs as T
from tokens.genesis import Genesis, parse_genesis
from tokens.sealing import Keyring, compute_genesis_keyring
from tokens.upgrades import get_protocol_version
from wire import Keypair, sign_message, signing_bytes
from wire.seal import compute_commune_public, seal_holder_secret

GENESIS_TIME = 1_700_000_000 - 1_700_000_000 % 86_400      # midnight UTC
ZERO_SIG = bytes(64)


def keypair(tag: str, i: int = 0) -> Keypair:
    seed = (f"{tag}-{i}".encode() * 32)[:32]
    return Keypair(seed)


REGISTRAR = keypair("registrar")
VALIDATORS = [keypair("validator", i) for i in range(4)]


def household_doc(i: int, key: Keypair, producer: bool) -> dict[str, Any]:
    return {"key": key.public.hex(), "meter": f"0214{i:08d}", "prm": f"300000{i:08d}", "label": f"Foyer {i}",
            "kva": 9 if producer else 6, "peak_w": 6000 if producer else 0}


def make_genesis(n_households: int = 4, params: dict[str, Any] | None = None, **kw: Any) -> tuple[Genesis,
                                                                                                 list[Keypair]]:
    """The parsed genesis of ``make_genesis_doc``, and the households' keys."""
    doc, keys = make_genesis_doc(n_households, params, **kw)
    return parse_genesis(json.dumps(doc, sort_keys=True).encode()), keys


def make_genesis_doc(n_households: int = 4, params: dict[str, Any] | None = None, *, dev: bool = False,
                     n_validators: int = 4, sky: dict[str, Any] | None = None,
                     commune_secret: bytes | None = None, receive: dict[bytes, bytes] | None = None,
                     classes: list[dict[str, Any]] | None = None) -> tuple[dict[str, Any], list[Keypair]]:
    """A genesis with ``n_households`` households; households 0 and 1 produce. With
    ``sky`` (a genesis "sky" section), exports are capped by its clear-sky table. With
    ``commune_secret``, the chain seals payloads under that commune data key (epoch 0),
    sealed to the receive keys ``receive`` names (validator key -> X25519 public), else
    to the validators' identity keys.
    ``classes``: the genesis "classes" section (docs/classes.md)."""
    keys = [keypair("household", i) for i in range(n_households)]
    doc = {
        "commune": {"name": "Testville", "insee": "99999"},
        "genesis_time": GENESIS_TIME,
        "dev": dev,
        "validators": [{"name": f"validator-{i}", "key": VALIDATORS[i].public.hex(),
                        "addr": f"/ip4/127.0.0.1/tcp/{27000 + i}"} for i in range(n_validators)],
        "registrars": [REGISTRAR.public.hex()],
        "households": [household_doc(i, k, i < 2) for i, k in enumerate(keys)],
        "params": params or {},
    }
    if sky is not None:
        doc["sky"] = sky
    if classes is not None:
        doc["classes"] = classes
    if commune_secret is not None:
        receive = receive or {}
        doc["sealing"] = {"public": compute_commune_public(commune_secret).hex(),
                          "sealed": {v.public.hex(): seal_holder_secret(v.public, receive.get(v.public), commune_secret,
                                                                        bytes([i]) * 32).hex()
                                     for i, v in enumerate(VALIDATORS[:n_validators])}}
        if receive:
            doc["sealing"]["receive"] = {k.hex(): public.hex() for k, public in receive.items()}
    return doc, keys


def sign(tx: T.Tx, genesis: Genesis, key: Keypair) -> bytes:
    return sign_message(tx, genesis.chain_id, key).encode()


def get_genesis_keyring(genesis: Genesis) -> Keyring | None:
    """A genesis validator's keyring of epoch 0, as its node opens it from genesis.json:
    the genesis state of a chain that seals needs it (its households' index keys)."""
    if not genesis.needs_commune_key:
        return None
    return compute_genesis_keyring(genesis, VALIDATORS[0].seed, VALIDATORS[0].public)


class Chain:
    """Applies blocks to a MemoryKV, like a node would (persisting result.writes)."""

    def __init__(self, genesis: Genesis, keys: Keyring | None = None) -> None:
        """``keys``: the epoch-0 keyring the genesis state is computed with (default: the
        first validator's, opened from the genesis with its identity key)."""
        self.genesis = genesis
        self.kv = MemoryKV(genesis_writes(genesis, keys if keys is not None else get_genesis_keyring(genesis)))
        self.height = 0
        self.time_s = genesis.genesis_time
        self.nonces: dict[bytes, int] = {}
        self.results: list[BlockResult] = []

    def ctx(self, dt_s: int = 1) -> BlockContext:
        """The next block's context, with the protocol version the state schedules for it."""
        height = self.height + 1
        return BlockContext(height, (self.time_s + dt_s) * 1000, VALIDATORS[0].public,
                            get_protocol_version(self.kv, height))

    def block(self, txs: Sequence[bytes] = (), dt_s: int = 1, at: int | None = None, **kw: Any) -> BlockResult:
        """Apply one block ``dt_s`` seconds after the last one (or at unix time ``at``)."""
        if at is not None:
            dt_s = at - self.time_s
        result = apply_block(self.kv, self.genesis, self.ctx(dt_s), list(txs), headers=HEADER_RULES, **kw)
        self.kv.apply(result.writes)
        self.height += 1
        self.time_s += dt_s
        self.results.append(result)
        return result

    def nonce(self, key: Keypair) -> int:
        self.nonces[key.public] = self.nonces.get(key.public, 0) + 1
        return self.nonces[key.public]

    def registrar_tx(self, tx_type: type[T.Tx], by: Keypair, **fields: Any) -> bytes:
        """A registrar tx as this chain takes it: in clear here, sealed to the commune key
        on a chain that seals (test_sealing.SealChain)."""
        return self.tx(tx_type, by, **fields)

    def tx(self, tx_type: type[T.Tx], by: Keypair, **fields: Any) -> bytes:
        """A signed tx from ``by``, with the next nonce unless given."""
        if "nonce" in tx_type.__dataclass_fields__ and "nonce" not in fields:
            fields["nonce"] = self.nonce(by)
        return sign(tx_type(signer=by.public, sig=ZERO_SIG, **fields), self.genesis, by)

    def reading(self, key: Keypair, i: int, seq: int, t: int, imp: int, exp: int) -> bytes:
        return self.tx(T.MeterReading, key, meter=f"0214{i:08d}", seq=seq, t=t, import_wh=imp, export_wh=exp)

    def state_hash(self) -> bytes:
        return get_state_hash(self.kv)

    def full_hash(self) -> bytes:
        return get_rescanned_state_hash(self.kv)


def cosign(genesis: Genesis, tx: T.Tx, signers: Sequence[Keypair]) -> bytes:
    """A ValidatorSetChange, RegistrarSetChange or ScheduleUpgrade co-signed by ``signers``."""
    data = signing_bytes(genesis.chain_id, tx)
    return dataclasses.replace(tx, sigs=tuple(T.ValidatorSig(validator=k.public, sig=k.sign(data))
                                              for k in signers)).encode()


def expect_invalid(chain: Chain, data: bytes, reason: str, dt_s: int = 1) -> None:
    """``data`` is refused with ``reason`` by check_tx and by apply_block, and the
    committed state is untouched (DESIGN §4: validation before mutation)."""
    before = chain.kv.items()
    with pytest.raises(InvalidTx) as info:
        check_tx(chain.kv, chain.genesis, data, (chain.time_s + dt_s) * 1000, headers=HEADER_RULES)
    assert info.value.reason == reason, info.value
    with pytest.raises(InvalidLedgerBlock) as block_info:
        apply_block(chain.kv, chain.genesis, chain.ctx(dt_s), [data], headers=HEADER_RULES)
    assert block_info.value.reason == reason and block_info.value.index == 0
    assert chain.kv.items() == before


def who(keys, party):
    """A key of the commune by index, or an outsider given as a key pair."""
    return keys[party] if isinstance(party, int) else party


def balances(chain: Chain, key: Keypair) -> tuple[int, int]:
    b = get_account(chain.kv, key.public)["balances"]
    return b["kwh"], b["hour"]
