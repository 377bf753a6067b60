"""Sealed payloads: the commune data key, households' data keys, envelopes (docs/privacy.md).

A chain seals payloads when its genesis carries a commune data key (``Genesis.sealing``).
Then:

- the household txs of ``SEALABLE_TYPES`` travel only inside a ``Sealed`` envelope
  (``must_seal``), except an ``Offer`` that anyone may accept (a public market offer);
- a household publishes its data key of the current epoch with ``SetDataKey`` before
  it seals anything under it;
- ``RotateDataKey``, co-signed by >= 2/3 of the validators, starts a new epoch whose
  secret is sealed to each validator of the latest set. After an erasure it must be a
  *cut* (``link`` = ``NO_LINK``): the new epoch links back to nothing, the surviving
  households' older data keys are wrapped under it in the state, and the holders'
  copies of the older epochs leave the state (docs/privacy.md "Erasure");
- ``SetReceiveKey``: a holder publishes the receive key the next epochs are sealed to
  (docs/privacy.md "Receive keys"). A rotation seals each holder's copy to its
  published receive key (its identity key if it published none), and a cut only to
  receive keys no epoch before it was sealed to (``stale_receive_key``), so that the
  holders can delete every older one.

On a chain that does not seal, all three are refused (``sealing_off``). Opening needs
the node's ``Keyring`` (tokens/sealing.py): the result is the same on every node that
holds the commune key, and a node without it cannot apply the block at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.genesis import Genesis
from tokens.indexkeys import get_resalted_by_prm, key_meter_of, key_prm_of
from tokens.ledger import Ledger
from tokens.rules_auditors import get_auditors, get_holders
from tokens.rules_erasure import get_erasure, get_offer_keys
from tokens.rules_validators import check_cosigners, get_set_at
from tokens.sealing import (
    Keyring, MissingCommuneKey, get_first_data_key, open_any_household_key, read_aggregate_key,
)
from tokens.settlement import CONTRIBUTION_DAYS, DAY_S
from tokens.txs import (
    COMMUNE_SEALABLE_SET, SEALABLE_SET, SEALABLE_TYPES, CommuneSealed, MeterReading, Offer, RotateDataKey, Sealed,
    SealedCosigned, SetDataKey, SetReceiveKey, Tx, decode_commune_sealable, decode_sealable,
)
from wire import DecodeError, signing_bytes, verify_signature
from wire.seal import (
    AGGREGATE_LABEL, NO_LINK, SIG_LEN, SealError, compute_payload_mac, compute_wrap_label, compute_x25519_public,
    open_from_commune, open_payload, wrap_under_cut,
)


@dataclass(frozen=True)
class DataKeyRotated:
    """Event: the commune data key of ``epoch`` is in force."""

    epoch: int
    holders: tuple[bytes, ...]
    kind: str = "data_key_rotated"


@dataclass(frozen=True)
class DataKeyCut:
    """Event: ``epoch`` is a cut; the holders delete every older epoch's secret."""

    epoch: int
    wrapped: int        # surviving households' data keys wrapped under it
    kind: str = "data_key_cut"


def process_genesis_sealing(lg: Ledger, genesis: Genesis) -> None:
    """Epoch 0 of the commune data key, sealed to each genesis validator."""
    if genesis.sealing is None:
        return
    lg.ov.put(L.META_DATA_EPOCH, 0)
    lg.ov.put(L.key_data_key(0), [genesis.sealing.public, b""])
    for index, (validator, sealed) in enumerate(zip(genesis.validators, genesis.sealing.sealed)):
        lg.ov.put(L.key_data_key_sealed(0, validator.key), sealed)
        receive = genesis.sealing.get_receive(index)
        if receive is not None:     # published by the genesis, and used by epoch 0
            lg.ov.put(L.key_receive_key(validator.key), [0, receive, 0])


def get_epoch(lg: Ledger) -> int:
    """The current epoch of the commune data key; ``sealing_off`` if the chain does not seal."""
    epoch = lg.ov.get(L.META_DATA_EPOCH)
    if epoch is None:
        raise InvalidTx("sealing_off", "this chain does not seal payloads (its genesis has no commune data key)")
    return epoch


def check_sealing_policy(lg: Ledger, tx: Tx) -> None:
    # docs/privacy.md "What is sealed": on a sealing chain a household payload that
    # reveals consumption, production or a trade travels only sealed.
    if lg.genesis.sealing is None:
        return
    if type(tx) in COMMUNE_SEALABLE_SET:
        raise InvalidTx("must_seal", f"{tx.TAG}: this chain takes a registrar tx that names a household's personal "
                                     "data only sealed to the commune data key (tx/commune-sealed)")
    if type(tx) not in SEALABLE_SET:
        return
    if isinstance(tx, Offer) and tx.counterparty is None:
        return      # a public market offer: anyone must be able to see it to accept it
    raise InvalidTx("must_seal", f"{tx.TAG}: this chain takes household payloads only sealed (tx/sealed)")


