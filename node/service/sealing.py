"""The node's commune data keys (docs/privacy.md "Sealed payloads"): read from its own
sealed copies in the state at start, and again after a block that seals a new epoch."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

from node.service.errors import ServiceError
from tokens import layout as L
from tokens.genesis import Genesis
from tokens.kv import KV, decode_value
from tokens.rules_erasure import HouseholdErased
from tokens.rules_seal import DataKeyCut
from tokens.sealing import Keyring, MissingCommuneKey, compute_keyring
from wire import Keypair


class NoCommuneKey(ServiceError):
    """A node that cannot open the sealed payloads of its chain, so cannot apply it."""


def open_node_keyring(genesis: Genesis, state: KV, key: Keypair) -> Keyring | None:
    """The keyring of a node of a chain that seals payloads (None if it does not seal).
    A node whose key holds no copy of the current epoch cannot apply the chain's blocks:
    it is refused at start, in one line, rather than stopped at the first sealed tx."""
    if not genesis.seals_payloads:
        return None
    keys = compute_keyring(state, key.seed, key.public)
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
    """The households a committed block erased (docs/privacy.md "Erasure")."""
    return [event.key for event in events if isinstance(event, HouseholdErased)]


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
