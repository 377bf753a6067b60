"""Errors of the running node and of its audit."""

from node.errors import OneLineError


class ServiceError(OneLineError):
    """The node cannot run as asked: an address it cannot serve, an unreadable double-sign record."""
