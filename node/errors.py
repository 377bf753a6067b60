"""Errors that reach a person: each is printed as one line, never as a traceback."""


class UserError(Exception):
    """A user-facing failure: bad argument, missing file, port in use, corrupt home."""
