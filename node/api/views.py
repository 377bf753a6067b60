"""JSON views of the committed ledger for the HTTP API, read from one consistent snapshot.

Each function takes the ledger's ``KV`` (``Snapshot.state``) and plain arguments and
returns a JSON-ready dict; ``None`` means "no such thing" (the route answers 404).
The reading itself is tokens/queries.py's; this module chooses defaults, pages and
names categories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus.block import Commit
from node.api.params import MAX_TIME_S
from tokens import layout as L
from tokens.genesis import Genesis
from tokens.kv import KV, decode_value
from tokens.ledger import Ledger
from tokens.queries import (
    get_consumers, get_account, get_allocation, get_funds, get_height, get_household,
    get_household_intervals, get_interval_at, get_interval_s, get_classes, get_params, get_proposals, get_sealing, get_time_ms,
    get_totals, get_treasury, get_validator_set, get_validators,
)
from tokens.queries_aggregate import get_min_aggregate, get_public_aggregates
from tokens.rules_gov import get_ballot_allocation
from tokens.rules_validators import compute_quorum_cosigners
from tokens.visibility import is_hidden_interval
from wire import MAX_BLOCK_BYTES, DecodeError, decode

CHART_INTERVALS = 48            # the dashboard's chart: the last 48 half hours


def get_categories(kv: KV) -> list[str]:
    return [name for name, _ in get_params(kv).get("allocation_categories", [])]


def get_account_view(kv: KV, addr: bytes) -> dict[str, Any] | None:
    """Balances, household, gifts, delegations and ballot; None for an account never used."""
    account = get_account(kv, addr)
    if account["household"] is None and account["nonce"] == 0 and not any(account["balances"].values()) \
            and not account["registrar"] and account["rotated_to"] is None and account["deregistered_at"] is None:
        return None
    # DESIGN §5: a ballot naming a category that no longer exists stops counting (null).
    ballot = account["ballot"]
    names = get_categories(kv)
    account["ballot_by_category"] = ({name: ballot.get(name, 0) for name in names}
                                     if ballot is not None and ballot.keys() <= set(names) else None)
    return account


def compute_default_range(kv: KV) -> tuple[int, int]:
    """The last CHART_INTERVALS interval starts up to the one holding the last block's time."""
    step = get_interval_s(kv)
    last = get_time_ms(kv) // 1000 // step * step
    return max(0, last - (CHART_INTERVALS - 1) * step), last


