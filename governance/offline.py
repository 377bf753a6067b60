"""The offline tally: a JSON case in, the same code's result out (DESIGN §5, for audits).

Input, an already-parsed JSON object:
``{"topic": "allocation" | "params", "weights": {voter: int},
"delegations": [{"from": voter, "topic": "allocation" | "params" | "*", "to": voter | null}]}``,
plus for "allocation" ``"categories": [name, ...]``, ``"rule"`` and
``"ballots": {voter: [bp, ...]}``, and for "params" ``"votes": {voter: "yes" | "no" |
"abstain"}``, ``"quorum_bp"`` and ``"threshold_bp"``. ``delegations`` may be left out.
Anything else is refused with a GovernanceError saying what is wrong; reading the
file and printing are node/'s job.
"""

from __future__ import annotations

from typing import Any

from governance.allocation import RULES, allocate
from governance.delegation import TOPICS, resolve_delegations
from governance.errors import GovernanceError, NoCountedBallot
from governance.proposals import tally_proposal

CASE_FIELDS = {
    "allocation": ("topic", "weights", "delegations", "categories", "rule", "ballots"),
    "params": ("topic", "weights", "delegations", "votes", "quorum_bp", "threshold_bp"),
}
OPTIONAL_FIELDS = ("delegations",)
DELEGATION_FIELDS = ("from", "topic", "to")


def get_field(doc: dict, name: str, kind: type, where: str = "case") -> Any:
    if name not in doc:
        raise GovernanceError(f"{where}: missing field {name!r}")
    value = doc[name]
    if type(value) is not kind:
        raise GovernanceError(f"{where}: field {name!r} must be a JSON {kind_name(kind)}")
    return value


def kind_name(kind: type) -> str:
    return {dict: "object", list: "array", str: "string", int: "integer"}[kind]


def check_fields(doc: dict, allowed: tuple[str, ...], where: str) -> None:
    """Refuse unknown fields: a misspelt optional field would otherwise be ignored."""
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise GovernanceError(f"{where}: unknown field {unknown[0]!r}")


def parse_weights(doc: dict) -> dict[str, int]:
    weights = get_field(doc, "weights", dict)
    for voter, weight in weights.items():
        if type(weight) is not int or weight < 0:
            raise GovernanceError(f"weight of voter {voter!r} must be an integer >= 0, got {weight!r}")
    return weights


def parse_delegation(item: Any, index: int, weights: dict[str, int]) -> tuple[str, str, str | None]:
    """One delegation, between known voters (DESIGN §5: the ledger refuses others too)."""
    where = f"delegations[{index}]"
    if type(item) is not dict:
        raise GovernanceError(f"{where}: expected an object with from, topic and to")
    check_fields(item, DELEGATION_FIELDS, where)
    source = get_field(item, "from", str, where)
    topic = get_field(item, "topic", str, where)
    if "to" not in item:
        raise GovernanceError(f"{where}: missing field 'to' (null for an explicit none)")
    target = item["to"]
    if source not in weights:
        raise GovernanceError(f"{where}: delegation from unknown voter {source!r}")
    if topic not in TOPICS:
        raise GovernanceError(f"{where}: unknown topic {topic!r}; expected one of {', '.join(TOPICS)}")
    if target is not None and (type(target) is not str or target not in weights):
        raise GovernanceError(f"{where}: delegation from {source!r} to unknown voter {target!r}")
    return source, topic, target


def parse_delegations(doc: dict, weights: dict[str, int]) -> dict[str, dict[str, str | None]]:
    items = get_field(doc, "delegations", list) if "delegations" in doc else []
    delegations: dict[str, dict[str, str | None]] = {}
    for index, item in enumerate(items):
        source, topic, target = parse_delegation(item, index, weights)
        entries = delegations.setdefault(source, {})
        if topic in entries:
            raise GovernanceError(f"delegations[{index}]: a second delegation from {source!r} on {topic!r}")
        entries[topic] = target
    return delegations


def parse_choices(doc: dict, name: str, kind: type, weights: dict[str, int]) -> dict[str, Any]:
    """Ballots or votes, from known voters only."""
    choices = get_field(doc, name, dict)
    for voter, choice in choices.items():
        if voter not in weights:
            raise GovernanceError(f"{name}: {voter!r} is not a voter (not in weights)")
        if type(choice) is not kind:
            raise GovernanceError(f"{name}: the entry of {voter!r} must be a JSON {kind_name(kind)}")
    return choices


def parse_categories(doc: dict) -> list[str]:
    categories = get_field(doc, "categories", list)
    if not categories or any(type(c) is not str or not c for c in categories):
        raise GovernanceError("categories: expected a non-empty array of non-empty names")
    if len(set(categories)) != len(categories):
        raise GovernanceError("categories: names must be distinct")
    return categories


def run_allocation_case(doc: dict, weights: dict[str, int], delegations: dict) -> dict[str, Any]:
    categories = parse_categories(doc)
    rule = get_field(doc, "rule", str)
    if rule not in RULES:
        raise GovernanceError(f"unknown rule {rule!r}; expected one of {', '.join(RULES)}")
    ballots = parse_choices(doc, "ballots", list, weights)
    resolution = resolve_delegations(weights, delegations, ballots.keys(), "allocation")
    try:
        bps = allocate(rule, ballots, resolution.effective_weight, len(categories))
    except NoCountedBallot:
        raise GovernanceError("no ballot carries any weight: there is nothing to allocate") from None
    return {"allocation": dict(zip(categories, bps)), "effective_weight": resolution.effective_weight,
            "abstained_weight": resolution.abstained_weight, "counted_weight": resolution.counted_weight}


def run_params_case(doc: dict, weights: dict[str, int], delegations: dict) -> dict[str, Any]:
    votes = parse_choices(doc, "votes", str, weights)
    quorum_bp = get_field(doc, "quorum_bp", int)
    threshold_bp = get_field(doc, "threshold_bp", int)
    tally = tally_proposal(votes, weights, delegations, sum(weights.values()), quorum_bp, threshold_bp)
    return {"yes": tally.yes, "no": tally.no, "abstain": tally.abstain,
            "participation_bp": tally.participation_bp, "passed": tally.passed,
            "effective_weight": tally.effective_weight}


def run_case(doc: Any) -> dict[str, Any]:
    """Tally one offline case; raises GovernanceError with one line on bad input."""
    if type(doc) is not dict:
        raise GovernanceError("case: expected a JSON object")
    topic = doc.get("topic")
    if topic not in CASE_FIELDS:
        raise GovernanceError(f"case: topic must be \"allocation\" or \"params\", got {topic!r}")
    check_fields(doc, CASE_FIELDS[topic], "case")
    weights = parse_weights(doc)
    delegations = parse_delegations(doc, weights)
    if topic == "allocation":
        return run_allocation_case(doc, weights, delegations)
    return run_params_case(doc, weights, delegations)
