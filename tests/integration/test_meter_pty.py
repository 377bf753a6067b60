"""TIC over a pseudo-terminal: a writer emits frames at the TIC line settings (7E1, 1200 or
9600 baud, set with termios), and the real pyserial reader parses them (DESIGN §10).

A pty carries bytes, not bits: Linux keeps a pty at CS8 without parity, so pyserial's 7E1
request is sometimes refused (EINVAL from glibc) and ``open_serial`` falls back to 8N1,
as it would for an adapter that cannot do 7E1. The rates and parity bits on the wire are
therefore not exercised here; the pyserial read path, chunking and parsing are.

The last test runs the real ``voisinage meter tic --device`` process against a real HTTP
node stub and checks the signed readings that arrive.
"""

from __future__ import annotations

import os
import termios
import threading
import time
import tty
from collections.abc import Callable

import pytest
import serial

from node.home.keyfile import save_key
from node.meter.reading import compute_reading, parse_capture
from node.meter.source import BAUD_RATES, SerialSource, detect_mode, open_serial
from node.meter.tic import Mode, TicParser
from tests.support.fake_node import NodeStub
from tests.support.nodes import run_cli
from tests.support.wait import wait_for
from tests.unit.meter.meter_helpers import historic_base_frame, load_capture, split_frames
from wire import Keypair, verify_message

pytestmark = pytest.mark.integration


def _set_tic_line(fd: int, baud: int) -> None:
    """Raw bytes, 7 data bits, even parity, 1 stop bit, at ``baud``: the TIC line settings."""
    tty.setraw(fd)
    iflag, oflag, cflag, lflag, _, _, cc = termios.tcgetattr(fd)
    cflag &= ~(termios.CSIZE | termios.PARODD | termios.CSTOPB)
    cflag |= termios.CS7 | termios.PARENB | termios.CREAD | termios.CLOCAL
    speed = {1200: termios.B1200, 9600: termios.B9600}[baud]
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])


class PtyMeter:
    """A pseudo-terminal whose master side plays the meter."""

    def __init__(self, mode: Mode) -> None:
        self.master, self.slave = os.openpty()
        _set_tic_line(self.master, BAUD_RATES[mode])
        self.path = os.ttyname(self.slave)
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def write(self, data: bytes, chunk: int = 16) -> None:
        """Write in small pieces, as a slow line delivers them."""
        for pos in range(0, len(data), chunk):
            if self.stop.is_set():
                return
            os.write(self.master, data[pos:pos + chunk])
            time.sleep(0.0005)

    def start_loop(self, frames: list[bytes], pause_s: float = 0.0) -> None:
        def loop() -> None:
            i = 0
            while not self.stop.is_set():
                self.write(frames[i % len(frames)])
                i += 1
                self.stop.wait(pause_s)

        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        os.close(self.master)
        os.close(self.slave)


def _read_frames(read: Callable[[int], bytes], count: int) -> tuple[list, TicParser]:
    """Parse what ``read`` gives until ``count`` frames are out (each read blocks a while)."""
    parser, frames = TicParser(), []

    def enough() -> bool:
        frames.extend(parser.feed(read(512)))
        return len(frames) >= count
    wait_for(enough, 30, f"{count} TIC frames over the pty", poll_s=0)
    return frames, parser


@pytest.mark.parametrize("name, mode, repeat", [
    ("historic_bbr_10frames.bin", Mode.HISTORIC, 1),
    ("standard_base_1frame.bin", Mode.STANDARD, 3),
])
def test_pyserial_reads_tic_frames_over_pty(name, mode, repeat):
    meter = PtyMeter(mode)
    data = load_capture(name) * repeat
    expected = parse_capture(data)
    port = open_serial(meter.path, mode)
    assert isinstance(port, serial.Serial) and port.baudrate == BAUD_RATES[mode]
    try:
        writer = threading.Thread(target=meter.write, args=(data,), daemon=True)
        writer.start()
        frames, parser = _read_frames(port.read, expected.frames)
        writer.join()
    finally:
        port.close()
        meter.close()
    assert len(frames) == expected.frames and all(f.mode is mode for f in frames)
    assert tuple(compute_reading(f) for f in frames) == expected.readings
    assert parser.stats.checksum == 0 and parser.stats.partial_frames == 0


