"""Gossip validation verdicts (DESIGN §7, after the Ethereum consensus p2p spec).

- ACCEPT: valid and taken by the node; forward it to our mesh.
- REJECT(reason): the forwarder is penalised by peer scoring; not forwarded.
- IGNORE(reason): dropped quietly; not forwarded, nobody penalised.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass


class Outcome(enum.Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    IGNORE = "ignore"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str = ""


ACCEPT = Verdict(Outcome.ACCEPT)

# Reasons the network layer itself gives (handlers add their own, e.g. "bad_signature").
OVERSIZE = "oversize"
MALFORMED = "malformed"
EMPTY_BATCH = "empty_batch"


def reject(reason: str) -> Verdict:
    """DESIGN §7: bad signature, unknown signer, malformed, oversize."""
    return Verdict(Outcome.REJECT, reason)


def ignore(reason: str) -> Verdict:
    """DESIGN §7: duplicate, stale nonce or seq, too far in the future, mempool full."""
    return Verdict(Outcome.IGNORE, reason)


def compute_batch_verdict(verdicts: list[Verdict]) -> Verdict:
    """One verdict for a batch of txs: any REJECT rejects it (an honest relay only
    forwards what it accepted), else any ACCEPT accepts it, else it is ignored."""
    for v in verdicts:
        if v.outcome is Outcome.REJECT:
            return v
    for v in verdicts:
        if v.outcome is Outcome.ACCEPT:
            return ACCEPT
    return verdicts[0] if verdicts else reject(EMPTY_BATCH)


class VerdictCounts:
    """Counts of REJECT and IGNORE by reason, for voisinage_gossip_rejected_total{reason}."""

    def __init__(self) -> None:
        self.rejected: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.accepted = 0

    def process_verdict(self, verdict: Verdict) -> None:
        if verdict.outcome is Outcome.REJECT:
            self.rejected[verdict.reason] += 1
        elif verdict.outcome is Outcome.IGNORE:
            self.ignored[verdict.reason] += 1
        else:
            self.accepted += 1
