"""Errors of home directories and key files."""


class HomeError(Exception):
    """A home, genesis, config or key file that cannot be used as it is; the message says why."""
