"""Governance transactions and their effects (DESIGN §5): Delegate, AllocationBallot,
Propose, Vote; the standing allocation at each epoch and proposal tallies.

The ledger stores delegations, ballots, proposals and votes; the pure tallying is
governance/'s (resolve_delegations, allocate, tally_proposal, compute_weights).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.genesis import DEFAULT_PARAMS, GenesisError, check_params
from tokens.ledger import Ledger
from tokens.rules_auditors import AUDITORS_PARAM, check_auditor_proposal, process_auditor_proposal
from tokens.rules_registrars import REGISTRARS_PARAM, check_registrar_proposal, process_registrar_proposal
from tokens.settlement import (
    get_categories, get_first_contribution_day, get_standing_allocation, process_force_settle,
)
from tokens.txs import AllocationBallot, BallotEntry, Delegate, Propose, Vote
from wire.units import BasisPoints

TOPICS = ("allocation", "params", "*")
KWH = L.CLASS_INDEX["kwh"]
CHOICES = ("yes", "no", "abstain")
TOTAL_BP = 10_000
# A voting window may stay open at most this long.
MAX_VOTING_WINDOW_S = 365 * 86_400
STATUS_OPEN, STATUS_PASSED, STATUS_REJECTED, STATUS_FAILED = "open", "passed", "rejected", "failed"


def get_governance():
    """governance/ (DESIGN §5 pure tallies), imported when first needed."""
    import governance
    return governance


@dataclass(frozen=True)
class ProposalTallied:
    """Event: a proposal's voting window closed and it was tallied."""

    proposal: bytes
    param: str
    passed: bool
    applied: bool
    yes: int
    no: int
    abstain: int
    participation_bp: int
    kind: str = "proposal"


@dataclass(frozen=True)
class FundClosed:
    """Event: a removed category's fund closed; its kwh went to the treasury."""

    category: str
    kwh: int
    received: int
    spent: int
    kind: str = "fund_closed"


def process_delegate(lg: Ledger, tx: Delegate, tx_id: bytes) -> None:
    # DESIGN §5 Delegate(topic, to | none): a topic beats "*", none on a topic blocks
    # "*"; revocable at any time. Delegating to oneself removes the topic's entry.
    lg.require_household(tx.signer)
    if tx.topic not in TOPICS:
        raise InvalidTx("bad_topic", f"topic {tx.topic!r} is not one of {', '.join(TOPICS)}")
    if tx.to is not None and tx.to != tx.signer:
        lg.require_household(tx.to, "unknown_delegate")
    lg.process_nonce(tx.signer, tx.nonce)
    key = L.key_delegation(tx.signer, tx.topic)
    if tx.to == tx.signer:
        lg.ov.delete(key)
    else:
        lg.ov.put(key, b"" if tx.to is None else tx.to)


def check_ballot_entries(lg: Ledger, entries: tuple[BallotEntry, ...]) -> None:
    # DESIGN §5 AllocationBallot: a distribution over the categories, keyed by name so
    # that a change of allocation_categories never makes it mean something else.
    names = [e.category for e in entries]
    if names != sorted(set(names)):
        raise InvalidTx("bad_ballot", "ballot entries name each category once, sorted by name")
    known = set(get_categories(lg))
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InvalidTx("unknown_category", f"no allocation category {unknown[0]!r}")
    if any(e.bp == 0 for e in entries):
        raise InvalidTx("bad_ballot", "an entry of 0 bp is left out (an omitted category gets 0)")
    total = sum(e.bp for e in entries)
    if total != TOTAL_BP:
        raise InvalidTx("bad_ballot", f"a ballot sums to {TOTAL_BP} bp, got {total}")


def process_ballot(lg: Ledger, tx: AllocationBallot, tx_id: bytes) -> None:
    # DESIGN §5 AllocationBallot: stands until replaced; stored as [[name, bp], ...].
    lg.require_household(tx.signer)
    check_ballot_entries(lg, tx.entries)
    lg.process_nonce(tx.signer, tx.nonce)
    lg.ov.put(L.BALLOT + tx.signer, [[e.category, e.bp] for e in tx.entries])


def compute_ballot_vector(ballot: list, names: list[str]) -> list[int] | None:
    """A stored ballot as bp in the order of ``names``; None if it names a category that no
    longer exists: it then stops counting, and its voter's weight follows their delegation."""
    by_name = dict(ballot)
    if not by_name.keys() <= set(names):
        return None
    return [by_name.get(name, 0) for name in names]


