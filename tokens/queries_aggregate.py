"""The commune's public aggregates per settled interval (issue 20; docs/privacy.md
"Public aggregates"): ΣE, ΣI, M and how many households took part, with a sum left
out when fewer than ``min_aggregate`` households make it up.

Read only, from the ``int/`` and ``ie/`` records settlement keeps (tokens/layout.py),
in the state or a node's archive. The rule, per interval:
- ``sum_e`` (exported, i.e. produced and fed in) is shown only when at least
  ``min_aggregate`` households exported in it: with fewer, it would be one or two
  neighbours' production curve;
- ``sum_i`` (imported, i.e. consumed from the grid) likewise with the importers;
- ``m`` (matched locally, min(ΣE, ΣI)) equals one of the two sums, so it is shown only
  when both are;
- the counts (participants, producers, consumers) are always shown: they say why a sum
  is missing and reveal no energy.
A household node in light mode holds its own ``ie/`` records only, not its neighbours':
it cannot count who took part, so it cannot apply the rule either. Read with
``counted=False`` its rows carry no counts (null), rather than counts of one household,
and no sum, but for a record its settlement flagged ``public`` on a chain that seals:
the validators applied the rule then (with the parameter in force at settlement), and
anyone may prove that record's sums already.
A suppressed sum is ``null`` and the row says ``suppressed: true``. Intervals are never
merged with their neighbours: a merged window next to a shown one would give the
suppressed interval back by subtraction.
"""

from __future__ import annotations

from typing import Any

from tokens import layout as L
from tokens.genesis import DEFAULT_PARAMS
from tokens.kv import KV, decode_value
from tokens.queries import get_params

MIN_AGGREGATE = "min_aggregate"


def get_min_aggregate(kv: KV) -> int:
    """The parameter in force (a state made before it existed: the default)."""
    return get_params(kv).get(MIN_AGGREGATE, DEFAULT_PARAMS[MIN_AGGREGATE])


def count_participants(kv: KV, start: int) -> tuple[int, int, int]:
    """(participants, producers, consumers) of the interval: households with an E, an I, either."""
    participants = producers = consumers = 0
    for _, raw in kv.iter_prefix(L.INTERVAL_ENTRY + L.u64(start)):
        e, i = decode_value(raw)[:2]
        producers += e > 0
        consumers += i > 0
        participants += e > 0 or i > 0
    return participants, producers, consumers


def compute_public_row(start: int, end: int, sums: tuple[int, int, int], counts: tuple[int, int, int] | None,
                       min_aggregate: int, flagged_public: bool = False) -> dict[str, Any]:
    """One interval as anyone may see it: each sum only if enough households make it up
    (``counts`` None: not known here, so no sum, unless its settlement flagged the record
    ``public``, which it does only when enough exporters and importers made it)."""
    sum_e, sum_i, m = sums
    participants, producers, consumers = counts or (None, None, None)
    show_e = flagged_public if counts is None else producers >= min_aggregate
    show_i = flagged_public if counts is None else consumers >= min_aggregate
    return {"start": start, "end": end, "participants": participants, "producers": producers,
            "consumers": consumers, "sum_e": sum_e if show_e else None, "sum_i": sum_i if show_i else None,
            "m": m if show_e and show_i else None, "suppressed": not (show_e and show_i)}


def get_public_aggregates(kv: KV, start_from: int, start_to: int, limit: int,
                          counted: bool = True) -> tuple[list[dict[str, Any]], bool]:
    """Settled intervals with start in [from, to], oldest first, at most ``limit``; and
    whether more follow. ``counted`` False: ``kv`` does not hold every household's
    ``ie/`` record (a light store), so no row is counted."""
    min_aggregate = get_min_aggregate(kv)
    rows: list[dict[str, Any]] = []
    for key, raw in kv.iter_prefix(L.INTERVAL):
        start = L.from_u64(key[len(L.INTERVAL):])
        if start > start_to:
            break
        iv = decode_value(raw)
        if start < start_from or not iv[L.IV_SETTLED]:
            continue
        if len(rows) == limit:
            return rows, True
        rows.append(compute_public_row(start, iv[L.IV_END], (iv[L.IV_SUM_E], iv[L.IV_SUM_I], iv[L.IV_M]),
                                       count_participants(kv, start) if counted else None, min_aggregate,
                                       L.is_public_interval(iv)))
    return rows, False
