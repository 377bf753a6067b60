"""The node's role follows the validator set in state, not genesis (DESIGN §4, §12).

A ``ValidatorSetChange`` committed in block h takes effect at h+2, so after block h
the sets of h+1 and h+2 are both known. A node counts as a validator when its key is
in either: it then checks every tx signature, relays txs and keeps the validators'
peers close before its first vote, and after the last height it signs it becomes a
full node again. The engine itself signs only at heights whose set holds its key.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.net import has_explicit_peer_id, is_full_peer_addr, validator_peer_addr
from tokens import get_validator_set, get_validators
from tokens.kv import KV
from wire import Keypair

# DESIGN §4: a ValidatorSetChange takes effect at height h+2.
LOOKAHEAD = 2


@dataclass(frozen=True)
class Role:
    is_validator: bool
    # Full multiaddrs (with /p2p/) of every current or scheduled validator but this node.
    validator_addrs: tuple[str, ...]

    @property
    def core_peers(self) -> frozenset[str]:
        return frozenset(addr.rsplit("/p2p/", 1)[1] for addr in self.validator_addrs)


def is_validator_soon(key: bytes, state: KV, height: int) -> bool:
    """True iff ``key`` signs at one of the next LOOKAHEAD heights after ``height``."""
    return any(key in get_validator_set(state, height + ahead) for ahead in range(1, LOOKAHEAD + 1))


def get_validator_addrs(state: KV, own_key: bytes) -> tuple[str, ...]:
    """The peers to keep close: genesis validators plus every ValidatorSetChange's
    add_addrs still current or scheduled. The ledger stores an address as text, so
    one that does not make a full multiaddr is left out rather than trusted."""
    out = []
    for v in get_validators(state):
        key = bytes.fromhex(v["key"])
        if key == own_key or not v["addr"]:
            continue
        addr = validator_peer_addr(key, v["addr"])
        if is_full_peer_addr(addr):
            out.append(addr)
    return tuple(out)


def compute_role(key: bytes, state: KV, height: int) -> Role:
    return Role(is_validator_soon(key, state, height), get_validator_addrs(state, key))


def get_identity_seed(key: Keypair, state: KV, height: int) -> bytes | None:
    """DESIGN §7: a validator's libp2p key is derived from its key seed, so that peers
    can compute its peer id from the state. Not when the state's address names a peer
    id itself (a household promoted while running keeps its random identity, which
    that address names), and never for a household (its peer id would name its account)."""
    if not is_validator_soon(key.public, state, height):
        return None
    own = [v["addr"] for v in get_validators(state) if v["key"] == key.public.hex()]
    return None if own and has_explicit_peer_id(own[0]) else key.seed
