"""Errors that reach a person: each is printed as one line, never as a traceback.

Commands raise ``UserError``. Every other room of node/ raises its own family
(``NetSetupError``, ``StoreError``, ``HomeError``, ``LocalnetError``, ``ServiceError``,
``E2EError``), each a ``OneLineError``, which ``node.cli`` prints as one line.
"""

from __future__ import annotations


class OneLineError(Exception):
    """A failure a person can act on, whichever room raised it: ``node.cli`` prints its
    message as one line. Each room's own family derives from it, so the CLI needs to
    import none of them (importing the network alone would load py-libp2p for every
    command). ``exit_code`` is the process's exit status: 1, or for a few refusals an
    operator's scripts must tell apart, their own."""

    exit_code = 1


class UserError(OneLineError):
    """A command's failure a person must act on: a bad argument, a missing file."""


def find_only(group: BaseExceptionGroup, kinds: type[BaseException] | tuple[type[BaseException], ...]
              ) -> BaseException | None:
    """The one error of ``kinds`` that ``group`` holds, if it holds nothing else.

    trio nurseries wrap what their tasks raise in exception groups; a single setup
    error inside them is still that error, and must read as one line."""
    match, rest = group.split(kinds)
    while isinstance(match, BaseExceptionGroup) and rest is None and len(match.exceptions) == 1:
        match = match.exceptions[0]
    return match if rest is None and isinstance(match, kinds) else None