def get_intervals_view(kv: KV, addr: bytes, start_from: int | None, start_to: int | None,
                       limit: int, light: bool = False) -> dict[str, Any] | None:
    """DESIGN §9 /households/{addr}/intervals: E, I, minted and allocated per interval
    with start in [from, to], oldest first, at most ``limit``; ``next_from`` pages on.
    ``light``: read from a household node in light mode (its own entries, not every
    interval's record)."""
    if get_household(kv, addr) is None:
        return None
    default_from, default_to = compute_default_range(kv)
    lo = default_from if start_from is None else start_from
    hi = default_to if start_to is None else start_to
    step = get_interval_s(kv)
    rows = get_household_intervals(kv, addr, lo, hi, own_entries_only=light) if lo <= hi else []
    page = [dict(row, k=row["start"] // step) for row in rows[:limit]]
    more = len(rows) > limit
    return {"address": addr.hex(), "interval_s": step, "from": lo, "to": hi, "intervals": page,
            "next_from": page[-1]["start"] + 1 if more else None}


def get_aggregates_view(kv: KV, start_from: int | None, start_to: int | None, limit: int,
                        light: bool = False) -> dict[str, Any]:
    """Issue 20: the commune's ΣE, ΣI, M and participants per settled interval with start
    in [from, to] (default: the last 48), a sum left out (null) when fewer than
    ``min_aggregate`` households make it up (tokens/queries_aggregate.py). ``light``: a
    household node in light mode, which cannot count the households (``counted`` false)."""
    default_from, default_to = compute_default_range(kv)
    lo = default_from if start_from is None else start_from
    hi = default_to if start_to is None else start_to
    rows, more = get_public_aggregates(kv, lo, hi, limit, not light) if lo <= hi else ([], False)
    step = get_interval_s(kv)
    return {"interval_s": step, "from": lo, "to": hi, "min_aggregate": get_min_aggregate(kv), "counted": not light,
            "intervals": [dict(row, k=row["start"] // step) for row in rows],
            "next_from": rows[-1]["start"] + 1 if more else None}


def get_consumers_view(kv: KV, addr: bytes, k: int, after: bytes | None, limit: int,
                       named: bool = True, light: bool = False) -> dict[str, Any] | None:
    """DESIGN §4 step 4 "who used my energy in interval k": a_i·E_j/ΣE per consumer i,
    in address order after ``after``, at most ``limit``. Always: how much of it they used
    in all, ``local_wh`` = ⌊M·E_j/ΣE⌋ (Σa_i = M), and how many they were. ``named`` False
    leaves the consumers out: with the public ΣE, ΣI and M, one row a_i·E_j/ΣE gives that
    neighbour's I_i (docs/privacy.md), so only the operator (the PMO) reads them; and on a
    chain that seals, ``sum_e`` of a hidden interval too. ``light``: a household node in
    light mode holds no neighbour's record, so it knows ``local_wh`` (from the public
    interval and its own record) but neither the rows nor their count (null); of an
    interval whose record it was refused (hidden), not ``local_wh`` either (null), nor
    does a household on any node: only the operator reads a hidden interval's
    ``local_wh``."""
    if get_household(kv, addr) is None:
        return None
    step = get_interval_s(kv)
    start = k * step
    if start > MAX_TIME_S:
        interval = {"start": start, "end": start + step, "settled": False, "sum_e": 0, "households": {}}
        rows: list[dict[str, Any]] = []
    else:
        # The operator reads the sums as reconciliations made them; a household the
        # record's, the sums last shown (docs/privacy.md "Public aggregates").
        interval = get_interval_at(kv, start, corrected=named)
        rows = [] if light else get_consumers(kv, addr, k)
    mine = interval["households"].get(addr.hex(), {})
    e_j, sum_e = mine.get("export_wh", 0), interval["sum_e"]
    local_wh = interval["m"] * e_j // sum_e if interval["settled"] and e_j and sum_e else 0
    if light and start <= MAX_TIME_S and kv.get(L.key_interval(start)) is None:
        # A light node is refused the record of an interval fewer than min_aggregate
        # households made up (docs/privacy.md "Public aggregates"): its own entry gives
        # its E, but it cannot tell M/ΣE.
        own = kv.get(L.key_entry(start, addr))
        e_j = decode_value(own)[L.IE_E] if own is not None else 0
        local_wh = None if e_j else 0
    count = None if light else len(rows)
    if after is not None:
        rows = [row for row in rows if row["consumer"] > after.hex()]
    doc = {"address": addr.hex(), "interval": k, "start": interval["start"], "end": interval["end"],
           "settled": interval["settled"], "export_wh": e_j, "sum_e": sum_e,
           "consumers_count": count, "local_wh": local_wh, "named": named,
           "consumers": rows[:limit], "next_cursor": rows[limit - 1]["consumer"] if len(rows) > limit else None}
    if not named:
        doc.update(consumers=[], next_cursor=None)
        # On a chain that seals, ΣE of an interval fewer than min_aggregate households
        # made up is the validators' (docs/privacy.md "Public aggregates"): with one
        # other producer, ΣE less this household's E would be that neighbour's.
        # local_wh likewise: with its own E it gives M/ΣE of the interval.
        if start <= MAX_TIME_S and is_hidden_interval(kv, L.key_interval(start), kv.get(L.key_interval(start))):
            doc["sum_e"] = None
            doc["local_wh"] = None if e_j else 0
    return doc


def compute_live_allocation(kv: KV, genesis: Genesis) -> list[int]:
    """DESIGN §5: the standing allocation that the ballots standing now give, by the
    ledger's own rule (tokens.rules_gov), i.e. what the next epoch will apply."""
    lg = Ledger(kv, genesis, get_height(kv), get_time_ms(kv))
    return get_ballot_allocation(lg)


def get_allocation_view(kv: KV, live: list[int]) -> dict[str, Any]:
    params = get_params(kv)
    names = get_categories(kv)
    ballots = sum(1 for _ in kv.iter_prefix(L.BALLOT))
    return {"allocation": dict(zip(names, live)), "applied": get_allocation(kv), "categories": names,
            "rule": params.get("allocation_rule"), "vote_weight": params.get("vote_weight"),
            "ballots": ballots, "epoch_s": params.get("allocation_epoch_s"), "height": get_height(kv)}


def get_proposals_view(kv: KV, status: str | None, after: bytes | None, limit: int) -> dict[str, Any]:
    rows = [p for p in get_proposals(kv) if status is None or p["status"] == status]
    if after is not None:
        rows = [p for p in rows if p["id"] > after.hex()]
    return {"proposals": rows[:limit], "next_cursor": rows[limit - 1]["id"] if len(rows) > limit else None}


def get_commune_view(kv: KV, genesis: Genesis) -> dict[str, Any]:
    """The commune's side of the ledger: treasury, category funds, totals, parameters."""
    households = sum(1 for _ in kv.iter_prefix(L.HOUSEHOLD))
    return {"name": genesis.name, "insee": genesis.insee, "chain_id": genesis.chain_id.hex(),
            "height": get_height(kv), "time_ms": get_time_ms(kv), "households": households,
            "treasury": get_treasury(kv), "funds": get_funds(kv), "totals": get_totals(kv),
            "categories": get_categories(kv), "params": get_params(kv), "sealing": get_sealing(kv),
            "classes": get_classes(kv, genesis)}


@dataclass(frozen=True)
class Liveness:
    """What this node sees of the validators right now (not in the ledger)."""

    own_key: bytes
    own_height: int
    own_round: int
    peer_heights: dict[str, int]        # libp2p peer id -> last announced height
    connected: frozenset[str]
    heartbeats: Any = None              # HeartbeatBook: gossip heartbeats heard (docs/cadence.md)


def decode_commit(raw: bytes | None) -> Commit | None:
    if raw is None:
        return None
    try:
        return decode(raw, Commit, MAX_BLOCK_BYTES)
    except DecodeError:
        return None


def compute_known_height(live: Liveness, peer: str, is_self: bool, signed_last: bool) -> int | None:
    """Our own height; else the peer's last announced height, or the last committed
    height if it signed that block's commit, whichever is higher (None: never heard of)."""
    if is_self:
        return live.own_height
    announced = live.peer_heights.get(peer)
    if signed_last:
        return max(announced or 0, live.own_height)
    return announced


def get_heartbeat_view(book: Any, key: bytes) -> dict[str, Any]:
    """heartbeat_age_s (None: never heard) and live, from this node's heartbeat book."""
    age = book.get_age_s(key) if book is not None else None
    return {"heartbeat_age_s": None if age is None else round(age, 1),
            "live": book is not None and book.is_live(key)}


def get_validators_view(kv: KV, last_commit: Commit | None, live: Liveness, peer_id_of,
                        offset: int, limit: int) -> dict[str, Any]:
    """Validators' health: ledger flags (active, equivocating) plus this node's view of
    their height, connection, and whether they signed the last commit."""
    signed = {s.validator for s in last_commit.sigs} if last_commit is not None else set()
    rows = []
    for v in get_validators(kv):
        key = bytes.fromhex(v["key"])
        # An added validator's address may name its peer id (a household promoted while running).
        peer = v["addr"].rsplit("/p2p/", 1)[1] if "/p2p/" in v["addr"] else peer_id_of(key)
        is_self = key == live.own_key
        rows.append(dict(v, peer_id=peer, self=is_self, connected=is_self or peer in live.connected,
                         height=compute_known_height(live, peer, is_self, key in signed),
                         round=live.own_round if is_self else None, signed_last_commit=key in signed,
                         **get_heartbeat_view(live.heartbeats, key)))
    page = rows[offset:offset + limit]
    return {"height": live.own_height, "round": live.own_round,
            "last_commit_round": last_commit.round if last_commit is not None else None,
            "validators": page, "total": len(rows),
            "next_offset": offset + limit if offset + limit < len(rows) else None}


def get_validator_change_view(kv: KV) -> dict[str, Any]:
    """What a ValidatorSetChange is built on (DESIGN §4): the nonce it must carry, the
    set that co-signs it (the one in force at the next height), the latest set (a
    change applies to it, even when still scheduled) and the co-signatures needed."""
    height = get_height(kv)
    raw = kv.get(L.META_VSC_NONCE)
    signing = get_validator_set(kv, height + 1)
    latest = [v["key"] for v in get_validators(kv) if v["scheduled"]]
    return {"height": height, "next_nonce": (0 if raw is None else decode_value(raw)) + 1,
            "validators": [k.hex() for k in signing], "latest": latest,
            "quorum": compute_quorum_cosigners(len(signing))}
