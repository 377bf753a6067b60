"""Errors of end-to-end runs."""

from node.errors import OneLineError


class E2EError(OneLineError):
    """An e2e scenario that cannot be run, or a run that could not start."""
