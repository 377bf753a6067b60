"""Errors of local process networks."""


class LocalnetError(Exception):
    """A local network that cannot be started or run: ports taken, a node that exits, no root."""
