"""Test helpers for node/meter: shared captures and a TIC frame builder.

The node the meter agent talks to is ``tests.support.fake_node.NodeStub``.
"""

from __future__ import annotations

from pathlib import Path

# The repo sits beside ../shared: <repo>/tests/unit/meter/this_file.
TIC_DIR = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "tic"
CAPTURES = ("historic_base_1frame.bin", "historic_bbr_10frames.bin", "standard_base_1frame.bin")


def load_capture(name: str) -> bytes:
    return (TIC_DIR / name).read_bytes()


def split_frames(data: bytes) -> list[bytes]:
    """Cut a clean capture into its STX..ETX frames."""
    return [b"\x02" + part for part in data.split(b"\x02")[1:]]


def checksum(body: bytes) -> bytes:
    return bytes([(sum(body) & 0x3F) + 0x20])


def make_group(label: str, value: str, standard: bool = False, date: str | None = None,
               bad_checksum: bool = False) -> bytes:
    """One group with its checksum, as the meter sends it (Enedis NOI-CPT_02E / 54E)."""
    if standard:
        fields = [label] + ([date] if date is not None else []) + [value]
        body = "\t".join(fields).encode() + b"\t"
        cs = checksum(body)
        line = body + cs
    else:
        body = f"{label} {value}".encode()
        cs = checksum(body)
        line = body + b" " + cs
    if bad_checksum:
        line = line[:-1] + bytes([0x20 + ((line[-1] - 0x20 + 1) % 0x40)])
    return b"\n" + line + b"\r"


def make_frame(*groups: bytes) -> bytes:
    return b"\x02" + b"".join(groups) + b"\x03"


def historic_base_frame(meter: str = "031428571428", base: int = 1000, papp: int = 500) -> bytes:
    return make_frame(make_group("ADCO", meter), make_group("OPTARIF", "BASE"),
                      make_group("BASE", f"{base:09d}"), make_group("PAPP", f"{papp:05d}"))
