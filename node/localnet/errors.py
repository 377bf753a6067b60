"""Errors of local process networks."""

from node.errors import OneLineError


class LocalnetError(OneLineError):
    """A local network that cannot be started or run: ports taken, a node that exits, no root."""
