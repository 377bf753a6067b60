"""The ``voisinage`` command: a thin adapter over library functions (DESIGN §9).

Every failure a person can cause is printed as one line on stderr with a non-zero
exit, never as a traceback. Sub-commands live in ``node/commands/``.
"""

from __future__ import annotations

import sys

import typer

from node.commands import register_all
from node.errors import OneLineError, find_only

app = typer.Typer(
    name="voisinage",
    help="Voisinage: peer-to-peer ledger for a commune's energy community.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
register_all(app)

# What a person can act on, whichever room raised it: printed as one line, exit 1 (or its own code).
ONE_LINE_ERRORS = OneLineError


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every expected failure into one line."""
    try:
        rv = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:  # usage errors (exit 2) and other CLI-library errors
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare group: its help is the answer
            print(exc.format_message(), file=sys.stderr)
            return 2
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except ONE_LINE_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BaseExceptionGroup as group:     # raised by a task of a trio nursery
        single = find_only(group, ONE_LINE_ERRORS)
        if single is None:
            raise
        print(f"error: {single}", file=sys.stderr)
        return single.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    # Without standalone mode, the library returns a requested exit code instead of exiting.
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