def check_epoch(lg: Ledger, epoch: int) -> None:
    current = get_epoch(lg)
    if epoch != current:
        raise InvalidTx("wrong_epoch", f"sealed under epoch {epoch}; the commune data key is at epoch {current}")


def require_keyring(lg: Ledger):
    if lg.keys is None:
        raise MissingCommuneKey("this node holds no commune data key: it cannot open sealed payloads")
    return lg.keys


# -- SetDataKey ---------------------------------------------------------------------------------

def process_set_data_key(lg: Ledger, tx: SetDataKey, tx_id: bytes) -> None:
    check_epoch(lg, tx.epoch)
    lg.require_household(tx.signer)
    # One data key per household and epoch: what was opened with it stays true.
    if lg.ov.get(L.key_household_data_key(tx.signer, tx.epoch)) is not None:
        raise InvalidTx("data_key_exists", f"{tx.signer.hex()[:16]}… already has a data key of epoch {tx.epoch}")
    keys = require_keyring(lg)
    try:
        _, salt = keys.open_household_key(tx.signer, tx.epoch, tx.sealed)
    except SealError:
        raise InvalidTx("data_key_does_not_open", "the sealed data key does not open with the epoch's commune key") \
            from None
    earlier = get_first_data_key(lg.ov.get, tx.signer)
    # The leaf salt is the household's for good: its entries' leaves never change salt.
    if earlier is not None and open_any_household_key(lg.ov.get, keys, tx.signer, *earlier)[1] != salt:
        raise InvalidTx("salt_changed", "the leaf salt differs from the one of the household's earlier data key")
    lg.process_nonce(tx.signer, tx.nonce)
    lg.ov.put(L.key_household_data_key(tx.signer, tx.epoch), tx.sealed)
    if earlier is None:
        # Its first: its entries take its own salt from now on, instead of none or the one
        # a moved household's key inherited through its salt link, which ends here.
        lg.ov.delete(L.key_salt_link(tx.signer))
        lg.resalted.update(get_owned_keys(lg, tx.signer))


def get_owned_keys(lg: Ledger, addr: bytes) -> list[bytes]:
    """The committed entries ``addr`` owns (layout.get_key_owner, the meter and PRM
    indexes that name it, the offers it made): their leaves take a new salt."""
    ov = lg.ov
    keys = [L.key_account(addr), L.key_household(addr), L.key_status(addr)]
    keys.extend(ov.iter_committed_keys(L.CLASS_BALANCE + addr))
    hh = ov.get(L.key_household(addr))
    if hh is not None:       # its meter and PRM indexes (tokens/sealing.py INDEXES_OWNED_BY_VALUE)
        keys += [key_meter_of(lg, hh[L.HH_METER]), key_prm_of(lg, hh[L.HH_PRM])]
        keys += get_resalted_by_prm(lg, hh[L.HH_PRM])      # its consent, statistics
    keys += get_offer_keys(lg, {addr})
    keys.extend(ov.iter_committed_keys(L.GIFT + addr))
    keys.extend(L.key_entry(L.from_u64(key[len(L.INTERVAL):]), addr) for key in ov.iter_committed_keys(L.INTERVAL))
    # Contribution days: from the oldest one the state holds (at most CONTRIBUTION_DAYS back).
    oldest = next(ov.iter_committed_keys(L.CONTRIBUTION), None)
    if oldest is not None:
        today = lg.now_s // DAY_S
        first = max(L.from_u64(oldest[len(L.CONTRIBUTION):len(L.CONTRIBUTION) + 8]), today - CONTRIBUTION_DAYS)
        keys.extend(L.key_contribution(addr, day) for day in range(first, today + 1))
    return [key for key in keys if ov.original(key) is not None]


# -- SetReceiveKey -------------------------------------------------------------------------------

def get_latest_holders(lg: Ledger) -> list[bytes]:
    """Who the next epoch goes to: every validator of the latest set (a pending change
    included) and every auditor (docs/privacy.md "Auditors")."""
    entries = lg.ov.iter_prefix(L.VALIDATOR_SET)
    return get_holders(list(entries[-1][1]), get_auditors(lg.ov.iter_prefix(L.AUDITOR)))