@pytest.mark.parametrize("name, mode", [
    ("historic_bbr_10frames.bin", Mode.HISTORIC),
    ("standard_base_1frame.bin", Mode.STANDARD),
])
def test_auto_mode_detection_over_pty(name, mode):
    meter = PtyMeter(mode)
    meter.start_loop(split_frames(load_capture(name)), pause_s=0.05)
    try:
        found = detect_mode(meter.path)
        source = SerialSource(meter.path, found)
        try:
            frames, _ = _read_frames(source.read, 1)
        finally:
            source.close()
    finally:
        meter.close()
    assert found is mode and frames and frames[0].mode is mode


def test_meter_tic_cli_over_pty_submits_signed_readings(tmp_path):
    chain_id = bytes(range(100, 132))
    key = Keypair(b"\x09" * 32)
    save_key(tmp_path / "key.json", key)
    meter = PtyMeter(Mode.HISTORIC)
    written = [historic_base_frame(base=5_000_000 + 7 * i, papp=800) for i in range(400)]
    meter.start_loop(written, pause_s=0.25)
    try:
        with NodeStub(chain_id) as node:
            proc = run_cli("meter", "tic", "--device", meter.path, "--mode", "historic", "--node", node.url,
                           "--key", str(tmp_path / "key.json"), "--every", "0.5", "--max-submissions", "2",
                           timeout=120)
    finally:
        meter.close()
    assert proc.returncode == 0, proc.stderr
    assert len(node.accepted) == 2 and node.refused == []
    first, second = node.accepted
    assert all(verify_message(tx, chain_id) and tx.signer == key.public for tx in node.accepted)
    assert first.meter == "031428571428" and first.export_wh == 0
    indexes = {5_000_000 + 7 * i for i in range(400)}
    assert first.import_wh in indexes and second.import_wh in indexes
    assert second.import_wh > first.import_wh and second.seq > first.seq and second.t > first.t
    assert "accepted seq" in proc.stdout


def test_meter_tic_submits_once_per_settlement_interval_by_default(tmp_path):
    """Without --every the agent asks the node for the interval (here 10 s) and submits
    one reading per interval, a tenth of it before the interval's end (docs/cadence.md).
    The interval is long enough that a loaded machine waking the agent late (up to a
    second) or a frame arriving late still leaves the reading in the interval's last half."""
    chain_id = bytes(range(100, 132))
    key = Keypair(b"\x09" * 32)
    save_key(tmp_path / "key.json", key)
    meter = PtyMeter(Mode.HISTORIC)
    meter.start_loop([historic_base_frame(base=5_000_000 + 7 * i, papp=800) for i in range(400)], pause_s=0.25)
    try:
        with NodeStub(chain_id, interval_s=10) as node:
            proc = run_cli("meter", "tic", "--device", meter.path, "--mode", "historic", "--node", node.url,
                           "--key", str(tmp_path / "key.json"), "--max-submissions", "2", timeout=120)
    finally:
        meter.close()
    assert proc.returncode == 0, proc.stderr
    assert "once per settlement interval" in proc.stdout and "every 10s" in proc.stdout
    first, second = node.accepted
    # Each reading's t is the time of a frame read shortly before an interval's end (the
    # agent wakes 1 s before it), in two different intervals: not at a random time.
    assert all(tx.t % 10 >= 5 for tx in node.accepted), [tx.t for tx in node.accepted]
    assert second.t // 10 > first.t // 10
    assert second.t > first.t and second.import_wh > first.import_wh
