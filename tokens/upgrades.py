"""Protocol versions and the rules they select (DESIGN §12 "Versioned rules").

Every header carries the protocol version in force at its height. Genesis runs
version 1; a ``ScheduleUpgrade(version, height)`` co-signed by >= 2/3 of the current
validators makes ``version`` the rule set from ``height`` on. The state keeps every
scheduled upgrade (``upg/`` version -> height), so replaying a chain from genesis
(``node verify``) picks each block's rules from the state as it was, across versions.

What each version changes, as a table read by the rules that differ:

=======  ================================================================================
version  rule
=======  ================================================================================
1        DESIGN §4 as written: a reading's t at most 60 s past the block time
2        a reading's t at most 5 s past the block time (the block clock's own drift
         bound, DESIGN §6): with 60 s, a reading stamped in the next settlement interval
         could be taken before that interval has begun on the chain
=======  ================================================================================
"""

from __future__ import annotations

import hashlib

from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.kv import KV, decode_value
from tokens.ledger import Ledger
from tokens.rules_validators import check_validator_quorum
from tokens.txs import ScheduleUpgrade
from wire.units import Height

GENESIS_VERSION = 1
# The highest protocol version whose rules this software holds.
PROTOCOL_VERSION = 2
# An upgrade is scheduled at least this many heights ahead, so that every node has the
# block that schedules it committed before the first block of the new version is built.
MIN_UPGRADE_LEAD = 2

# Rule parameters that differ between versions: {name: {first version: value}}.
RULES: dict[str, dict[int, int]] = {
    "max_reading_ahead_s": {1: 60, 2: 5},
}


def get_rule(name: str, version: int) -> int:
    """The value of rule ``name`` under ``version``: that of the highest version <= it."""
    table = RULES[name]
    return table[max(v for v in table if v <= version)]


def compute_version_at(upgrades: list[tuple[int, int]], height: Height) -> int:
    """The version in force at ``height``, given (version, activation height) pairs."""
    active = [version for version, start in upgrades if start <= height]
    return max(active, default=GENESIS_VERSION)


def get_upgrades(kv: KV) -> list[tuple[int, int]]:
    """Every scheduled upgrade, (version, activation height), by version."""
    return [(L.from_u64(key[len(L.UPGRADE):]), decode_value(value)) for key, value in kv.iter_prefix(L.UPGRADE)]


def get_protocol_version(kv: KV, height: Height) -> int:
    return compute_version_at(get_upgrades(kv), height)


def get_ledger_version(lg: Ledger, height: Height) -> int:
    """As ``get_protocol_version``, over a block's overlay."""
    return compute_version_at([(L.from_u64(k[len(L.UPGRADE):]), v) for k, v in lg.ov.iter_prefix(L.UPGRADE)],
                              height)


def is_supported(version: int) -> bool:
    return GENESIS_VERSION <= version <= PROTOCOL_VERSION


def compute_fork_id(chain_id: bytes, upgrades: list[tuple[int, int]], height: Height) -> tuple[bytes, int]:
    """EIP-2124's fork id: a hash of the chain id and every activation height passed at
    ``height``, and the next scheduled one (0: none). Two nodes agree on it exactly when
    they follow the same rules up to now; a node unaware of an upgrade it passed differs."""
    digest = hashlib.sha256(chain_id)
    passed = sorted(start for _, start in upgrades if start <= height)
    for start in passed:
        digest.update(L.u64(start))
    following = sorted(start for _, start in upgrades if start > height)
    return digest.digest()[:4], following[0] if following else 0


def process_schedule_upgrade(lg: Ledger, tx: ScheduleUpgrade, tx_id: bytes) -> None:
    # DESIGN §12: an upgrade is signed by >= 2/3 of the validators in force at this height.
    check_validator_quorum(lg, tx, L.META_UPG_NONCE)
    # Versions only rise, one schedule per version, each after the last one scheduled.
    scheduled = lg.ov.iter_prefix(L.UPGRADE)
    last_version, last_height = (GENESIS_VERSION, 0) if not scheduled else \
        (L.from_u64(scheduled[-1][0][len(L.UPGRADE):]), scheduled[-1][1])
    if tx.version <= last_version:
        raise InvalidTx("stale_version", f"version {tx.version} is not above {last_version}, the last scheduled")
    if tx.height < lg.height + MIN_UPGRADE_LEAD or tx.height <= last_height:
        raise InvalidTx("bad_upgrade_height", f"height {tx.height} is not at least {MIN_UPGRADE_LEAD} ahead "
                                              f"of {lg.height} and after the last upgrade's, {last_height}")
    lg.ov.put(L.META_UPG_NONCE, tx.nonce)
    lg.ov.put(L.key_upgrade(tx.version), tx.height)



def check_fork_id(chain_id: bytes, upgrades: list[tuple[int, int]], height: Height, remote_hash: bytes,
                  remote_next: int) -> str | None:
    """EIP-2124's rules, with our upgrades read from the chain: None if a peer announcing
    (remote_hash, remote_next) can follow this chain, else why not. ``upgrades`` and
    ``height`` are ours. A hash we do not know is accepted: the peer may be ahead of us
    past upgrades our state does not hold yet, and every block it sends is checked."""
    starts = sorted({start for _, start in upgrades})
    # The fork hash after passing each prefix of the upgrade heights.
    hashes = [compute_fork_id(chain_id, [(0, s) for s in starts[:i]], Height(2**63))[0]
              for i in range(len(starts) + 1)]
    passed = sum(start <= height for start in starts)
    if remote_hash not in hashes:
        return None
    k = hashes.index(remote_hash)
    if k == passed:
        # Same forks passed: the peer must not announce one at a height we passed without it.
        if remote_next and remote_next <= height and remote_next not in starts:
            return f"it announces an upgrade at height {remote_next}, which this chain passed without one"
        return None
    if k < passed:
        # The peer is behind us: its next upgrade, if it knows one, must be ours.
        if remote_next not in (0, starts[k]):
            return f"its next upgrade is at height {remote_next}, this chain's was at {starts[k]}"
    # Otherwise the peer is ahead, past upgrades this chain has scheduled too.
    return None
