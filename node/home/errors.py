"""Errors of home directories and key files."""

from node.errors import OneLineError


class HomeError(OneLineError):
    """A home, genesis, config or key file that cannot be used as it is; the message says why."""
