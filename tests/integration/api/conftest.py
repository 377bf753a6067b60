"""One live commune shared by the tests of this package (tests/support/livenet.py), stopped at its end.
Its nodes run with an operator API token (OPERATOR_TOKEN), so that the operator's view
can be read too (docs/privacy.md "Who sees what through the API")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.livenet import LiveNet

OPERATOR_TOKEN = "the-mairie-operator-token"


@pytest.fixture(scope="package")
def livenet(tmp_path_factory) -> Iterator[LiveNet]:
    with LiveNet(tmp_path_factory.mktemp("commune") / "net", api_token=OPERATOR_TOKEN) as net:
        yield net
