"""MemoryKV keeps its prefix scans sorted across any sequence of write sets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tokens import MemoryKV
from tokens.kv import Overlay, encode_value

keys = st.binary(min_size=1, max_size=3)
write_sets = st.lists(st.dictionaries(keys, st.one_of(st.none(), st.binary(max_size=2)), max_size=8), max_size=6)


@given(write_sets, st.binary(max_size=2))
def test_memory_kv_scans_match_a_brute_force_model(batches, prefix):
    kv, model = MemoryKV(), {}
    for writes in batches:
        assert list(kv.iter_prefix(prefix)) == sorted((k, v) for k, v in model.items() if k.startswith(prefix))
        kv.apply(writes)
        for k, v in writes.items():
            if v is None:
                model.pop(k, None)
            else:
                model[k] = v
    assert kv.items() == sorted(model.items())
    assert list(kv.iter_prefix(prefix)) == sorted((k, v) for k, v in model.items() if k.startswith(prefix))


@given(write_sets)
def test_overlay_writes_replayed_on_the_base_give_the_overlays_view(batches):
    base = MemoryKV({b"a": encode_value(1), b"ab": encode_value(2)})
    ov = Overlay(base)
    for writes in batches:
        for k, v in writes.items():
            ov.put(k, None if v is None else v.hex())
    view = [(k, encode_value(v)) for k, v in ov.iter_prefix(b"")]
    base.apply(ov.writes())
    assert base.items() == view


def test_memory_kv_prefix_scan_is_sorted_and_apply_deletes():
    kv = MemoryKV({b"a/2": b"x", b"a/1": b"y", b"b/1": b"z"})
    assert list(kv.iter_prefix(b"a/")) == [(b"a/1", b"y"), (b"a/2", b"x")]
    kv.apply({b"a/1": None, b"a/0": b"w"})
    assert list(kv.iter_prefix(b"a/")) == [(b"a/0", b"w"), (b"a/2", b"x")]
    assert kv.get(b"a/1") is None


def test_overlay_merges_its_changes_into_scans_and_writes_only_real_changes():
    kv = MemoryKV({b"a/1": encode_value([1]), b"a/2": encode_value([2]), b"a/3": encode_value(3)})
    ov = Overlay(kv)
    ov.get(b"a/1")[0] = 10
    ov.mark(b"a/1")
    ov.delete(b"a/2")
    ov.put(b"a/0", [0])
    ov.put(b"a/3", 3)                       # same value: no write
    ov.stage(b"a/9", [9])                   # staged, never marked: no write
    assert [(k, v) for k, v in ov.iter_prefix(b"a/")] == [(b"a/0", [0]), (b"a/1", [10]), (b"a/3", 3)]
    assert ov.writes() == {b"a/0": encode_value([0]), b"a/1": encode_value([10]), b"a/2": None}
    assert kv.get(b"a/1") == encode_value([1])


def test_overlay_scan_returns_the_cached_record():
    kv = MemoryKV({b"a/1": encode_value([1])})
    ov = Overlay(kv)
    (_, rec), = ov.iter_prefix(b"a/")
    rec[0] = 5
    ov.mark(b"a/1")
    assert ov.get(b"a/1") == [5] and ov.writes() == {b"a/1": encode_value([5])}
