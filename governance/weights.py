"""Vote weights: one per household, or by contribution (DESIGN §5, ``vote_weight``)."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping
from types import MappingProxyType
from typing import TypeVar

from governance.errors import GovernanceError
from wire.units import Minutes, Wh

V = TypeVar("V", bound=Hashable)

WEIGHT_KINDS = ("household", "contribution")
MINUTES_PER_HOUR = 60
_EMPTY: Mapping = MappingProxyType({})


def check_amounts(name: str, amounts: Mapping[V, int], households: Collection[V]) -> None:
    """Contribution figures are non-negative integers, for known households only."""
    for voter, amount in amounts.items():
        if voter not in households:
            raise GovernanceError(f"{name} given for unknown household {voter!r}")
        if type(amount) is not int or amount < 0:
            raise GovernanceError(f"{name} of {voter!r} must be an integer >= 0, got {amount!r}")


def compute_contribution_weight(levy_wh: Wh, service_minutes: Minutes, hour_wh: Wh) -> int:
    """DESIGN §5: levy paid plus public service valued at official rates, floor 1.

    Public service minutes are valued at ``hour_wh`` Wh per hour (DESIGN §3
    ``rates``), rounded down to whole Wh.
    """
    return max(1, levy_wh + service_minutes * hour_wh // MINUTES_PER_HOUR)


def compute_weights(kind: str, households: Collection[V], levy_paid: Mapping[V, Wh] = _EMPTY,
                    public_service_minutes: Mapping[V, Minutes] = _EMPTY,
                    hour_wh: Wh = Wh(100_000)) -> dict[V, int]:
    """Each household's vote weight; the caller supplies trailing-365-day figures.

    ``household``: 1 each. ``contribution``: levy paid (Wh) plus public service
    minutes valued at ``hour_wh`` per hour, with a floor of 1, so that "un vote peut
    valoir 0,35 vote" relative to another household.
    """
    if kind not in WEIGHT_KINDS:
        raise GovernanceError(f"unknown vote weight {kind!r}; expected one of {', '.join(WEIGHT_KINDS)}")
    voters = sorted(households)
    if kind == "household":
        return {voter: 1 for voter in voters}
    if type(hour_wh) is not int or hour_wh < 0:
        raise GovernanceError(f"hour_wh must be an integer >= 0, got {hour_wh!r}")
    known = frozenset(voters)
    check_amounts("levy paid", levy_paid, known)
    check_amounts("public service minutes", public_service_minutes, known)
    return {voter: compute_contribution_weight(levy_paid.get(voter, 0), public_service_minutes.get(voter, 0),
                                               hour_wh)
            for voter in voters}
