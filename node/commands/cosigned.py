"""A change co-signed offline by the validators (DESIGN §4, §12), as a JSON file.

``{"format", "chain_id", "validators", "quorum", "tx"}``: the tx (hex of its canonical
bytes) with the co-signatures gathered so far, the chain it is for, and the set of
validators who may co-sign it with how many are needed. One operator writes it from
the node's state, each validator checks it and adds a signature with its own key file,
and ``submit`` checks the signatures against the node's current set before posting.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from node.commands.client import get_chain_id, get_json, open_client, parse_node_url, post_tx
from node.errors import UserError
from node.home.keyfile import load_key
from tokens.txs import (
    RegistrarSetChange, RotateDataKey, ScheduleUpgrade, Tx, ValidatorSetChange, ValidatorSig, decode_tx,
)
from wire import DecodeError, signing_bytes, verify_signature

# Each co-signed change type: its file format and what a person calls it.
FORMATS: dict[type[Tx], tuple[str, str]] = {
    RegistrarSetChange: ("voisinage/registrar-set-change/1", "registrar set change"),
    ValidatorSetChange: ("voisinage/validator-set-change/1", "validator set change"),
    ScheduleUpgrade: ("voisinage/schedule-upgrade/1", "protocol upgrade"),
    RotateDataKey: ("voisinage/rotate-data-key/1", "commune data key rotation"),
}
MAX_FILE_BYTES = 64 * 1024
# Where the node tells what a change of each type is built on (the co-signing set, its
# quorum, the next nonce), with the fields its answer must hold, and what that set is.
BASES: dict[type[Tx], tuple[str, frozenset[str], str]] = {
    RegistrarSetChange: ("/registrars", frozenset({"next_nonce", "validators", "registrars", "quorum"}),
                         "the registrar set"),
    ValidatorSetChange: ("/validators/change", frozenset({"next_nonce", "validators", "latest", "quorum"}),
                         "the validator set"),
    ScheduleUpgrade: ("/upgrades", frozenset({"next_nonce", "validators", "quorum", "height", "scheduled"}),
                      "the upgrade schedule"),
}


@dataclasses.dataclass(frozen=True)
class Change:
    """A proposed change: the tx, the chain it is for, and the set that must co-sign it."""

    chain_id: bytes
    validators: tuple[bytes, ...]
    quorum: int
    tx: Any      # a tx type of FORMATS, with ``nonce`` and ``sigs``


def encode_change(change: Change) -> str:
    return json.dumps({"format": FORMATS[type(change.tx)][0], "chain_id": change.chain_id.hex(),
                       "validators": [k.hex() for k in change.validators], "quorum": change.quorum,
                       "tx": change.tx.encode().hex()}, indent=2) + "\n"


def decode_change(text: str, tx_type: type[Tx]) -> Change:
    """Raises ValueError, KeyError, TypeError or DecodeError on anything malformed."""
    doc = json.loads(text)
    if doc["format"] != FORMATS[tx_type][0]:
        raise ValueError(f"format is {doc['format']!r}, not {FORMATS[tx_type][0]}")
    tx = decode_tx(bytes.fromhex(doc["tx"]))
    if not isinstance(tx, tx_type):
        raise ValueError(f"a {tx.TAG} transaction, not a {tx_type.TAG}")
    validators = tuple(bytes.fromhex(k) for k in doc["validators"])
    if type(doc["quorum"]) is not int or not all(len(k) == 32 for k in validators):
        raise ValueError("bad validators or quorum")
    return Change(bytes.fromhex(doc["chain_id"]), validators, doc["quorum"], tx)


def read_change(path: Path, tx_type: type[Tx]) -> Change:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise UserError(f"{path}: larger than {MAX_FILE_BYTES} bytes; not a {FORMATS[tx_type][1]}")
        return decode_change(path.read_text(), tx_type)
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    except DecodeError as exc:
        raise UserError(f"{path}: malformed transaction: {exc.reason}") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a {FORMATS[tx_type][1]} file ({type(exc).__name__}: {exc})") from None


def write_change(path: Path, change: Change) -> None:
    try:
        path.write_text(encode_change(change))
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def check_signatures(change: Change) -> set[bytes]:
    """The distinct co-signers; a stranger or a signature that does not verify is refused."""
    data = signing_bytes(change.chain_id, change.tx)
    for item in change.tx.sigs:
        if item.validator not in change.validators:
            raise UserError(f"co-signer {item.validator.hex()[:16]}… is not a validator of this change's set")
        if not verify_signature(item.validator, data, item.sig):
            raise UserError(f"the co-signature of {item.validator.hex()[:16]}… does not verify")
    return {item.validator for item in change.tx.sigs}


def check_ready(change: Change, chain_id: bytes, basis: dict[str, Any]) -> None:
    """Before posting: the node's chain, the nonce still next, >= quorum of its current set."""
    if change.chain_id != chain_id:
        raise UserError("this change is for another chain than the node's")
    if change.tx.nonce != basis["next_nonce"]:
        raise UserError(f"stale change: nonce {change.tx.nonce}, the chain expects {basis['next_nonce']} "
                        "(another change was committed); propose it again")
    current = {bytes.fromhex(k) for k in basis["validators"]}
    signers = check_signatures(dataclasses.replace(change, validators=tuple(current)))
    if len(signers) < basis["quorum"]:
        raise UserError(f"too few signatures: {len(signers)} of the {basis['quorum']} current validators needed")


def cosign_change(change: Change, key_path: Path) -> tuple[Change, int]:
    """The change with the key file's co-signature added, and how many have signed."""
    signer = load_key(key_path)
    if signer.public not in change.validators:
        raise UserError(f"your key {signer.public.hex()[:16]}… is not one of this change's validators")
    signers = check_signatures(change)
    if signer.public in signers:
        raise UserError("you already co-signed this change")
    sig = ValidatorSig(validator=signer.public, sig=signer.sign(signing_bytes(change.chain_id, change.tx)))
    return dataclasses.replace(change, tx=dataclasses.replace(change.tx, sigs=change.tx.sigs + (sig,))), \
        len(signers) + 1


def cosign_file(in_file: Path, tx_type: type[Tx], key_path: Path, out: Path) -> tuple[Change, int]:
    """``cosign`` of each co-signed change type: read, check, add the key's signature,
    write; the signed change and how many have signed."""
    signed, count = cosign_change(read_change(in_file, tx_type), key_path)
    write_change(out, signed)
    return signed, count


def fetch_basis(node: str, tx_type: type[Tx]) -> tuple[bytes, dict[str, Any]]:
    """The node's chain id, and what a change of ``tx_type`` is built on there."""
    path, fields, what = BASES[tx_type]
    url = parse_node_url(node)
    with open_client() as client:
        chain_id = get_chain_id(client, url)
        basis = get_json(client, url, path)
    if not isinstance(basis, dict) or not fields <= set(basis):
        raise UserError(f"GET {path}: the node's answer lacks {what}")
    return chain_id, basis


def submit_change(in_file: Path, tx_type: type[Tx], node: str, token: str | None) -> str:
    """Check a co-signed change against the node's current set, post it, return its id."""
    change = read_change(in_file, tx_type)
    chain_id, basis = fetch_basis(node, tx_type)
    check_ready(change, chain_id, basis)
    with open_client() as client:
        return post_tx(client, parse_node_url(node), change.tx, token)
