"""The privileged-read log of node/consent/store.py on a real LevelDB: paging, the
per-household index, and the oldest entries leaving beyond the cap."""

from __future__ import annotations

import pytest

from node.consent import store as S


def entry(i: int, household: bytes | None) -> dict:
    return {"t": 1000 + i, "who": "operator", "path": f"/p/{i}", "household": household.hex() if household else None}


def test_reads_are_listed_newest_first_per_household_and_paged(tmp_path):
    a, b = b"\xaa" * 32, b"\xbb" * 32
    with S.open_consent_store(tmp_path) as reads:
        for i in range(10):
            assert reads.append_read(entry(i, (a, b, None)[i % 3]), (a, b, None)[i % 3]) == i + 1
        assert [e["seq"] for e in reads.read_reads(None, None, 4)] == [10, 9, 8, 7]
        assert [e["seq"] for e in reads.read_reads(a, None, 100)] == [10, 7, 4, 1]
        assert [e["seq"] for e in reads.read_reads(a, 7, 100)] == [4, 1]
        assert [e["seq"] for e in reads.read_reads(b, None, 2)] == [8, 5]
        assert reads.read_reads(b"\xcc" * 32, None, 100) == []


def test_the_oldest_reads_and_their_index_leave_beyond_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "MAX_LOG_ENTRIES", 3)
    a = b"\xaa" * 32
    with S.open_consent_store(tmp_path) as reads:
        for i in range(5):
            reads.append_read(entry(i, a), a)
        assert [e["seq"] for e in reads.read_reads(None, None, 100)] == [5, 4, 3]
        assert [e["seq"] for e in reads.read_reads(a, None, 100)] == [5, 4, 3]
        assert sum(1 for _ in reads.db.iterator(prefix=S.READ_BY)) == 3


@pytest.mark.parametrize("limit", [1, 2])
def test_a_page_holds_at_most_limit_entries(tmp_path, limit):
    with S.open_consent_store(tmp_path) as reads:
        for i in range(3):
            reads.append_read(entry(i, None), None)
        assert len(reads.read_reads(None, None, limit)) == limit
