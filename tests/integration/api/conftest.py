"""One live commune shared by the tests of this package (tests/support/livenet.py), stopped at its end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.livenet import LiveNet


@pytest.fixture(scope="package")
def livenet(tmp_path_factory) -> Iterator[LiveNet]:
    with LiveNet(tmp_path_factory.mktemp("commune") / "net") as net:
        yield net
