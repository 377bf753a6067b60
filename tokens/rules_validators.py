"""The validator set: genesis set, ValidatorSetChange, double-sign evidence (DESIGN §4, §6)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tokens import layout as L
from tokens.errors import InvalidLedgerBlock, InvalidTx
from tokens.genesis import Genesis
from tokens.ledger import Ledger
from tokens.txs import RegistrarSetChange, ScheduleUpgrade, ValidatorSetChange
from wire import signing_bytes, verify_signature
from wire.units import Height

# DESIGN §4: a ValidatorSetChange takes effect at height h+2.
ACTIVATION_DELAY = 2


@dataclass(frozen=True)
class ValidatorSetScheduled:
    """Event: a new validator set takes effect at ``height``."""

    height: int
    validators: tuple[bytes, ...]
    kind: str = "validator_set"


@dataclass(frozen=True)
class EquivocationRecorded:
    """Event: committed double-sign evidence against ``validator``."""

    validator: bytes
    height: int
    kind: str = "equivocation"


def process_genesis_validators(lg: Ledger, genesis: Genesis) -> None:
    for v in genesis.validators:
        lg.ov.put(L.VALIDATOR + v.key, [v.addr, v.name])
    lg.ov.put(L.key_validator_set(0), [v.key for v in genesis.validators])


def get_set_at(entries: Iterable[tuple[bytes, list]], height: Height, prefix: bytes = L.VALIDATOR_SET) -> list[bytes]:
    """The set in force at ``height``: the latest entry (``prefix`` ‖ start height, keys),
    in key order, whose start is <= height."""
    chosen: list[bytes] = []
    for key, keys in entries:
        if L.from_u64(key[len(prefix):]) > height:
            break
        chosen = keys
    return list(chosen)


def compute_quorum_cosigners(n: int) -> int:
    # DESIGN §4: signed by >= 2/3 of the current validators, i.e. ceil(2n/3).
    return -(-2 * n // 3)


# Transactions signed by >= 2/3 of the current validators (DESIGN §4, §12).
CosignedTx = ValidatorSetChange | RegistrarSetChange | ScheduleUpgrade


def verify_cosignatures(lg: Ledger, tx: CosignedTx) -> None:
    # DESIGN §2: each co-signature covers signing_bytes(chain_id, tx) ("sigs" excluded).
    data = signing_bytes(lg.chain_id, tx)
    for item in tx.sigs:
        if not verify_signature(item.validator, data, item.sig):
            raise InvalidTx("bad_signature", f"co-signature of {item.validator.hex()[:16]}… does not verify")


def check_cosigners(current: list[bytes], tx: CosignedTx) -> None:
    members = set(current)
    signers = {item.validator for item in tx.sigs}
    strangers = sorted(signers - members)
    if strangers:
        raise InvalidTx("unknown_signer", f"{strangers[0].hex()[:16]}… is not a current validator")
    need = compute_quorum_cosigners(len(current))
    if len(signers) < need:
        raise InvalidTx("insufficient_signatures", f"{len(signers)} distinct validators co-signed, {need} needed")


def compute_new_set(latest: list[bytes], tx: ValidatorSetChange) -> list[bytes]:
    if len(tx.add_addrs) != len(tx.add):
        raise InvalidTx("bad_validator_set", "one address is needed per added validator")
    if len(set(tx.add)) != len(tx.add) or len(set(tx.remove)) != len(tx.remove):
        raise InvalidTx("bad_validator_set", "a key is listed twice")
    if set(tx.add) & set(latest):
        raise InvalidTx("already_validator", "an added key is already a validator")
    if not set(tx.remove) <= set(latest):
        raise InvalidTx("unknown_validator", "a removed key is not a validator")
    new = [k for k in latest if k not in set(tx.remove)] + list(tx.add)
    if not new or not (tx.add or tx.remove):
        raise InvalidTx("bad_validator_set", "the change must change something and leave a validator")
    return new


def check_validator_quorum(lg: Ledger, tx: CosignedTx, nonce_key: bytes) -> None:
    """The co-signers are >= 2/3 of the validators in force at this height, and the
    tx's nonce is above the last one of its kind (stored under ``nonce_key``)."""
    check_cosigners(get_set_at(lg.ov.iter_prefix(L.VALIDATOR_SET), lg.height), tx)
    last_nonce = lg.get_meta(nonce_key, 0)
    if tx.nonce <= last_nonce:
        raise InvalidTx("stale_nonce", f"nonce {tx.nonce} is not above the last one, {last_nonce}")


def process_validator_set_change(lg: Ledger, tx: ValidatorSetChange, tx_id: bytes) -> None:
    entries = lg.ov.iter_prefix(L.VALIDATOR_SET)
    check_validator_quorum(lg, tx, L.META_VSC_NONCE)
    # Changes compose: the new set starts from the latest one, even if still pending.
    new = compute_new_set(list(entries[-1][1]), tx)
    lg.ov.put(L.META_VSC_NONCE, tx.nonce)
    for key, addr in zip(tx.add, tx.add_addrs):
        lg.ov.put(L.VALIDATOR + key, [addr, f"validator-{key.hex()[:8]}"])
    lg.ov.put(L.key_validator_set(lg.height + ACTIVATION_DELAY), new)
    lg.events.append(ValidatorSetScheduled(lg.height + ACTIVATION_DELAY, tuple(new)))


def process_equivocators(lg: Ledger, keys: Sequence[bytes], events: list) -> None:
    # DESIGN §6 Evidence: committed double-sign evidence marks the validator as
    # equivocating (flag + heights); the remedy is a ValidatorSetChange.
    for key in sorted(set(keys)):
        if type(key) is not bytes or lg.ov.get(L.VALIDATOR + key) is None:
            raise InvalidLedgerBlock("unknown_equivocator", "evidence names a key that was never a validator")
        rec = lg.ov.get(L.EQUIVOCATION + key)
        lg.ov.put(L.EQUIVOCATION + key, [lg.height, lg.height, 1] if rec is None
                  else [rec[0], lg.height, rec[2] + 1])
        events.append(EquivocationRecorded(key, lg.height))
