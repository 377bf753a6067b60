"""Waiting on a condition with a deadline: one sync and one async helper.

A wait is a safety net, not a timing assertion: it fails the test, naming what was
awaited and (when given) the tail of the logs that explain why, instead of hanging.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import trio

Logs = Callable[[], str]


def _no_logs() -> str:
    return ""


def describe_timeout(what: str, timeout: float, logs: Logs) -> str:
    """The failure message of both waits: what was awaited, for how long, then the logs."""
    tail = logs()
    return f"timed out after {timeout:g} s waiting for {what}" + (f"\n{tail}" if tail else "")


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, logs: Logs = _no_logs,
             poll_s: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy and return that; fail if never."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(describe_timeout(what, timeout, logs))
        time.sleep(poll_s)


async def wait_until(predicate: Callable[[], Any], *, what: str, timeout: float = 30.0, logs: Logs = _no_logs,
                     poll_s: float = 0.02) -> Any:
    """The trio twin of ``wait_for``: checkpoints between polls, so other tasks run."""
    with trio.move_on_after(timeout):
        while True:
            value = predicate()
            if value:
                return value
            await trio.sleep(poll_s)
    raise AssertionError(describe_timeout(what, timeout, logs))