def process_set_receive_key(lg: Ledger, tx: SetReceiveKey, tx_id: bytes) -> None:
    get_epoch(lg)
    # Only a holder of the next epoch has copies to receive: anyone else's key would
    # only fill the state.
    if tx.signer not in get_latest_holders(lg):
        raise InvalidTx("not_a_holder", f"{tx.signer.hex()[:16]}… is neither a validator of the latest set nor an "
                                        "auditor: it receives no copy of the commune data key")
    # A receive key stands apart from the identity key: one derived from it would let
    # the identity key open what the receive key's deletion should close.
    if tx.public == bytes(32) or tx.public == compute_x25519_public(tx.signer):
        raise InvalidTx("bad_receive_key", "a receive key is a fresh X25519 key, neither zero nor the identity "
                                           "key's")
    record = lg.ov.get(L.key_receive_key(tx.signer))
    if record is not None and tx.nonce <= record[L.RK_NONCE]:
        raise InvalidTx("stale_nonce", f"receive key nonce {tx.nonce} is not above {record[L.RK_NONCE]}")
    if record is not None and tx.public == record[L.RK_PUBLIC]:
        raise InvalidTx("receive_key_exists", "this receive key is already the holder's")
    lg.ov.put(L.key_receive_key(tx.signer), [tx.nonce, tx.public, None])


def check_receive_keys(lg: Ledger, tx: RotateDataKey, cut: bool) -> list[tuple[bytes, list]]:
    """Each holder's copy goes to its published receive key, or to its identity key if
    it published none; a cut's only to receive keys no earlier epoch went to. The
    records whose key this rotation uses first, to mark used."""
    if len(tx.receive) != len(tx.holders):
        raise InvalidTx("bad_holders", "one receive key (or none) is named per holder")
    first_use = []
    for holder, receive in zip(tx.holders, tx.receive):
        record = lg.ov.get(L.key_receive_key(holder))
        published = None if record is None else record[L.RK_PUBLIC]
        if receive != published:
            raise InvalidTx("wrong_receive_key", f"the copy of {holder.hex()[:16]}… must be sealed to "
                            + ("its identity key: it published no receive key" if published is None
                               else f"its published receive key {published.hex()[:16]}…"))
        if record is None:
            continue
        used = record[L.RK_USED]
        if cut and used is not None:
            raise InvalidTx("stale_receive_key", f"a cut seals only to receive keys no earlier epoch went to: "
                                                 f"{holder.hex()[:16]}…'s was used for epoch {used} (its node "
                                                 "publishes a fresh one)")
        if used is None:
            first_use.append((holder, record))
    return first_use


# -- RotateDataKey --------------------------------------------------------------------------------

def process_rotate_data_key(lg: Ledger, tx: RotateDataKey, tx_id: bytes) -> None:
    current = get_epoch(lg)
    entries = lg.ov.iter_prefix(L.VALIDATOR_SET)
    check_cosigners(get_set_at(entries, lg.height), tx)
    if tx.nonce != current + 1:
        raise InvalidTx("stale_nonce", f"epoch {tx.nonce} is not the next one, {current + 1}")
    # docs/privacy.md "Erasure": after an erasure, no new epoch may link back to the
    # epochs that open the erased household's data keys in the blocks.
    due = lg.ov.get(L.META_CUT_DUE)
    if due is not None and tx.link != NO_LINK:
        raise InvalidTx("cut_due", f"a household's private data was erased at height {due}: the next rotation "
                                   "must be a cut (no link back to the older epochs)")
    # The new secret goes to every validator of the latest set (a pending change
    # included) and every auditor (docs/privacy.md "Auditors"), and to nobody else: a
    # removed validator or auditor cannot open the new epoch.
    holders = get_latest_holders(lg)
    if sorted(tx.holders) != holders or len(tx.holders) != len(holders):
        raise InvalidTx("bad_holders", "the new data key must be sealed to exactly the latest validator set "
                                       "and the auditors")
    if len(tx.sealed) != len(tx.holders):
        raise InvalidTx("bad_holders", "one sealed secret is needed per holder")
    first_use = check_receive_keys(lg, tx, tx.link == NO_LINK)
    lg.ov.put(L.META_DATA_EPOCH, tx.nonce)
    lg.ov.put(L.key_data_key(tx.nonce), [tx.public, tx.link])
    for holder, sealed in zip(tx.holders, tx.sealed):
        lg.ov.put(L.key_data_key_sealed(tx.nonce, holder), sealed)
    for holder, record in first_use:
        lg.ov.put(L.key_receive_key(holder), [record[L.RK_NONCE], record[L.RK_PUBLIC], tx.nonce])
    if tx.link == NO_LINK:
        process_cut(lg, tx)
    lg.events.append(DataKeyRotated(tx.nonce, tuple(tx.holders)))


