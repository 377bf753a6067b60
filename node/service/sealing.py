"""The node's commune data keys (docs/privacy.md "Sealed payloads"): read from its own
sealed copies in the state at start, and again after a block that seals a new epoch;
and its receive keys (docs/privacy.md "Receive keys"), made and published while it is a
holder with none fresh, and deleted with the epochs they opened at a cut."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from node.home.receivekeys import delete_receive_keys, new_receive_key, read_made_after_cut
from node.service.errors import ServiceError
from tokens import layout as L
from tokens.genesis import Genesis
from tokens.kv import KV, decode_value
from tokens.rules_auditors import get_auditors, get_holders
from tokens.rules_erasure import HouseholdErased
from tokens.rules_seal import DataKeyCut
from tokens.sealing import Keyring, MissingCommuneKey, compute_keyring
from tokens.txs import SetReceiveKey
from wire import Keypair, sign_message

log = logging.getLogger("voisinage.node")


class NoCommuneKey(ServiceError):
    """A node that cannot open the sealed payloads of its chain, so cannot apply it."""


def open_node_keyring(genesis: Genesis, state: KV, key: Keypair,
                      receive: dict[bytes, bytes] | None = None) -> Keyring | None:
    """The keyring of a node of a chain that seals payloads (None if it does not seal),
    with its receive keys ``receive`` (public -> secret).
    A node whose key holds no copy of the current epoch cannot apply the chain's blocks:
    it is refused at start, in one line, rather than stopped at the first sealed tx."""
    if not genesis.seals_payloads:
        return None
    keys = compute_keyring(state, key.seed, key.public, receive=receive)
    raw = state.get(L.META_DATA_EPOCH)
    epoch = 0 if raw is None else decode_value(raw)
    if epoch not in keys.secrets:
        raise NoCommuneKey(
            f"this chain seals household payloads, and this node's key {key.public.hex()[:16]}… holds no copy "
            f"of the commune data key of epoch {epoch}: only the validators and auditors it is sealed to can apply its "
            "blocks. "
            "Run a household's node with --light (docs/privacy.md \"Sealed payloads\")")
    return keys


def refresh_keyring(keys: Keyring | None, state: KV, key: Keypair, writes: Mapping[bytes, bytes | None]) -> None:
    """After a committed block: open the copies of a new epoch sealed to this node."""
    if keys is not None and any(k.startswith(L.DATA_KEY_SEALED) for k in writes):
        compute_keyring(state, key.seed, key.public, keys)


def get_erased(events: list) -> list[bytes]:
    """The households a committed block erased (docs/privacy.md "Erasure"), and the keys
    each moved from: what the node opened or archived under those goes too."""
    return [addr for event in events if isinstance(event, HouseholdErased) for addr in (event.key, *event.former)]


def forget_erased(keys: Keyring | None, erased: Sequence[bytes]) -> None:
    """After the erasure's commit: this node no longer holds what it opened of them."""
    if keys is not None:
        for addr in erased:
            keys.forget_household(addr)


def forget_before_cut(keys: Keyring | None, events: list) -> tuple[int, list[int]] | None:
    """After a cut's commit (docs/privacy.md "Erasure"): this node deletes the secrets of
    every epoch before it from its keyring, its only key store (the state no longer holds
    its copies of them). (cut epoch, epochs deleted), or None if the block made no cut."""
    cuts = [event.epoch for event in events if isinstance(event, DataKeyCut)]
    if not cuts or keys is None:
        return None
    return cuts[-1], keys.forget_before(cuts[-1])


def delete_used_receive_keys(keys: Keyring | None, cut: int, directory: Path | None) -> list[Path]:
    """After a cut's commit: delete the receive keys (in memory and their files in
    ``directory``) that opened an epoch before it. The cut's copies went only to receive
    keys no earlier epoch went to (rules_seal ``stale_receive_key``), so none it needs."""
    if keys is None:
        return []
    gone = keys.forget_receive_before(cut)
    return delete_receive_keys(directory, gone) if directory is not None and gone else []


