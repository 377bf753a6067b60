"""Errors of the running node and of its audit."""


class ServiceError(Exception):
    """The node cannot run as asked: an address it cannot serve, an unreadable double-sign record."""
