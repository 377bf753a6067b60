"""node/meter/tic.py: the incremental TIC parser (DESIGN §10)."""

from __future__ import annotations

import re

import pytest

from tests.unit.meter.meter_helpers import CAPTURES, load_capture, make_frame, make_group, split_frames
from node.meter.tic import (
    MAX_GROUP_BYTES, MAX_GROUPS_PER_FRAME, Mode, TicParser, compute_checksum, parse_group,
)


def _parse_all(data: bytes) -> tuple[list, TicParser]:
    parser = TicParser()
    frames = parser.feed(data)
    parser.finish()
    return frames, parser


@pytest.mark.parametrize("name", CAPTURES)
def test_every_capture_parses_with_no_error(name):
    data = load_capture(name)
    frames, parser = _parse_all(data)
    stats = parser.stats
    assert stats.frames == len(frames) == data.count(b"\x02") == data.count(b"\x03")
    # Every LF..CR line of the capture is a valid group of its frame.
    assert stats.groups == data.count(b"\n") == sum(len(f.groups) for f in frames)
    dropped = (stats.checksum, stats.malformed_groups, stats.partial_frames, stats.interrupted_frames,
               stats.garbage_bytes, stats.empty_frames, stats.mixed_mode_groups)
    assert dropped == (0, 0, 0, 0, 0, 0, 0)
    assert all(f.dropped == () for f in frames)


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_groups_match_the_raw_lines(name):
    """Independent check: split the file by hand and compare labels and values."""
    data = load_capture(name)
    frames, _ = _parse_all(data)
    sep = "\t" if name.startswith("standard") else " "
    for raw, frame in zip(split_frames(data), frames, strict=True):
        lines = re.findall(rb"\n([^\r]*)\r", raw)
        expected = []
        for line in lines:
            fields = line.decode()[:-2].split(sep, 1 if sep == " " else 2)
            expected.append((fields[0], fields[-1]))
        assert [(g.label, g.value) for g in frame.groups] == expected


def test_modes_are_detected_from_the_separator():
    assert _parse_all(load_capture("historic_base_1frame.bin"))[0][0].mode is Mode.HISTORIC
    frames, parser = _parse_all(load_capture("standard_base_1frame.bin"))
    assert frames[0].mode is Mode.STANDARD and parser.mode is Mode.STANDARD


def test_standard_dated_groups_keep_date_and_value():
    frame = _parse_all(load_capture("standard_base_1frame.bin"))[0][0]
    assert frame.get("DATE").date == "H240210121355" and frame.get("DATE").value == ""
    smax = frame.get("SMAXSN")
    assert (smax.date, smax.value) == ("H240210110331", "00986")
    assert frame.get("EAST").date is None and frame.get("EAST").value == "003519702"


def test_standard_values_may_contain_spaces():
    frame = _parse_all(load_capture("standard_base_1frame.bin"))[0][0]
    assert frame.get("MSG1").value == "PAS DE          MESSAGE         "


def test_checksum_rule_of_each_mode():
    # Historic: label SP value; the separator before the checksum is excluded.
    assert compute_checksum(b"BASE 123456789") == ord("8")
    # Standard: the last HT is included.
    assert compute_checksum(b"EAST\t003519702\t") == ord("*")


def test_historic_checksum_may_be_a_space():
    body = next(f"L{i} 1".encode() for i in range(10_000) if compute_checksum(f"L{i} 1".encode()) == 0x20)
    result = parse_group(body + b"  ")
    assert result.error is None and result.group.value == "1"


def test_invalid_checksum_drops_the_group_and_counts_it():
    data = make_frame(make_group("ADCO", "031428571428"), make_group("PAPP", "00500", bad_checksum=True))
    frames, parser = _parse_all(data)
    assert [g.label for g in frames[0].groups] == ["ADCO"]
    assert frames[0].dropped == ("PAPP",)
    assert parser.stats.checksum == 1


def test_invalid_group_structure_is_counted_as_malformed():
    data = make_frame(make_group("ADCO", "031428571428"), b"\nNOSEPARATOR\r", b"\nX\r",
                      b"\nA\tB\tC\tD\t" + b"!" + b"\r")
    frames, parser = _parse_all(data)
    assert len(frames[0].groups) == 1
    assert parser.stats.malformed_groups == 3