def open_own_new_copy(keys: Keyring, tx: RotateDataKey) -> bytes:
    """The new epoch's secret from this node's copy in ``tx``: a cut wraps the surviving
    keys under it in the block that starts it. A node that is not among the holders,
    or whose copy does not open, cannot compute the cut's state."""
    if keys.holder is None or keys.holder[1] not in tx.holders:
        raise MissingCommuneKey(f"this node holds no copy of the commune data key of epoch {tx.nonce}, a cut")
    index = tx.holders.index(keys.holder[1])
    receive = tx.receive[index]
    if receive is not None and receive not in keys.receive:
        raise MissingCommuneKey(f"this node's copy of the commune data key of epoch {tx.nonce} is sealed to the "
                                f"receive key {receive.hex()[:16]}…, which it does not hold")
    secret = keys.open_copy(tx.nonce, tx.sealed[index], tx.public, receive)
    if secret is None:
        raise MissingCommuneKey(f"this node's copy of the commune data key of epoch {tx.nonce} does not open to "
                                "the secret of its public key")
    return secret


def process_cut(lg: Ledger, tx: RotateDataKey) -> None:
    """A cut (docs/privacy.md "Erasure"): every data key still in the state (the erased
    households' left with their erasure) is wrapped under the new epoch, and so is the
    aggregate salt key; the holders' copies of the older epochs and their links leave
    the state. Deterministic: every holder writes the same bytes."""
    keys = require_keyring(lg)
    new = open_own_new_copy(keys, tx)
    wrapped = 0
    for key, sealed in lg.ov.iter_prefix(L.HOUSEHOLD_DATA_KEY):
        rest = key[len(L.HOUSEHOLD_DATA_KEY):]
        addr, epoch = rest[:L.ADDR_LEN], L.from_u64(rest[L.ADDR_LEN:])
        if epoch >= tx.nonce:
            continue
        data_key, salt = open_any_household_key(lg.ov.get, keys, addr, epoch, sealed)
        lg.ov.put(L.key_rewrapped_data_key(addr, epoch),
                  wrap_under_cut(new, compute_wrap_label(addr, epoch), data_key + salt))
        wrapped += 1
    lg.ov.put(L.META_AGGREGATE_KEY, wrap_under_cut(new, AGGREGATE_LABEL, read_aggregate_key(lg.ov.get, keys)))
    for key in [key for key, _ in lg.ov.iter_prefix(L.DATA_KEY_SEALED)
                if L.from_u64(key[len(L.DATA_KEY_SEALED):len(L.DATA_KEY_SEALED) + 8]) < tx.nonce]:
        lg.ov.delete(key)
    for key, record in lg.ov.iter_prefix(L.DATA_KEY):
        if L.from_u64(key[len(L.DATA_KEY):]) < tx.nonce and record[1]:
            lg.ov.put(key, [record[0], b""])
    lg.ov.put(L.META_DATA_CUT, [tx.nonce, lg.height])
    lg.ov.delete(L.META_CUT_DUE)
    lg.events.append(DataKeyCut(tx.nonce, wrapped))


# -- Sealed --------------------------------------------------------------------------------------

def open_envelope(lg: Ledger, tx: Sealed | SealedCosigned, tx_id: bytes) -> Tx:
    """The inner tx of ``tx``, checked against its envelope (not yet against the rules);
    a ``SealedCosigned``'s with its co-signature opened into it."""
    check_epoch(lg, tx.epoch)
    keys = require_keyring(lg)
    # The data key first, then the cache: an erased household's envelope never opens,
    # whatever a node still remembers (docs/privacy.md "Erasure").
    sealed = lg.ov.get(L.key_household_data_key(tx.signer, tx.epoch))
    if sealed is None:
        erased = get_erasure(lg, tx.signer)
        if erased is not None:
            raise InvalidTx("household_erased", f"{tx.signer.hex()[:16]}…'s private data was erased at height "
                                                f"{erased[0]}: its data keys are gone, its envelopes no longer open")
        raise InvalidTx("no_data_key", f"{tx.signer.hex()[:16]}… has published no data key of epoch {tx.epoch}")
    inner = keys.opened.get(tx_id)
    if inner is not None:
        return inner
    data_key, _ = keys.open_household_key(tx.signer, tx.epoch, sealed)
    inner = open_sealed_box(lg.chain_id, data_key, keys.get_secret, tx)
    keys.remember_opened(tx_id, inner)
    return inner