def parse_param_change(lg: Ledger, param: str, value_text: str) -> dict:
    """The full parameter set with ``param`` changed, checked; raises InvalidTx."""
    if param not in DEFAULT_PARAMS:
        raise InvalidTx("unknown_param", f"no parameter {param!r}")
    try:
        value = json.loads(value_text)
    except ValueError:
        raise InvalidTx("bad_value", f"value of {param} is not JSON") from None
    try:
        return check_params(dict(lg.params, **{param: value}), lg.genesis.dev, lg.genesis.class_names)
    except GenesisError as exc:
        raise InvalidTx("bad_value", str(exc)) from None


def process_propose(lg: Ledger, tx: Propose, tx_id: bytes) -> None:
    # DESIGN §5 Propose: a parameter change with a voting window; DESIGN §12: or a
    # change of the registrar set; docs/privacy.md "Auditors": or of the auditors.
    lg.require_household(tx.signer)
    if tx.param == REGISTRARS_PARAM:
        check_registrar_proposal(lg, tx.value)
    elif tx.param == AUDITORS_PARAM:
        check_auditor_proposal(lg, tx.value)
    else:
        parse_param_change(lg, tx.param, tx.value)
    if not lg.now_s < tx.voting_end <= lg.now_s + MAX_VOTING_WINDOW_S:
        raise InvalidTx("bad_window", "voting must end after block time and within 365 days")
    lg.process_nonce(tx.signer, tx.nonce)
    lg.ov.put(L.key_proposal(tx_id), [tx.signer, tx.param, tx.value, tx.voting_end, STATUS_OPEN, 0, 0, 0, 0])
    lg.ov.put(L.key_pending(tx.voting_end, tx_id), 1)


def process_vote(lg: Ledger, tx: Vote, tx_id: bytes) -> None:
    # DESIGN §5 Vote: yes, no or abstain while the window is open; a later vote replaces.
    lg.require_household(tx.signer)
    prop = lg.ov.get(L.key_proposal(tx.proposal))
    if prop is None:
        raise InvalidTx("unknown_proposal", f"no proposal {tx.proposal.hex()[:16]}…")
    if prop[L.P_STATUS] != STATUS_OPEN or lg.now_s >= prop[L.P_END]:
        raise InvalidTx("voting_closed", "the proposal's voting window has closed")
    if tx.choice not in CHOICES:
        raise InvalidTx("bad_choice", f"choice {tx.choice!r} is not yes, no or abstain")
    lg.process_nonce(tx.signer, tx.nonce)
    lg.ov.put(L.key_vote(tx.proposal, tx.signer), tx.choice)


def get_households(lg: Ledger) -> list[bytes]:
    return [key[len(L.HOUSEHOLD):] for key, _ in lg.ov.iter_prefix(L.HOUSEHOLD)]


def get_vote_weights(lg: Ledger) -> dict[bytes, int]:
    # DESIGN §5 Weights: household = 1 each; contribution = levy paid + public service
    # at official rates over the trailing 365 days, floor 1.
    households = get_households(lg)
    kind = lg.params["vote_weight"]
    if kind == "household":
        return get_governance().compute_weights("household", households)
    first_day = get_first_contribution_day(lg.now_s)
    levy: dict[bytes, int] = {}
    minutes: dict[bytes, int] = {}
    known = set(households)
    for key, (wh, mins) in lg.ov.iter_prefix(L.CONTRIBUTION):
        day, addr = L.from_u64(key[4:12]), key[12:44]
        if day >= first_day and addr in known:
            levy[addr] = levy.get(addr, 0) + wh
            minutes[addr] = minutes.get(addr, 0) + mins
    return get_governance().compute_weights("contribution", households, levy, minutes, lg.params["rates"]["hour_wh"])


def get_delegations(lg: Ledger) -> dict[bytes, dict[str, bytes | None]]:
    out: dict[bytes, dict[str, bytes | None]] = {}
    for key, to in lg.ov.iter_prefix(L.DELEGATION):
        addr, topic = key[4:36], key[36:].decode()
        out.setdefault(addr, {})[topic] = to or None
    return out


