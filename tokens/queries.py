"""Read helpers over committed state, for the HTTP API, the CLI and tests.

Each takes a ``KV`` and returns plain JSON-friendly values (bytes as lowercase hex
where they name an account). They never write.
"""

from __future__ import annotations

import json
from typing import Any

from tokens import layout as L
from tokens.genesis import DEFAULT_PARAMS, Genesis
from tokens.kv import KV, decode_value
from tokens.ledger import is_registrar_at
from tokens.rules_assoc import compute_fund_address
from tokens.rules_auditors import get_holders, read_auditors, read_epoch_holders
from tokens.rules_registrars import get_registrars_at
from tokens.rules_validators import compute_quorum_cosigners, get_set_at
from tokens.settlement import compute_standing_allocation
from tokens.txs import SOLIDARITY
from tokens.upgrades import PROTOCOL_VERSION, compute_fork_id, compute_version_at, get_upgrades, is_supported
from wire.units import Height


def _get(kv: KV, key: bytes, default: Any = None) -> Any:
    raw = kv.get(key)
    return default if raw is None else decode_value(raw)


def _scan(kv: KV, prefix: bytes) -> list[tuple[bytes, Any]]:
    return [(key, decode_value(raw)) for key, raw in kv.iter_prefix(prefix)]


def get_height(kv: KV) -> Height:
    return _get(kv, L.META_HEIGHT, 0)


def get_time_ms(kv: KV) -> int:
    return _get(kv, L.META_TIME, 0)


def get_params(kv: KV) -> dict[str, Any]:
    text = _get(kv, L.META_PARAMS)
    return {} if text is None else json.loads(text)


def get_interval_s(kv: KV) -> int:
    return get_params(kv)["settlement_interval_s"]


def get_treasury(kv: KV) -> dict[str, int]:
    kwh, hour = _get(kv, L.TREASURY, [0, 0])
    return {"kwh": kwh, "hour": hour}


def get_funds(kv: KV) -> dict[str, dict[str, int]]:
    """Every category fund: balance, total received, total spent (Wh)."""
    names = [name for name, _ in get_params(kv).get("allocation_categories", [])]
    found = {key[len(L.FUND):].decode(): rec for key, rec in _scan(kv, L.FUND)}
    out = {}
    for name in names + sorted(set(found) - set(names)):
        kwh, received, spent = found.get(name, [0, 0, 0])
        out[name] = {"kwh": kwh, "received": received, "spent": spent}
    return out


def get_allocation(kv: KV) -> dict[str, int]:
    """The standing allocation, bp per category."""
    cats = get_params(kv).get("allocation_categories", [])
    bps = compute_standing_allocation(_get(kv, L.META_ALLOCATION), cats)
    return {name: bp for (name, _), bp in zip(cats, bps)}


def get_totals(kv: KV) -> dict[str, int]:
    minted, allocated = _get(kv, L.META_TOTALS, [0, 0])
    return {"minted": minted, "allocated": allocated}


def get_household(kv: KV, addr: bytes) -> dict[str, Any] | None:
    hh = _get(kv, L.key_household(addr))
    if hh is None:
        return None
    return {
        "meter": hh[L.HH_METER], "prm": hh[L.HH_PRM], "label": hh[L.HH_LABEL], "kva": hh[L.HH_KVA],
        "peak_w": hh[L.HH_PEAK_W], "solidarity": hh[L.HH_SOLIDARITY], "since_height": hh[L.HH_SINCE],
        "last_reading": {"seq": hh[L.HH_SEQ], "t": hh[L.HH_T], "import_wh": hh[L.HH_IMPORT],
                         "export_wh": hh[L.HH_EXPORT], "baseline_set": hh[L.HH_BASELINE]},
    }


