"""node/api/status.py: the one parser of GET /status's chain id, used by the CLI and the meter agent."""

from __future__ import annotations

import pytest

from node.api.status import parse_status_chain_id


def test_a_hex_chain_id_of_32_bytes_is_read():
    assert parse_status_chain_id({"chain_id": "ab" * 32, "height": 3}) == bytes([0xAB]) * 32


@pytest.mark.parametrize("doc, reason", [
    ({}, "no hex chain_id"),
    ({"chain_id": "zz" * 32}, "no hex chain_id"),
    ({"chain_id": 7}, "no hex chain_id"),
    ([], "no hex chain_id"),
    (None, "no hex chain_id"),
    ({"chain_id": "ab" * 31}, "not 32 bytes"),
])
def test_invalid_status_is_refused_with_its_reason(doc, reason):
    with pytest.raises(ValueError, match=reason):
        parse_status_chain_id(doc)
