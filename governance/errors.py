"""The one exception family of governance/: every refusal carries a clear reason."""


class GovernanceError(ValueError):
    """Input that cannot be tallied: unknown voter, bad ballot, bad weight, bad rule."""


class NoCountedBallot(GovernanceError):
    """No ballot carries any weight, so there is no allocation to compute."""