def get_cut_epoch(state: KV) -> int | None:
    """The epoch of the chain's latest cut (None: no cut yet)."""
    raw = state.get(L.META_DATA_CUT)
    return None if raw is None else decode_value(raw)[0]


def prune_receive_keys(keys: Keyring | None, state: KV, key: Keypair, directory: Path) -> list[Path]:
    """At start, on a chain past a cut: delete the receive keys that open no copy in the
    state and are not this holder's published one. The copies of the epochs before the
    cut left the state with it, so these opened only those (or nothing): a node stopped
    between a cut's commit and its deletion finishes it here."""
    cut = get_cut_epoch(state)
    if keys is None or cut is None:
        return []
    raw = state.get(L.key_receive_key(key.public))
    published = None if raw is None else decode_value(raw)[L.RK_PUBLIC]
    # A key made since the latest cut went to no epoch before it: one submitted before
    # the stop but not yet committed stays, or the next rotation could seal to a key
    # this node had deleted.
    made = read_made_after_cut(directory)
    gone = sorted(p for p in keys.receive if p not in keys.receive_used and p != published
                  and (made.get(p) is None or made[p] < cut))
    for public in gone:
        del keys.receive[public]
    return delete_receive_keys(directory, gone) if gone else []


def is_holder(state: KV, key: bytes) -> bool:
    """Whether ``key`` gets a copy of the next epoch: a validator of the latest set, or
    an auditor (tokens/rules_seal.get_latest_holders, over committed state)."""
    sets = list(state.iter_prefix(L.VALIDATOR_SET))
    if not sets:
        return False
    latest = decode_value(sets[-1][1])
    auditors = get_auditors(state.iter_prefix(L.AUDITOR))
    return key in get_holders(list(latest), auditors)


def needs_receive_key(state: KV, key: bytes, held: Mapping[bytes, bytes]) -> bool:
    """docs/privacy.md "Receive keys": a holder on a sealing chain publishes a fresh
    receive key whenever it has none that no epoch went to yet (none published, the
    published one used by a rotation, or its file not held here), so that the next
    rotation, a cut included, has a fresh one to seal to."""
    if state.get(L.META_DATA_EPOCH) is None or not is_holder(state, key):
        return False
    raw = state.get(L.key_receive_key(key))
    if raw is None:
        return True
    record = decode_value(raw)
    return record[L.RK_USED] is not None or record[L.RK_PUBLIC] not in held


def make_receive_key_tx(state: KV, key: Keypair, chain_id: bytes, keys: Keyring,
                        directory: Path, nonce_floor: int) -> SetReceiveKey:
    """A fresh receive key, saved in ``directory`` and added to ``keys`` before anything
    can be sealed to it, and its ``SetReceiveKey`` signed by ``key`` (nonce above both
    the published one and ``nonce_floor``: a clock value, so that a restarted node
    does not reuse one)."""
    public, secret = new_receive_key(directory, get_cut_epoch(state))
    keys.receive[public] = secret
    raw = state.get(L.key_receive_key(key.public))
    nonce = max(nonce_floor, 1 if raw is None else decode_value(raw)[L.RK_NONCE] + 1)
    return sign_message(SetReceiveKey(signer=key.public, nonce=nonce, public=public, sig=bytes(64)), chain_id, key)


@contextlib.contextmanager
def opening_keys() -> Iterator[None]:
    """A block this node cannot open stops the node in one line, not a traceback: a
    validator removed before a rotation holds no key of the new epoch."""
    try:
        yield
    except MissingCommuneKey as exc:
        raise NoCommuneKey(f"{exc}: this node can no longer apply the chain's blocks (was it removed from the "
                           "validators before a rotation of the commune data key?); a household's node runs "
                           "--light (docs/privacy.md)") from None