def describe_gift_target(kv: KV, beneficiary: bytes) -> str:
    """"solidarity", "fund:NAME", "association:NAME" or "household" (docs/euro.md)."""
    if beneficiary == SOLIDARITY:
        return "solidarity"
    for name, _ in get_params(kv).get("allocation_categories", []):
        if compute_fund_address(name) == beneficiary:
            return f"fund:{name}"
    assoc = _get(kv, L.key_association(beneficiary))
    if assoc is not None:
        return f"association:{assoc[0]}"
    return "household"


def get_gifts(kv: KV, addr: bytes) -> list[dict[str, Any]]:
    return [{"id": key[-32:].hex(), "beneficiary": ben.hex(), "solidarity": ben == SOLIDARITY,
             "target": describe_gift_target(kv, ben), "bp": bp, "until": until}
            for key, (ben, bp, until) in _scan(kv, L.GIFT + addr)]


def get_ballot(kv: KV, addr: bytes) -> dict[str, int] | None:
    """The household's standing ballot, bp by category name (DESIGN §5)."""
    ballot = _get(kv, L.BALLOT + addr)
    return None if ballot is None else dict(ballot)
def get_key_status(kv: KV, addr: bytes) -> dict[str, Any]:
    """DESIGN §12: a pending recovery (start, completes_at, new key), the key that replaced
    this one, or the height it moved out at."""
    status = _get(kv, L.key_status(addr))
    kind = None if status is None else status[0]
    recovery = None
    if kind == L.KS_RECOVERING:
        recovery = {"new_key": status[1].hex(), "start": status[2], "completes_at": status[3]}
    return {"recovery": recovery, "rotated_to": status[1].hex() if kind == L.KS_ROTATED else None,
            "deregistered_at": status[1] if kind == L.KS_DEREGISTERED else None}


def get_class_balances(kv: KV, addr: bytes) -> dict[str, int]:
    """The account's non-zero balances of commune-defined classes (docs/classes.md)."""
    prefix = L.CLASS_BALANCE + addr
    return {key[len(prefix):].decode(): balance for key, balance in _scan(kv, prefix)}


def get_class_supply(kv: KV, cls: str) -> int:
    """How much of a commune-defined class registrars have issued (Issue)."""
    return _get(kv, L.key_class_supply(cls), 0)


def get_classes(kv: KV, genesis: Genesis) -> list[dict[str, Any]]:
    """Every token class of the commune: unit, how many decimals of it a displayed label
    holds, who creates it, its credit limit in force and, for an issued class, the
    amount issued so far (docs/classes.md)."""
    limits = get_params(kv).get("credit_limit", genesis.params["credit_limit"])
    out = [{"name": "kwh", "unit": "Wh", "label": "kWh", "decimals": 3, "issued_by": "metering",
            "credit_limit": limits["kwh"], "supply": None},
           {"name": "hour", "unit": "min", "label": "h", "decimals": 0, "issued_by": "time bank",
            "credit_limit": limits["hour"], "supply": None}]
    for spec in genesis.classes:
        out.append({"name": spec.name, "unit": spec.unit, "label": spec.label, "decimals": spec.decimals,
                    "issued_by": spec.issued_by, "credit_limit": limits[spec.name],
                    "supply": get_class_supply(kv, spec.name) if spec.issued_by == "registrar" else None})
    return out


def get_account(kv: KV, addr: bytes) -> dict[str, Any]:
    """Balances per class, nonce, household info, key status, gifts, delegations and ballot.
    ``registrar``: whether the key may sign registrar txs in the next block."""
    kwh, hour, nonce = _get(kv, L.key_account(addr), [0, 0, 0])
    return {
        "address": addr.hex(),
        "balances": {"kwh": kwh, "hour": hour, **get_class_balances(kv, addr)},
        "nonce": nonce,
        "household": get_household(kv, addr),
        **get_key_status(kv, addr),
        "registrar": is_registrar_at(_get(kv, L.key_registrar(addr)), get_height(kv) + 1),
        "gifts": get_gifts(kv, addr),
        "delegations": {key[len(L.DELEGATION) + 32:].decode(): (to.hex() if to else None)
                        for key, to in _scan(kv, L.DELEGATION + addr)},
        "ballot": get_ballot(kv, addr),
    }