def open_sealed_box(chain_id: bytes, data_key: bytes, get_secret: Callable[[int], bytes],
                    tx: Sealed | SealedCosigned) -> Tx:
    """The inner tx in ``tx``'s box under the household's ``data_key``, checked against
    its envelope; ``get_secret``: the commune secret of an epoch (Keyring.get_secret), for
    a ``SealedCosigned``'s co-signature. Reads no state, so worker threads run it too
    (node/service/txcheck.py)."""
    try:
        payload = open_payload(data_key, tx.box)
    except SealError as exc:
        raise InvalidTx("seal_does_not_open", str(exc)) from None
    if compute_payload_mac(data_key, payload) != tx.mac:
        raise InvalidTx("payload_hash_mismatch", "the opened payload is not the one the envelope signs")
    try:
        inner = decode_sealable(payload)
    except DecodeError as exc:
        raise InvalidTx("malformed_payload", exc.reason) from None
    if isinstance(tx, SealedCosigned):
        inner = attach_cosig(get_secret(tx.epoch), tx, inner)
    check_inner(chain_id, tx, inner)
    return inner


def attach_cosig(secret: bytes, tx: SealedCosigned, inner: Tx) -> Tx:
    """``inner`` with the co-signer's signature that ``tx.cosig`` holds sealed to the
    commune key (check_inner then verifies it over the inner tx)."""
    others = [sig_field for key_field, sig_field in inner.SIGNERS if key_field != "signer"]
    if len(others) != 1:
        raise InvalidTx("not_cosigned", f"{inner.TAG} has no second signer: seal it as tx/sealed")
    try:
        cosig = open_from_commune(secret, tx.cosig)
    except SealError as exc:
        raise InvalidTx("cosig_does_not_open", str(exc)) from None
    if len(cosig) != SIG_LEN:
        raise InvalidTx("cosig_does_not_open", f"a sealed co-signature holds {SIG_LEN} bytes, not {len(cosig)}")
    return dataclasses.replace(inner, **{others[0]: cosig})


def open_commune_envelope(lg: Ledger, tx: CommuneSealed, tx_id: bytes) -> Tx:
    """The registrar tx a ``CommuneSealed`` holds, sealed to the epoch's commune key: one
    of ``COMMUNE_SEALABLE_TYPES`` (any other is ``malformed_payload``)."""
    check_epoch(lg, tx.epoch)
    keys = require_keyring(lg)
    inner = keys.opened.get(tx_id)
    if inner is not None:
        return inner
    inner = open_commune_box(lg.chain_id, keys.get_secret(tx.epoch), tx)
    keys.remember_opened(tx_id, inner)
    return inner


def open_commune_box(chain_id: bytes, secret: bytes, tx: CommuneSealed) -> Tx:
    """The registrar tx in ``tx``'s box under the epoch's commune ``secret``, checked
    against its envelope. Reads no state (node/service/txcheck.py)."""
    try:
        payload = open_from_commune(secret, tx.box)
    except SealError as exc:
        raise InvalidTx("seal_does_not_open", str(exc)) from None
    try:
        inner = decode_commune_sealable(payload)
    except DecodeError as exc:
        raise InvalidTx("malformed_payload", exc.reason) from None
    check_inner(chain_id, tx, inner)
    return inner


def check_inner(chain_id: bytes, tx: Sealed | SealedCosigned | CommuneSealed, inner: Tx) -> None:
    # The envelope's signature covers the box and stands for the inner signer's.
    if inner.signer != tx.signer:
        raise InvalidTx("signer_mismatch", "the sealed tx is not the envelope signer's")
    order = inner.seq if isinstance(inner, MeterReading) else inner.nonce
    if order != tx.nonce:
        raise InvalidTx("nonce_mismatch", f"envelope nonce {tx.nonce}, sealed tx {order}")
    # The envelope's signature stands for the signer's; any other signer (a Service's
    # provider) still signs the inner tx.
    for key_field, sig_field in inner.SIGNERS:
        if key_field != "signer" and not verify_signature(getattr(inner, key_field),
                                                          signing_bytes(chain_id, inner), getattr(inner, sig_field)):
            raise InvalidTx("bad_signature", f"{inner.TAG}: the {key_field}'s signature does not verify")


__all__ = ["DataKeyCut", "DataKeyRotated", "check_sealing_policy", "process_set_receive_key", "open_commune_box", "open_commune_envelope", "open_envelope",
           "open_sealed_box",
           "process_genesis_sealing",
           "process_rotate_data_key", "process_set_data_key", "SEALABLE_TYPES"]
