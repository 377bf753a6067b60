"""Key layout of the LevelDB store (DESIGN §8 "Layout")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.store import layout as L

heights = st.integers(min_value=0, max_value=L.MAX_HEIGHT)


@given(heights)
def test_height_round_trips(height):
    assert L.decode_height(L.encode_height(height)) == height


@given(heights, heights)
def test_block_keys_sort_in_height_order(a, b):
    # A prefix scan over b/ must walk blocks in height order.
    assert (L.key_block(a) < L.key_block(b)) == (a < b)


def test_namespaces_do_not_overlap():
    prefixes = [L.STATE, L.BLOCK, L.COMMIT, L.BLOCK_ID, L.HEIGHT_OF, L.EXTRA, b"m/"]
    assert len(set(prefixes)) == len(prefixes)
    assert all(len(p) == 2 and p.endswith(b"/") for p in prefixes)


def test_invalid_stored_height_length():
    with pytest.raises(ValueError, match="8 bytes"):
        L.decode_height(b"\x00" * 7)