def get_interval_at(kv: KV, start: int, corrected: bool = False) -> dict[str, Any]:
    """Aggregates of the interval starting at unix second ``start`` (zeros if it saw no energy).
    ``corrected``: as reconciliations made them, those still waiting for enough households
    on a chain that seals included (``icor/``, the validators'); else the record's, which
    keeps the sums last shown (docs/privacy.md "Public aggregates")."""
    iv = _get(kv, L.key_interval(start))
    if corrected:
        pending = _get(kv, L.key_interval_correction(start))
        iv = iv if pending is None else pending[L.IC_RECORD]
    entries = {key[-32:].hex(): {"export_wh": e, "import_wh": i, "minted_wh": minted, "allocated_wh": a}
               for key, (e, i, minted, a) in _scan(kv, L.INTERVAL_ENTRY + L.u64(start))}
    if iv is None:
        return {"start": start, "end": start + get_interval_s(kv), "sum_e": 0, "sum_i": 0, "m": 0,
                "settled": start + get_interval_s(kv) <= _get(kv, L.META_SETTLED, 0), "levy": 0,
                "exported": 0, "households": {}}
    return {"start": start, "end": iv[L.IV_END], "sum_e": iv[L.IV_SUM_E], "sum_i": iv[L.IV_SUM_I],
            "m": iv[L.IV_M], "settled": iv[L.IV_SETTLED], "levy": iv[L.IV_LEVY],
            "exported": iv[L.IV_SUM_E] - iv[L.IV_M] if iv[L.IV_SETTLED] else 0, "households": entries}


def get_interval(kv: KV, k: int) -> dict[str, Any]:
    """Interval k = [kΔ, (k+1)Δ) with today's Δ: ΣE, ΣI, M and per-household E_j, I_i."""
    return dict(get_interval_at(kv, k * get_interval_s(kv)), k=k)


def get_household_intervals(kv: KV, addr: bytes, start_from: int, start_to: int,
                            own_entries_only: bool = False) -> list[dict[str, Any]]:
    """This household's E, I, minted and allocated per interval with start in [from, to].
    ``own_entries_only``: ``kv`` is a household node's in light mode, which holds its own
    entries but not the record of an interval fewer than ``min_aggregate`` households
    made up (docs/privacy.md "Public aggregates"): found by its own entries, such an
    interval's end and settlement are read from the interval length and
    ``meta/settled_until``."""
    if own_entries_only:
        return _get_own_intervals(kv, addr, start_from, start_to)
    out = []
    for key, raw in kv.iter_prefix(L.INTERVAL):
        start = L.from_u64(key[len(L.INTERVAL):])
        if start > start_to:
            break
        if start < start_from:
            continue
        entry = _get(kv, L.key_entry(start, addr))
        if entry is not None:
            e, i, minted, a = entry[:4]
            out.append({"start": start, "end": decode_value(raw)[L.IV_END], "export_wh": e, "import_wh": i,
                        "minted_wh": minted, "allocated_wh": a, "settled": decode_value(raw)[L.IV_SETTLED]})
    return out


def _get_own_intervals(kv: KV, addr: bytes, start_from: int, start_to: int) -> list[dict[str, Any]]:
    step, settled_until = get_interval_s(kv), _get(kv, L.META_SETTLED, 0)
    out = []
    for key, raw in kv.iter_prefix(L.INTERVAL_ENTRY):
        start = L.from_u64(key[len(L.INTERVAL_ENTRY):len(L.INTERVAL_ENTRY) + 8])
        if start > start_to:
            break
        if start < start_from or key[-32:] != addr:
            continue
        e, i, minted, a = decode_value(raw)[:4]
        iv = _get(kv, L.key_interval(start))
        if iv is not None:
            end, settled = iv[L.IV_END], iv[L.IV_SETTLED]
        else:
            end, settled = start + step, start + step <= settled_until
        out.append({"start": start, "end": end, "export_wh": e, "import_wh": i, "minted_wh": minted,
                    "allocated_wh": a, "settled": settled})
    return out


