"""The exception family of the consensus package.

``InvalidBlock`` and ``InvalidVote`` say whose fault it was: the remote peer that
sent the block, commit, vote or evidence. Each carries a one-line ``reason``.
"""

from __future__ import annotations


class ConsensusError(ValueError):
    """Base of every consensus rejection; ``reason`` is one clear line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidBlock(ConsensusError):
    """A block, commit or chain segment that breaks a rule of DESIGN §6."""


class InvalidVote(ConsensusError):
    """A vote or evidence that is malformed, wrongly signed or from a non-validator."""