def test_garbage_then_stx_resynchronises():
    garbage = bytes(range(5, 256)) + b"\n\r\x03junk"
    data = garbage + load_capture("historic_base_1frame.bin")
    frames, parser = _parse_all(data)
    assert len(frames) == 1 and frames[0].get("BASE").value == "123456789"
    assert parser.stats.garbage_bytes > 0
    assert parser.stats.partial_frames == 1    # the ETX in the garbage ended a frame we never saw


def test_stx_inside_a_frame_restarts_it():
    whole = load_capture("historic_base_1frame.bin")
    frames, parser = _parse_all(whole[:40] + whole)
    assert len(frames) == 1 and parser.stats.partial_frames == 1
    assert frames[0].get("ADCO").value == "012345678910"


def test_eot_interrupts_a_frame():
    whole = load_capture("historic_bbr_10frames.bin")
    first, second = split_frames(whole)[:2]
    frames, parser = _parse_all(first[:100] + b"\x04" + second)
    assert len(frames) == 1 and parser.stats.interrupted_frames == 1
    assert frames[0].get("BBRHCJB").value == "018328704"   # the second frame, whole


def test_eot_outside_a_frame_is_garbage():
    frames, parser = _parse_all(b"\x04" + load_capture("historic_base_1frame.bin"))
    assert len(frames) == 1
    assert parser.stats.interrupted_frames == 0 and parser.stats.garbage_bytes == 1


def test_end_of_input_inside_a_frame_is_a_partial_frame():
    whole = load_capture("standard_base_1frame.bin")
    frames, parser = _parse_all(whole[:-30])
    assert frames == [] and parser.stats.partial_frames == 1


def test_mixed_modes_in_one_stream():
    historic = load_capture("historic_bbr_10frames.bin")
    standard = load_capture("standard_base_1frame.bin")
    frames, parser = _parse_all(historic + standard + split_frames(historic)[0])
    assert [f.mode for f in frames] == [Mode.HISTORIC] * 10 + [Mode.STANDARD] + [Mode.HISTORIC]
    assert parser.mode is Mode.HISTORIC


def test_invalid_group_of_the_other_mode_inside_a_frame_is_dropped():
    data = make_frame(make_group("ADCO", "031428571428"), make_group("EAST", "000000100", standard=True))
    frames, parser = _parse_all(data)
    assert frames[0].mode is Mode.HISTORIC and [g.label for g in frames[0].groups] == ["ADCO"]
    assert parser.stats.mixed_mode_groups == 1 and frames[0].dropped == ("EAST",)


def test_invalid_overlong_group_is_dropped_without_growing_the_buffer():
    data = make_frame(b"\nX " + b"9" * (MAX_GROUP_BYTES * 10) + b" A\r", make_group("PAPP", "00010"))
    frames, parser = _parse_all(data)
    assert [g.label for g in frames[0].groups] == ["PAPP"]
    assert parser.stats.malformed_groups == 1


def test_invalid_frame_with_too_many_groups_is_dropped():
    groups = [make_group(f"G{i}", "1") for i in range(MAX_GROUPS_PER_FRAME + 5)]
    frames, parser = _parse_all(make_frame(*groups) + load_capture("historic_base_1frame.bin"))
    assert len(frames) == 1 and frames[0].get("BASE") is not None
    assert parser.stats.oversize_frames == 1 and parser.stats.partial_frames == 1


def test_empty_frame_is_counted_not_returned():
    frames, parser = _parse_all(b"\x02\x03")
    assert frames == [] and parser.stats.empty_frames == 1


def test_parity_bit_is_stripped_by_default():
    data = load_capture("historic_base_1frame.bin")
    with_parity = bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in data)   # even parity in bit 7
    frames, parser = _parse_all(with_parity)
    assert len(frames) == 1 and parser.stats.checksum == 0


def test_invalid_parity_bits_without_stripping_break_frames():
    data = bytes(b | 0x80 for b in load_capture("historic_base_1frame.bin"))
    parser = TicParser(strip_parity=False)
    assert parser.feed(data) == []


def test_frames_come_out_of_the_chunk_that_completes_them():
    data = load_capture("historic_bbr_10frames.bin")
    parser = TicParser()
    first_end = data.index(b"\x03")
    assert parser.feed(data[:first_end]) == []
    assert len(parser.feed(data[first_end:first_end + 1])) == 1
