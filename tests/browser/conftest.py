"""A live commune (or two, linked) and a headless Debian Chromium driven by Playwright.

Playwright's own browser download is not used: the tests launch /usr/bin/chromium
(``apt-get install chromium``; ``make install`` does it as root). When the browser
or the playwright package is missing the tests FAIL and say how to fix it: a
dashboard that was never looked at is not a passing dashboard.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.livecommunes import LiveCommunes
from tests.support.livenet import LiveNet

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def livenet(tmp_path_factory) -> Iterator[LiveNet]:
    with LiveNet(tmp_path_factory.mktemp("browser-commune") / "net") as net:
        yield net


@pytest.fixture(scope="module")
def communes(tmp_path_factory) -> Iterator[LiveCommunes]:
    with LiveCommunes(tmp_path_factory.mktemp("browser-communes") / "net") as net:
        yield net


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: run `make install` (pip install -e '.[test]')")
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install -y chromium` (or `make install` as root)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
