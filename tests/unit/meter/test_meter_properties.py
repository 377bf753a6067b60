"""Properties and fuzzing of the TIC parser: chunking never matters, no input makes it raise.

The fuzz tests run FUZZ_EXAMPLES examples each (default 1000; set VOISINAGE_FUZZ_EXAMPLES
for a longer run). Every example also checks that parsing in chunks gives exactly what
parsing in one piece gives, so the fuzzing checks behaviour, not only survival.
"""

from __future__ import annotations

import datetime as dt
import functools
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from node.meter.reading import Reading, encode_standard_frame, parse_capture
from node.meter.tic import MAX_GROUP_BYTES, TicParser
from tests.unit.meter.meter_helpers import CAPTURES, load_capture

FUZZ_EXAMPLES = int(os.environ.get("VOISINAGE_FUZZ_EXAMPLES", "1000"))
ALL = {name: load_capture(name) for name in CAPTURES}
MIXED = ALL["historic_bbr_10frames.bin"] + ALL["standard_base_1frame.bin"] + ALL["historic_base_1frame.bin"]

chunkings = st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=40)
# Bytes biased towards the protocol's control and separator characters.
tic_bytes = st.lists(st.one_of(st.sampled_from([0x02, 0x03, 0x04, 0x0A, 0x0D, 0x20, 0x09]),
                               st.integers(0x21, 0x5F), st.integers(0, 255)),
                     max_size=3000).map(bytes)


def _outcome(data: bytes, chunk_sizes: list[int] | None):
    summary = parse_capture(data, chunk_sizes)
    return summary.mode, summary.frames, summary.readings, summary.stats.as_dict()


def _check_sane(data: bytes, chunk_sizes: list[int]) -> None:
    """Parse in chunks: counters sane, frames well formed, and same as parsing in one piece."""
    parser = TicParser()
    pos, i, frames = 0, 0, []
    while pos < len(data):
        size = chunk_sizes[i % len(chunk_sizes)]
        frames.extend(parser.feed(data[pos:pos + size]))
        pos, i = pos + size, i + 1
    parser.finish()
    stats = parser.stats.as_dict()
    assert all(v >= 0 for v in stats.values())
    assert stats["frames"] == len(frames) <= data.count(b"\x03") + data.count(b"\x83")
    for frame in frames:
        assert frame.groups and all(0 < len(g.label) <= 16 for g in frame.groups)
        assert all(len(g.value) <= MAX_GROUP_BYTES for g in frame.groups)
    whole = TicParser()
    assert whole.feed(data) == frames
    whole.finish()
    assert whole.stats.as_dict() == stats


@given(name=st.sampled_from(sorted(ALL) + ["mixed"]), chunk_sizes=chunkings)
def test_any_chunking_of_a_capture_gives_the_same_readings(name, chunk_sizes):
    data = MIXED if name == "mixed" else ALL[name]
    whole = parse_capture(data)
    assert _outcome(data, chunk_sizes) == _outcome(data, None)
    assert len(whole.readings) == whole.frames and whole.stats.checksum == 0


@functools.cache
def _mixed_byte_by_byte():
    return _outcome(MIXED, [1])


@given(chunk_sizes=chunkings)
def test_byte_by_byte_and_chunked_agree_on_the_mixed_stream(chunk_sizes):
    assert _mixed_byte_by_byte() == _outcome(MIXED, chunk_sizes)


@settings(max_examples=FUZZ_EXAMPLES)
@given(data=tic_bytes, chunk_sizes=chunkings)
def test_fuzz_random_bytes_never_raise(data, chunk_sizes):
    _check_sane(data, chunk_sizes)


@st.composite
def mutated_captures(draw):
    data = bytearray(MIXED if draw(st.booleans()) else ALL[draw(st.sampled_from(sorted(ALL)))])
    for _ in range(draw(st.integers(1, 12))):
        op = draw(st.sampled_from(["flip", "set", "delete", "insert", "duplicate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0x02, 0x03, 0x04, 0x0A, 0x0D, 0x09, 0x20, 0x00, 0xFF]))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 40))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=40))
        elif op == "duplicate":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 300))]
    return bytes(data)


@settings(max_examples=FUZZ_EXAMPLES)
@given(data=mutated_captures(), chunk_sizes=chunkings)
def test_fuzz_mutated_captures_never_raise(data, chunk_sizes):
    _check_sane(data, chunk_sizes)


@given(data=mutated_captures())
def test_mutations_never_produce_more_readings_than_frames(data):
    summary = parse_capture(data)
    assert len(summary.readings) <= summary.frames
    for reading in summary.readings:
        assert len(reading.meter) == 12 and reading.import_wh >= 0 and reading.export_wh >= 0


readings = st.builds(
    Reading,
    meter=st.from_regex(r"[0-9]{12}", fullmatch=True),
    import_wh=st.integers(0, 10**12 - 1),
    export_wh=st.integers(0, 10**12 - 1),
    power_va=st.none() | st.integers(0, 99_999),
    time=st.none() | st.builds(
        lambda when, summer: when.replace(tzinfo=dt.timezone(dt.timedelta(hours=2 if summer else 1))).isoformat(),
        st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2099, 12, 31)).map(lambda d: d.replace(microsecond=0)),
        st.booleans()),
)


@given(reading=readings, chunk_sizes=chunkings)
def test_encoded_standard_frames_parse_back_to_the_same_reading(reading, chunk_sizes):
    summary = parse_capture(encode_standard_frame(reading) * 2, chunk_sizes)
    assert summary.readings == (reading, reading) and summary.stats.checksum == 0