def get_ballot_allocation(lg: Ledger) -> list[BasisPoints]:
    # DESIGN §5: the standing allocation aggregates every counted ballot by the
    # allocation_rule; with no counted ballot the current allocation stands.
    names = get_categories(lg)
    n = len(names)
    vectors = ((key[len(L.BALLOT):], compute_ballot_vector(ballot, names)) for key, ballot in lg.ov.iter_prefix(L.BALLOT))
    ballots = {voter: bps for voter, bps in vectors if bps is not None}
    current = get_standing_allocation(lg)
    if not ballots:
        return current
    weights = get_vote_weights(lg)
    ballots = {v: b for v, b in ballots.items() if v in weights}
    resolution = get_governance().resolve_delegations(weights, get_delegations(lg), ballots.keys(), "allocation")
    counted = {v: w for v, w in resolution.effective_weight.items() if w > 0}
    if not counted:
        return current
    gov = get_governance()
    try:
        return [int(bp) for bp in gov.allocate(lg.params["allocation_rule"], ballots, counted, n)]
    except gov.NoCountedBallot:
        return current


def process_tallies(lg: Ledger, events: list) -> None:
    # DESIGN §5: at the window's end the liquid tally decides; a passed change takes
    # effect in the next block (this runs after the block's transactions).
    due = []
    for key, _ in lg.ov.iter_prefix(L.PENDING):
        if L.from_u64(key[5:13]) > lg.now_s:
            break
        due.append(key)
    for key in due:
        lg.ov.delete(key)
        events.append(process_tally(lg, key[13:], events))


def process_tally(lg: Ledger, pid: bytes, events: list) -> ProposalTallied:
    prop = lg.ov.get(L.key_proposal(pid))
    votes = {key[-32:]: choice for key, choice in lg.ov.iter_prefix(L.VOTE + pid)}
    weights = get_vote_weights(lg)
    votes = {v: c for v, c in votes.items() if v in weights}
    tally = get_governance().tally_proposal(votes, weights, get_delegations(lg), sum(weights.values()),
                                      lg.params["proposal_quorum_bp"], lg.params["proposal_threshold_bp"])
    applied = False
    status = STATUS_PASSED if tally.passed else STATUS_REJECTED
    if tally.passed:
        applied = process_param_change(lg, prop[L.P_PARAM], prop[L.P_VALUE], events, pid)
        status = STATUS_PASSED if applied else STATUS_FAILED
    prop[L.P_STATUS:] = [status, tally.yes, tally.no, tally.abstain, tally.participation_bp]
    lg.ov.mark(L.key_proposal(pid))
    return ProposalTallied(pid, prop[L.P_PARAM], tally.passed, applied, tally.yes, tally.no, tally.abstain,
                           tally.participation_bp)


def process_param_change(lg: Ledger, param: str, value_text: str, events: list, pid: bytes = bytes(32)) -> bool:
    """Apply a passed change if it is still valid with today's parameters (or registrars,
    or auditors)."""
    if param == REGISTRARS_PARAM:
        return process_registrar_proposal(lg, value_text)
    if param == AUDITORS_PARAM:
        return process_auditor_proposal(lg, value_text, pid)
    try:
        params = parse_param_change(lg, param, value_text)
    except InvalidTx:
        return False
    if params["settlement_interval_s"] != lg.params["settlement_interval_s"]:
        # Intervals of the old length settle now; the new grid starts after them.
        process_force_settle(lg, events)
    process_removed_categories(lg, params, events)
    if params["allocation_epoch_s"] != lg.params["allocation_epoch_s"]:
        epoch_s = params["allocation_epoch_s"]
        lg.ov.put(L.META_NEXT_EPOCH, (lg.now_s // epoch_s + 1) * epoch_s)
    lg.set_params(params)
    return True


def process_removed_categories(lg: Ledger, params: dict, events: list) -> None:
    # DESIGN §4 "category funds, one per allocation category": a removed category's
    # fund closes in the block that removes it, and its kwh goes back to the treasury,
    # which the next epoch splits by the new allocation. Nothing is stranded.
    kept = {name for name, _ in params["allocation_categories"]}
    for name in get_categories(lg):
        if name in kept:
            continue
        fund = lg.ov.get(L.key_fund(name))
        if fund is None:
            continue
        lg.process_treasury(KWH, fund[0])
        lg.ov.delete(L.key_fund(name))
        events.append(FundClosed(name, fund[0], fund[1], fund[2]))
