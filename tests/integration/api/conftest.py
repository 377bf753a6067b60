"""One live commune shared by the tests of this package (see livenet.py), stopped at its end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.api.livenet import LiveNet


@pytest.fixture(scope="package")
def livenet(tmp_path_factory) -> Iterator[LiveNet]:
    net = LiveNet(tmp_path_factory.mktemp("commune") / "net")
    try:
        yield net.start()
    finally:
        net.stop()