def get_consumers(kv: KV, addr: bytes, k: int) -> list[dict[str, Any]]:
    """DESIGN §4 step 4, "who used my energy in interval k": a_i·E_j/ΣE for each
    consumer i, as an exact fraction (numerator, denominator) plus Wh rounded down."""
    start = k * get_interval_s(kv)
    iv = _get(kv, L.key_interval(start))
    pending = _get(kv, L.key_interval_correction(start))
    iv = iv if pending is None else pending[L.IC_RECORD]    # its entries are the corrected ones
    mine = _get(kv, L.key_entry(start, addr))
    if iv is None or mine is None or not iv[L.IV_SETTLED] or not mine[L.IE_E]:
        return []
    e_j, sum_e = mine[L.IE_E], iv[L.IV_SUM_E]
    out = []
    for key, rec in _scan(kv, L.INTERVAL_ENTRY + L.u64(start)):
        a_i = rec[L.IE_ALLOCATED]
        if a_i:
            num = a_i * e_j
            out.append({"consumer": key[-32:].hex(), "wh": num // sum_e, "numerator": num, "denominator": sum_e})
    return out


def get_validator_set(kv: KV, height: Height) -> list[bytes]:
    """The validator keys that sign blocks at ``height`` (changes start at h+2)."""
    return get_set_at(_scan(kv, L.VALIDATOR_SET), height)


def get_registrar_set(kv: KV) -> dict[str, Any]:
    """DESIGN §12: the registrar keys in force at the next height, and what a
    RegistrarSetChange needs: its next nonce, the validators who co-sign it, how many.
    For the registrar's desk: ``recovery_delay_s``, the pending recoveries (each
    cancellable by the household's old key until ``completes_at``) and the keys that
    moved out (newest first)."""
    height = get_height(kv) + 1
    validators = get_validator_set(kv, height)
    recoveries, moved_out = [], []
    for key, status in _scan(kv, L.KEY_STATUS):
        addr = key[len(L.KEY_STATUS):]
        if status[0] == L.KS_RECOVERING:
            hh = _get(kv, L.key_household(addr))
            recoveries.append({"household": addr.hex(), "label": hh[L.HH_LABEL] if hh else "",
                               "new_key": status[1].hex(), "start": status[2], "completes_at": status[3],
                               "cancellable_by": addr.hex()})
        elif status[0] == L.KS_DEREGISTERED:
            moved_out.append({"key": addr.hex(), "height": status[1]})
    recoveries.sort(key=lambda r: (r["completes_at"], r["household"]))
    moved_out.sort(key=lambda m: (-m["height"], m["key"]))
    return {"height": height, "registrars": [k.hex() for k in get_registrars_at(_scan(kv, L.REGISTRAR), height)],
            "next_nonce": _get(kv, L.META_RSC_NONCE, 0) + 1, "validators": [k.hex() for k in validators],
            "quorum": compute_quorum_cosigners(len(validators)),
            "recovery_delay_s": get_params(kv).get("recovery_delay_s", DEFAULT_PARAMS["recovery_delay_s"]),
            "recoveries": recoveries,
            "moved_out": moved_out}


def get_validators(kv: KV) -> list[dict[str, Any]]:
    """Every validator in the current or a scheduled set, with equivocation flags."""
    height = get_height(kv)
    sets = _scan(kv, L.VALIDATOR_SET)
    current = get_set_at(sets, height)
    latest = sets[-1][1] if sets else []
    out = []
    for key in list(dict.fromkeys(current + latest)):
        addr, name = _get(kv, L.VALIDATOR + key, ["", ""])
        equiv = _get(kv, L.EQUIVOCATION + key)
        out.append({"key": key.hex(), "addr": addr, "name": name, "active": key in current,
                    "scheduled": key in latest, "equivocating": equiv is not None,
                    "equivocation_heights": None if equiv is None else {"first": equiv[0], "last": equiv[1],
                                                                          "count": equiv[2]}})
    return out


def get_proposals(kv: KV) -> list[dict[str, Any]]:
    out = []
    for key, p in _scan(kv, L.PROPOSAL):
        pid = key[len(L.PROPOSAL):]
        votes = {k[-32:].hex(): c for k, c in _scan(kv, L.VOTE + pid)}
        out.append({"id": pid.hex(), "proposer": p[L.P_PROPOSER].hex(), "param": p[L.P_PARAM],
                    "value": p[L.P_VALUE], "voting_end": p[L.P_END], "status": p[L.P_STATUS],
                    "yes": p[L.P_YES], "no": p[L.P_NO], "abstain": p[L.P_ABSTAIN],
                    "participation_bp": p[L.P_PARTICIPATION], "votes": votes})
    return out


def get_upgrade_view(kv: KV, height: Height, chain_id: bytes) -> dict[str, Any]:
    """GET /upgrades: the version now and next, every schedule, what this software knows,
    and what a ScheduleUpgrade needs (its next nonce, the validators who co-sign it, how many)."""
    upgrades = get_upgrades(kv)
    fork_hash, fork_next = compute_fork_id(chain_id, upgrades, height)
    validators = get_validator_set(kv, Height(height + 1))
    return {"next_nonce": _get(kv, L.META_UPG_NONCE, 0) + 1, "validators": [k.hex() for k in validators],
            "quorum": compute_quorum_cosigners(len(validators)), "height": height,
            "version": compute_version_at(upgrades, height),
            "next_version": compute_version_at(upgrades, Height(height + 1)),
            "software_version": PROTOCOL_VERSION,
            "scheduled": [{"version": v, "height": h, "supported": is_supported(v)} for v, h in upgrades],
            "fork_id": {"hash": fork_hash.hex(), "next": fork_next}}


def get_sealing(kv: KV) -> dict[str, Any] | None:
    """docs/privacy.md "Sealed payloads": the commune data key households seal to now,
    {epoch, public}, the keys it is sealed to (``holders``), the auditors, the keys the
    next rotation must seal to and whether one is due; None on a chain that does not seal."""
    epoch = _get(kv, L.META_DATA_EPOCH)
    if epoch is None:
        return None
    record = _get(kv, L.key_data_key(epoch))
    auditors = read_auditors(kv)
    sets = _scan(kv, L.VALIDATOR_SET)
    latest = list(sets[-1][1]) if sets else []
    # docs/privacy.md "Auditors": a new epoch goes to the latest validators and the auditors;
    # a rotation is due while the current epoch's copies went to another set of keys.
    due = get_holders(latest, [bytes.fromhex(a["key"]) for a in auditors])
    holders = read_epoch_holders(kv, epoch)
    # docs/privacy.md "Erasure": after an erasure the next rotation is a cut, and is due.
    cut_due = _get(kv, L.META_CUT_DUE) is not None
    cut = _get(kv, L.META_DATA_CUT)
    # docs/privacy.md "Receive keys": the key each holder's next copy is sealed to, and
    # the epoch first sealed to it (None: unused, so a cut may seal to it).
    receive = {key[len(L.RECEIVE_KEY):].hex(): {"public": rec[L.RK_PUBLIC].hex(), "used": rec[L.RK_USED],
                                               "nonce": rec[L.RK_NONCE]}
               for key, rec in ((key, decode_value(raw)) for key, raw in kv.iter_prefix(L.RECEIVE_KEY))}
    return {"epoch": epoch, "public": record[0].hex(), "holders": [k.hex() for k in holders],
            "auditors": auditors, "next_holders": [k.hex() for k in due], "rotation_due": holders != due or cut_due,
            "cut_due": cut_due, "cut": None if cut is None else {"epoch": cut[0], "height": cut[1]},
            "receive": receive}
