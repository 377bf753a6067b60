"""Errors of end-to-end runs."""


class E2EError(Exception):
    """An e2e scenario that cannot be run, or a run that could not start."""
