"""Parameter proposals: the liquid tally of yes / no / abstain votes (DESIGN §5).

A proposal passes iff participation × 10 000 >= quorum_bp × total weight and
yes × 10 000 > threshold_bp × (yes + no). Participation is the yes, no and
abstain weight that reached a direct voter; weight lost in a loop, or at someone
who did not vote, is not participation. Applying a passed change (in the next
block) is the ledger's job.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from governance.delegation import resolve_delegations
from governance.errors import GovernanceError
from governance.markets import TOTAL_BP
from wire.units import BasisPoints

V = TypeVar("V", bound=Hashable)

CHOICES = ("yes", "no", "abstain")
PARAMS_TOPIC = "params"


@dataclass(frozen=True)
class ProposalTally(Generic[V]):
    yes: int
    no: int
    abstain: int
    participation_bp: BasisPoints
    passed: bool
    effective_weight: dict[V, int]


def check_bp(name: str, value: BasisPoints) -> None:
    if type(value) is not int or not 0 <= value <= TOTAL_BP:
        raise GovernanceError(f"{name} must be an integer from 0 to {TOTAL_BP}, got {value!r}")


def is_quorum_met(participation: int, total_weight: int, quorum_bp: BasisPoints) -> bool:
    """DESIGN §5: participation × 10 000 >= quorum_bp × total weight."""
    return participation * TOTAL_BP >= quorum_bp * total_weight


def is_threshold_met(yes: int, no: int, threshold_bp: BasisPoints) -> bool:
    """DESIGN §5: yes × 10 000 > threshold_bp × (yes + no); nobody deciding fails."""
    return yes * TOTAL_BP > threshold_bp * (yes + no)


def compute_participation_bp(participation: int, total_weight: int) -> BasisPoints:
    """Participation in basis points of the total weight, rounded down."""
    return BasisPoints(participation * TOTAL_BP // total_weight if total_weight else 0)


def tally_proposal(votes: Mapping[V, str], weights: Mapping[V, int],
                   delegations: Mapping[V, Mapping[str, V | None]], total_weight: int,
                   quorum_bp: BasisPoints, threshold_bp: BasisPoints,
                   topic: str = PARAMS_TOPIC) -> ProposalTally[V]:
    """Tally one proposal: each direct voter's choice carries the weight it received."""
    check_bp("quorum_bp", quorum_bp)
    check_bp("threshold_bp", threshold_bp)
    for voter in sorted(votes):
        if votes[voter] not in CHOICES:
            raise GovernanceError(f"vote of {voter!r} is {votes[voter]!r}; expected yes, no or abstain")
    resolution = resolve_delegations(weights, delegations, votes.keys(), topic)
    sums = dict.fromkeys(CHOICES, 0)
    for voter, weight in resolution.effective_weight.items():
        sums[votes[voter]] += weight
    participation = resolution.counted_weight
    if type(total_weight) is not int or total_weight < participation:
        raise GovernanceError(f"total weight {total_weight!r} is below the participating weight {participation}")
    passed = (is_quorum_met(participation, total_weight, quorum_bp)
              and is_threshold_met(sums["yes"], sums["no"], threshold_bp))
    return ProposalTally(sums["yes"], sums["no"], sums["abstain"],
                         compute_participation_bp(participation, total_weight), passed,
                         resolution.effective_weight)
