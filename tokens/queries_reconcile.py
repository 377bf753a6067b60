"""Read helpers over committed state for reconciliation (issue 18, docs/reconciliation.md):
per household, provisional (meter-signed) against official energy and the corrections;
for the commune, the share of the energy still in the state that has been reconciled and
the households flagged for persistent deviations.

Like tokens/queries.py, each takes a ``KV`` and returns JSON-ready values; none writes.
"""

from __future__ import annotations

from typing import Any

from tokens import layout as L
from tokens.indexkeys import find_prm_tag, key_consent_at, key_reconcile_stats_at
from tokens.kv import KV, decode_value
from tokens.queries import _get
from tokens.rules_reconcile import FLAG_DAYS


def get_stats_view(stats: list | None) -> dict[str, Any]:
    s = stats or [0] * 7
    return {"days": s[L.RC_DAYS], "streak": s[L.RC_STREAK], "flagged": s[L.RC_STREAK] >= FLAG_DAYS,
            "provisional_export_wh": s[L.RC_PROV_E], "official_export_wh": s[L.RC_OFF_E],
            "provisional_import_wh": s[L.RC_PROV_I], "official_import_wh": s[L.RC_OFF_I],
            "last_deviation_bp": s[L.RC_LAST_BP]}


def get_household_reconciliation(kv: KV, addr: bytes) -> dict[str, Any] | None:
    """A household's reconciled intervals still in the state (oldest first), its consent
    and its running totals; None if ``addr`` is not a registered household."""
    hh = _get(kv, L.key_household(addr))
    if hh is None:
        return None
    prm = hh[L.HH_PRM]
    # Its entries are keyed by its delivery point's tag (tokens/indexkeys.py): a hash
    # under the commune key on a chain that seals, found through its ``prm/`` entry.
    tag = find_prm_tag(kv, addr, prm)
    consent = None if tag is None else _get(kv, key_consent_at(tag))
    stats = None if tag is None else _get(kv, key_reconcile_stats_at(tag))
    if consent is not None and consent[0] != hh[L.HH_SINCE]:
        consent = None
    intervals = []
    for key, raw in kv.iter_prefix(L.INTERVAL_ENTRY):
        if key[-32:] != addr:
            continue
        e = decode_value(raw)
        if len(e) <= L.IE_PROV_E:
            continue
        intervals.append({"start": L.from_u64(key[len(L.INTERVAL_ENTRY):len(L.INTERVAL_ENTRY) + 8]),
                          "provisional_export_wh": e[L.IE_PROV_E], "official_export_wh": e[L.IE_E],
                          "provisional_import_wh": e[L.IE_PROV_I], "official_import_wh": e[L.IE_I],
                          "correction_export_wh": e[L.IE_E] - e[L.IE_PROV_E],
                          "correction_import_wh": e[L.IE_I] - e[L.IE_PROV_I]})
    return {"address": addr.hex(), "prm": prm, "label": hh[L.HH_LABEL],
            "consent": None if consent is None else {"since_height": consent[0], "since_time": consent[1]},
            "totals": get_stats_view(stats), "intervals": intervals}


def get_reconciliation(kv: KV) -> dict[str, Any]:
    """The commune: corrections since genesis, the share of the energy in the state's
    intervals (export + import, Wh) that is official, and the flagged households."""
    meta = _get(kv, L.META_RECONCILE) or [0] * 5
    total = official = 0
    for _, raw in kv.iter_prefix(L.INTERVAL_ENTRY):
        e = decode_value(raw)
        total += e[L.IE_E] + e[L.IE_I]
        if len(e) > L.IE_PROV_E:
            official += e[L.IE_E] + e[L.IE_I]
    # The PRM of each entry of the ``prm/`` index is its household's record's: the key of
    # the entry is a hash of it on a chain that seals (tokens/indexkeys.py), and its
    # consent and statistics are keyed by the same tag.
    households = {}
    for key, raw in kv.iter_prefix(L.PRM):
        addr = decode_value(raw)
        hh = _get(kv, L.key_household(addr))
        if hh is not None:
            households[hh[L.HH_PRM]] = addr, hh, key[len(L.PRM):]
    flagged, consenting = [], 0
    for prm, (addr, hh, tag) in sorted(households.items()):
        consent = _get(kv, key_consent_at(tag))
        if consent is not None and consent[0] == hh[L.HH_SINCE]:
            consenting += 1
        stats = get_stats_view(_get(kv, key_reconcile_stats_at(tag)))
        if stats["flagged"]:
            flagged.append({"prm": prm, "address": addr.hex(), "label": hh[L.HH_LABEL],
                            "streak": stats["streak"], "last_deviation_bp": stats["last_deviation_bp"]})
    return {"intervals_reconciled": meta[0], "official_export_wh": meta[1], "official_import_wh": meta[2],
            "minted_wh": meta[3], "burned_wh": meta[4], "energy_in_state_wh": total,
            "reconciled_in_state_wh": official,
            "reconciled_share_bp": official * 10_000 // total if total else 0,
            "households": len(households), "consenting": consenting, "flag_days": FLAG_DAYS, "flagged": flagged}
