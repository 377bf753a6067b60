"""Liquid democracy: delegation resolution, weights, allocation rules, proposal tallies (DESIGN §5).

Pure: imports only wire; must not import node, tokens, trio,
libp2p, plyvel, HTTP, time, random, os or read any clock: everything is an argument.
"""

from governance.allocation import RULES, allocate, compute_shares
from governance.delegation import DEFAULT_TOPIC, TOPICS, Resolution, get_delegate, resolve_delegations
from governance.errors import GovernanceError, NoCountedBallot
from governance.markets import TOTAL_BP, compute_independent_markets
from governance.offline import run_case
from governance.proposals import CHOICES, ProposalTally, tally_proposal
from governance.rounding import compute_largest_remainder
from governance.weights import WEIGHT_KINDS, compute_weights

__all__ = [
    "RULES", "allocate", "compute_largest_remainder", "compute_shares",
    "DEFAULT_TOPIC", "Resolution", "get_delegate", "resolve_delegations",
    "GovernanceError", "NoCountedBallot",
    "TOTAL_BP", "compute_independent_markets",
    "run_case",
    "CHOICES", "ProposalTally", "tally_proposal",
    "WEIGHT_KINDS", "compute_weights",
    "TOPICS",
]
