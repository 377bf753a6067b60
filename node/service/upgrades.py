"""Halting at an upgrade this software lacks (docs/operations.md "Upgrading").

When the next height runs a protocol version this software does not hold, the node
stops after storing the last block it can judge, with one line and its own exit
status, instead of building or accepting blocks by rules it does not have.
"""

from __future__ import annotations

from node.service.errors import ServiceError
from tokens.upgrades import PROTOCOL_VERSION, check_fork_id, compute_fork_id, get_upgrades, is_supported
from wire.units import Height

UPGRADE_EXIT = 3


class UpgradeRequired(ServiceError):
    """The chain moves to a protocol version this software does not hold."""

    exit_code = UPGRADE_EXIT


def check_software_version(state, height: Height) -> None:
    """Raise UpgradeRequired if height + 1 runs a version above this software's."""
    for version, start in get_upgrades(state):
        if start <= height + 1 and not is_supported(version):
            raise UpgradeRequired(f"halting at height {height}: the chain runs protocol version {version} from "
                                  f"height {start}, this software knows versions up to {PROTOCOL_VERSION}; "
                                  f"install a release with version {version}, then start the node again")


def get_fork(store, chain_id: bytes) -> tuple[bytes, int]:
    """This node's fork id for the status handshake (EIP-2124)."""
    return compute_fork_id(chain_id, get_upgrades(store.state), store.height())


def check_fork(store, chain_id: bytes, fork_hash: bytes, fork_next: int) -> str | None:
    """Whether a peer's fork id can follow our chain (None) or why not."""
    return check_fork_id(chain_id, get_upgrades(store.state), store.height(), fork_hash, fork_next)
