"""When the chain next has something due (DESIGN §12 "the chain grows with work").

A block applies every time-driven rule of ``process_begin_block`` and
``process_end_block``. ``get_next_due_ms`` reads the committed state and says the
earliest chain time at which an empty block would change it; before that an empty
block only moves the clock. The node proposes an empty block only once the chain's
clock reaches it (or when txs or evidence are pending). docs/cadence.md states the rule.
"""

from __future__ import annotations

import json

from tokens import layout as L
from tokens.kv import KV, decode_value
from tokens.rules_validators import ACTIVATION_DELAY

# Something due "now": the next block must come as soon as the chain can make one.
DUE_NOW_MS = 0


def _first_key(kv: KV, prefix: bytes) -> bytes | None:
    """The smallest key under ``prefix`` (keys holding a u64 time sort in time order)."""
    for key, _ in kv.iter_prefix(prefix):
        return key
    return None


def _first_time_s(kv: KV, prefix: bytes) -> int | None:
    """The u64 right after ``prefix`` in its smallest key: the earliest time queued there."""
    key = _first_key(kv, prefix)
    return None if key is None else L.from_u64(key[len(prefix):len(prefix) + 8])


def compute_settle_time_s(end_s: int, interval_s: int, grace_s: int) -> int:
    """DESIGN §4: an interval ending at ``end_s`` settles in the first block at or past
    the boundary that covers it plus grace (rules_household.compute_settled_boundary)."""
    boundary = -(-end_s // interval_s) * interval_s
    return boundary + grace_s


def get_settlement_due_s(kv: KV, params: dict) -> int | None:
    # DESIGN §4 Settlement: the oldest interval holding readings settles first.
    key = _first_key(kv, L.OPEN)
    if key is None:
        return None
    end = L.from_u64(key[len(L.OPEN):len(L.OPEN) + 8])
    return compute_settle_time_s(end, params["settlement_interval_s"], params["settlement_grace_s"])


def get_history_due_s(kv: KV, params: dict) -> int | None:
    # settlement.process_history: the oldest interval leaves the state once its end is
    # history_retention_s behind the block time (an unsettled one settles first, earlier).
    key = _first_key(kv, L.INTERVAL)
    if key is None:
        return None
    iv = decode_value(kv.get(key))
    if not iv[L.IV_SETTLED]:
        return None     # it settles first (get_settlement_due_s), then leaves in time
    return iv[L.IV_END] + params["history_retention_s"]


def get_epoch_due_s(kv: KV) -> int:
    # DESIGN §4 Treasury epoch: the first block at or past meta/next_epoch runs it.
    raw = kv.get(L.META_NEXT_EPOCH)
    return 0 if raw is None else decode_value(raw)


def is_validator_set_pending(kv: KV, height: int) -> bool:
    """A ValidatorSetChange committed at h takes effect at h + ACTIVATION_DELAY: the
    heights up to it must be made, or the removed validators keep the chain."""
    latest = None
    for key, _ in kv.iter_prefix(L.VALIDATOR_SET):
        latest = L.from_u64(key[len(L.VALIDATOR_SET):])
    return latest is not None and latest > height + 1 and latest <= height + ACTIVATION_DELAY


def get_next_due_ms(kv: KV) -> int | None:
    """The earliest chain time (ms) at which a block would run a time-driven rule on the
    committed state ``kv``; ``DUE_NOW_MS`` when the next block is due at once; None when
    nothing is ever due until a tx arrives. Pure: the state alone decides it."""
    raw_height = kv.get(L.META_HEIGHT)
    if raw_height is None:
        return None
    if is_validator_set_pending(kv, decode_value(raw_height)):
        return DUE_NOW_MS
    params = json.loads(decode_value(kv.get(L.META_PARAMS)))
    times = [
        get_settlement_due_s(kv, params),
        get_history_due_s(kv, params),
        get_epoch_due_s(kv),
        _first_time_s(kv, L.OFFER_EXPIRY),      # rules_money.process_offer_expiry
        _first_time_s(kv, L.PENDING),           # rules_gov.process_tallies: a voting window ends
        _first_time_s(kv, L.RECOVERY_DUE),      # rules_membership.process_due_recoveries
        _first_time_s(kv, L.ERASE_DUE),         # rules_erasure.process_due_erasures
    ]
    due = [t for t in times if t is not None]
    return min(due) * 1000 if due else None


def is_due(kv: KV, now_ms: int) -> bool:
    """True iff an empty block made at chain time ``now_ms`` would run a rule."""
    due = get_next_due_ms(kv)
    return due is not None and due <= now_ms
