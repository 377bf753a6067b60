"""Page helpers shared by the browser tests: a fresh page that fails on any script
error, waits polled from Python with a deadline, data- attributes, screenshots.

The dashboard polls its node every few seconds, so every expectation is a wait with a
deadline, never a fixed sleep.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

WAIT_MS = 30_000
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@contextmanager
def open_page(browser, url: str, locale: str = "fr-FR", viewport: dict | None = None, timezone: str | None = None):
    """A fresh browser context (own language, no stored choice; ``timezone``: the one the
    page's times are shown in, else the machine's); fails on any script error."""
    context = browser.new_context(locale=locale, viewport=viewport or DESKTOP,
                                  **({"timezone_id": timezone} if timezone else {}))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("body[data-height]", timeout=WAIT_MS)      # the first poll landed
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"script errors on {url}: {errors}"


def wait_page(page, predicate, what: str, timeout_ms: int = WAIT_MS):
    """Poll ``predicate(page)`` from Python (the page's CSP forbids the eval that
    wait_for_function needs); fail with ``what`` if it never holds."""
    for _ in range(timeout_ms // 250):
        value = predicate(page)
        if value:
            return value
        page.wait_for_timeout(250)
    raise AssertionError(f"timed out waiting for {what}")


def attr(page, selector: str, name: str) -> str | None:
    loc = page.locator(selector)
    return loc.first.get_attribute(name) if loc.count() else None


def shot(page, tmp_path: Path, name: str, selector: str | None = None) -> Path:
    """The whole page, or only the element ``selector``, as ``name``.png."""
    path = tmp_path / f"{name}.png"
    if selector is None:
        page.screenshot(path=str(path), full_page=True)
    else:
        page.locator(selector).screenshot(path=str(path))
    print(f"\nscreenshot: {path}")
    return path
