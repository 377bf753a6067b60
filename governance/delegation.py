"""Liquid delegation: whose ballot does each voter's weight reach (DESIGN §5).

A voter's weight flows along delegations to the first voter with a direct ballot
on the topic. Resolution is iterative and memoised: every voter is walked once,
so a chain 10 000 long costs the same as 10 000 chains of length one, and no
recursion limit applies.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from governance.errors import GovernanceError

V = TypeVar("V", bound=Hashable)

DEFAULT_TOPIC = "*"
# Markers of the resolution walk: not reached yet, and on the walk in progress.
_UNSEEN = object()
_WALKING = object()
TOPICS = ("allocation", "params", DEFAULT_TOPIC)


@dataclass(frozen=True)
class Resolution(Generic[V]):
    """Where the weight went: to direct voters (own weight included) or to abstention."""

    effective_weight: dict[V, int]
    abstained_weight: int
    counted_weight: int


def get_delegate(delegations: Mapping[V, Mapping[str, V | None]], voter: V, topic: str) -> V | None:
    """The voter ``voter`` delegates ``topic`` to, or None."""
    entries = delegations.get(voter)
    if not entries:
        return None
    # DESIGN §5: the most specific delegation wins; an explicit none on the topic
    # (stored as None) blocks "*" for that topic.
    if topic in entries:
        return entries[topic]
    return entries.get(DEFAULT_TOPIC)


def check_weights(weights: Mapping[V, int]) -> None:
    """Weights are non-negative integers (DESIGN §1: integers only, no floats)."""
    for voter, weight in weights.items():
        if type(weight) is not int or weight < 0:
            raise GovernanceError(f"weight of voter {voter!r} must be an integer >= 0, got {weight!r}")


def check_delegations(weights: Mapping[V, int], delegations: Mapping[V, Mapping[str, V | None]]) -> None:
    """Delegations go from and to known voters: the ledger only lets a household
    delegate to a registered household, and the offline tally refuses anything else."""
    for source, entries in delegations.items():
        if source not in weights:
            raise GovernanceError(f"delegation from unknown voter {source!r}")
        for topic, target in entries.items():
            if type(topic) is not str:
                raise GovernanceError(f"delegation topic of {source!r} must be text, got {topic!r}")
            if target is not None and target not in weights:
                raise GovernanceError(f"delegation from {source!r} on {topic!r} to unknown voter {target!r}")


def compute_terminals(delegations: Mapping[V, Mapping[str, V | None]], voters: list[V],
                      voted: frozenset[V], topic: str) -> dict[V, object]:
    """For each voter, the direct voter its weight reaches, or None (abstention).

    DESIGN §5: a direct ballot overrides any delegation; a chain that loops, or ends
    at someone who did not vote, abstains. Each voter joins exactly one walk and is
    memoised when it ends, so the whole resolution is linear.
    """
    terminal: dict[V, object] = {voter: voter for voter in voted}
    for start in voters:
        if start in terminal:
            continue
        path: list[V] = []
        node: V | None = start
        while True:
            result = terminal.get(node, _UNSEEN)
            if result is _WALKING:       # back on this walk's own path: a loop abstains
                result = None
                break
            if result is not _UNSEEN:    # a direct voter, or a voter already resolved
                break
            terminal[node] = _WALKING
            path.append(node)
            node = get_delegate(delegations, node, topic)
            if node is None:             # ends at a non-voter, or an explicit none
                result = None
                break
        for member in path:
            terminal[member] = result
    return terminal


def resolve_delegations(weights: Mapping[V, int], delegations: Mapping[V, Mapping[str, V | None]],
                        voted: Collection[V], topic: str) -> Resolution[V]:
    """Resolve every voter's weight on ``topic`` (DESIGN §5, liquid democracy).

    ``weights`` holds every voter; ``delegations`` maps a voter to {topic: target or
    None}; ``voted`` are the voters with a direct ballot or vote on ``topic``.
    """
    check_weights(weights)
    check_delegations(weights, delegations)
    direct = frozenset(voted)
    unknown = sorted(repr(v) for v in direct if v not in weights)
    if unknown:
        raise GovernanceError(f"ballot or vote from unknown voter {unknown[0]}")
    voters = sorted(weights)
    terminal = compute_terminals(delegations, voters, direct, topic)
    effective = {voter: 0 for voter in sorted(direct)}
    abstained = 0
    for voter in voters:
        target = terminal[voter]
        if target is None:
            abstained += weights[voter]
        else:
            effective[target] += weights[voter]
    return Resolution(effective, abstained, sum(effective.values()))
