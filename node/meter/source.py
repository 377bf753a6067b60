"""Byte sources for the TIC reader: a serial port through pyserial, or a file that is followed.

DESIGN §10 line settings: historic 1200 baud, standard 9600 baud, both 7 data bits, even
parity, 1 stop bit (7E1). ``auto`` finds the mode by reading at each rate and keeping the
one at which frames parse: at the wrong rate every checksum fails.
"""

from __future__ import annotations

import termios
import time
from pathlib import Path
from typing import Callable, Protocol

import serial

from node.meter.tic import Mode, TicParser

BAUD_RATES = {Mode.HISTORIC: 1200, Mode.STANDARD: 9600}
READ_TIMEOUT_S = 0.2
# Time to wait for a frame at a given rate: about two frames' worth of bytes.
PROBE_WINDOW_S = {Mode.STANDARD: 4.0, Mode.HISTORIC: 6.0}


class SourceError(Exception):
    """The source cannot be read now (device missing or unplugged, file unreadable)."""


class ByteSource(Protocol):
    idle_sleep_s: float

    def read(self, size: int) -> bytes:
        """Return what is available (maybe nothing), waiting at most a short time."""

    def close(self) -> None:
        """Release the device or file."""


def open_serial(device: str, mode: Mode) -> serial.Serial:
    """Open ``device`` with the TIC line settings of ``mode`` (7E1, 1200 or 9600 baud).

    Some adapters and every pseudo-terminal refuse 7E1 (glibc reports EINVAL when the
    driver silently keeps CS8). Reading such a port as 8N1 gives the same bits, with the
    parity bit on top, which ``TicParser`` clears (``strip_parity``); checksums still hold.
    """
    common = {"baudrate": BAUD_RATES[mode], "stopbits": serial.STOPBITS_ONE, "timeout": READ_TIMEOUT_S}
    try:
        return serial.Serial(device, bytesize=serial.SEVENBITS, parity=serial.PARITY_EVEN, **common)
    except termios.error:
        pass
    except (serial.SerialException, OSError, ValueError) as exc:
        raise SourceError(f"cannot open {device}: {exc}") from None
    try:
        return serial.Serial(device, bytesize=serial.EIGHTBITS, parity=serial.PARITY_NONE, **common)
    except (serial.SerialException, OSError, ValueError, termios.error) as exc:
        raise SourceError(f"cannot open {device}: {exc}") from None


def probe_mode(port: serial.Serial, window_s: float) -> Mode | None:
    """Read ``port`` for up to ``window_s`` seconds; the mode of the first frame that parses."""
    parser = TicParser()
    deadline = time.monotonic() + window_s
    while time.monotonic() < deadline:
        try:
            chunk = port.read(256)
        except (serial.SerialException, OSError) as exc:
            raise SourceError(f"cannot read {port.port}: {exc}") from None
        for frame in parser.feed(chunk):
            return frame.mode
    return None


def detect_mode(device: str, rounds: int = 3, report: Callable[[str], None] = lambda _: None) -> Mode:
    """``auto``: try 9600 then 1200 baud; a frame must parse at its own mode's rate."""
    for _ in range(rounds):
        for mode in (Mode.STANDARD, Mode.HISTORIC):
            report(f"probing {device} at {BAUD_RATES[mode]} baud 7E1")
            port = open_serial(device, mode)
            try:
                found = probe_mode(port, PROBE_WINDOW_S[mode])
                if found is not None and found is not mode:
                    # A virtual port ignores the rate: confirm at the rate of what parsed.
                    port.close()
                    port = open_serial(device, found)
                    found = probe_mode(port, PROBE_WINDOW_S[found])
            finally:
                port.close()
            if found is not None:
                report(f"{device}: {found.value} mode, {BAUD_RATES[found]} baud")
                return found
    raise SourceError(f"no TIC frame parsed on {device} at 1200 or 9600 baud 7E1")


class SerialSource:
    """A TIC serial port; reopened after an unplug. ``read`` waits at most READ_TIMEOUT_S."""

    idle_sleep_s = 0.0

    def __init__(self, device: str, mode: Mode) -> None:
        self.device = device
        self.mode = mode
        self._port: serial.Serial | None = open_serial(device, mode)

    def read(self, size: int) -> bytes:
        if self._port is None:
            self._port = open_serial(self.device, self.mode)
        try:
            return self._port.read(size)
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise SourceError(f"cannot read {self.device}: {exc}") from None

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None


class FileSource:
    """A capture file (or a FIFO), read to its end and then followed like ``tail -f``."""

    idle_sleep_s = 0.2

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._fh = open(self.path, "rb")
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}") from None

    def read(self, size: int) -> bytes:
        try:
            return self._fh.read(size)
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        self._fh.close()
