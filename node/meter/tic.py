"""Incremental parser of Linky tele-information (TIC), historic and standard modes (DESIGN §10).

Sans-I/O in the style of h11: ``TicParser.feed(chunk)`` takes bytes cut anywhere and returns
the frames completed by that chunk; nothing here reads a port or a clock.

Line format (Enedis-NOI-CPT_02E historic, Enedis-NOI-CPT_54E standard):
- a frame is ``STX group... ETX``; ``EOT`` interrupts the frame being sent;
- a group is ``LF label SEP [date SEP] value SEP checksum CR``; SEP is SP in historic mode
  and HT in standard mode, which is how the mode is detected;
- checksum = ``(sum & 0x3F) + 0x20`` over label..value; historic mode excludes the separator
  before the checksum, standard mode includes it; only standard mode has dated groups.

The parser never raises on any byte input: every defect is dropped and counted in
``TicParser.stats``. Every buffer has an explicit limit.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, fields

STX, ETX, EOT, LF, CR, SP, HT = 0x02, 0x03, 0x04, 0x0A, 0x0D, 0x20, 0x09

# Buffer limits. The longest standard group (PJOURF+1) is about 110 bytes and a
# three-phase standard frame has fewer than 80 groups.
MAX_GROUP_BYTES = 256
MAX_GROUPS_PER_FRAME = 128
MAX_LABEL_CHARS = 16

# A label is printable ASCII without separators (Enedis labels: A-Z, 0-9, '+', '-').
_LABEL_RE = re.compile(r"[!-~]{1,%d}" % MAX_LABEL_CHARS)


class Mode(str, enum.Enum):
    HISTORIC = "historic"
    STANDARD = "standard"


@dataclass(frozen=True)
class Group:
    label: str
    value: str
    date: str | None = None   # standard mode dated groups only


@dataclass(frozen=True)
class Frame:
    """A complete frame (STX..ETX) with its valid groups, in order.

    ``dropped`` holds a best-effort label for every group of the frame that was dropped
    (bad checksum, malformed, other mode), so that a consumer can refuse a frame whose
    energy group was lost.
    """

    mode: Mode
    groups: tuple[Group, ...]
    dropped: tuple[str, ...] = ()

    def get(self, label: str) -> Group | None:
        for group in self.groups:
            if group.label == label:
                return group
        return None


@dataclass
class TicStats:
    """Counters of what the parser saw; every defect lands in exactly one counter."""

    frames: int = 0               # complete frames returned
    groups: int = 0               # valid groups returned
    checksum: int = 0             # groups dropped: bad checksum
    malformed_groups: int = 0     # groups dropped: bad structure, bad label, or too long
    mixed_mode_groups: int = 0    # groups dropped: valid, but of the other mode than their frame
    partial_frames: int = 0       # frames never completed: restarted by STX, cut by the end of
                                  # input, seen without their start, or over a buffer limit
    interrupted_frames: int = 0   # frames interrupted by EOT
    oversize_frames: int = 0      # of partial_frames: frames over MAX_GROUPS_PER_FRAME
    empty_frames: int = 0         # STX..ETX with no valid group
    garbage_bytes: int = 0        # bytes outside any frame, or stray bytes between groups

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class _State(enum.Enum):
    IDLE = "idle"       # waiting for STX
    FRAME = "frame"     # inside a frame, between groups: expecting LF or ETX
    GROUP = "group"     # inside a group: collecting until CR
    SKIP = "skip"       # discarding an oversize frame until its end


@dataclass(frozen=True)
class _GroupResult:
    group: Group | None
    mode: Mode | None
    error: str | None       # "checksum" or "malformed"
    label_guess: str


def compute_checksum(body: bytes) -> int:
    """Enedis TIC checksum: (sum of the bytes & 0x3F) + 0x20."""
    return (sum(body) & 0x3F) + 0x20


def _guess_label(raw: bytes) -> str:
    cut = len(raw)
    for sep in (SP, HT):
        pos = raw.find(bytes([sep]))
        if pos != -1:
            cut = min(cut, pos)
    return raw[:cut][:MAX_LABEL_CHARS].decode("latin-1")


def _is_label(text: str) -> bool:
    return _LABEL_RE.fullmatch(text) is not None


def parse_group(raw: bytes) -> _GroupResult:
    """Parse the bytes between LF and CR; the separator (HT or SP) chooses the mode."""
    guess = _guess_label(raw)
    if len(raw) < 4:
        return _GroupResult(None, None, "malformed", guess)
    if HT in raw:
        return _parse_standard(raw, guess)
    return _parse_historic(raw, guess)


def _parse_historic(raw: bytes, guess: str) -> _GroupResult:
    # Enedis-NOI-CPT_02E: label SP value SP checksum; the checksum excludes the last SP.
    body = raw[:-2]
    if raw[-2] != SP or SP not in body:
        return _GroupResult(None, Mode.HISTORIC, "malformed", guess)
    if raw[-1] != compute_checksum(body):
        return _GroupResult(None, Mode.HISTORIC, "checksum", guess)
    label, value = body.decode("latin-1").split(" ", 1)
    if not _is_label(label):
        return _GroupResult(None, Mode.HISTORIC, "malformed", guess)
    return _GroupResult(Group(label, value), Mode.HISTORIC, None, label)


def _parse_standard(raw: bytes, guess: str) -> _GroupResult:
    # Enedis-NOI-CPT_54E: label HT [date HT] value HT checksum; the checksum includes the last HT.
    body = raw[:-1]
    if raw[-2] != HT:
        return _GroupResult(None, Mode.STANDARD, "malformed", guess)
    parts = raw[:-2].decode("latin-1").split("\t")
    if len(parts) not in (2, 3):
        return _GroupResult(None, Mode.STANDARD, "malformed", guess)
    if raw[-1] != compute_checksum(body):
        return _GroupResult(None, Mode.STANDARD, "checksum", guess)
    if not _is_label(parts[0]):
        return _GroupResult(None, Mode.STANDARD, "malformed", guess)
    if len(parts) == 3:
        group = Group(parts[0], parts[2], parts[1])
    else:
        group = Group(parts[0], parts[1])
    return _GroupResult(group, Mode.STANDARD, None, parts[0])


def encode_group(mode: Mode, group: Group) -> bytes:
    """One group as a meter sends it, with its checksum (the inverse of ``parse_group``)."""
    if mode is Mode.STANDARD:
        fields = [group.label] + ([group.date] if group.date is not None else []) + [group.value]
        body = "\t".join(fields).encode("ascii") + b"\t"
        return b"\n" + body + bytes([compute_checksum(body)]) + b"\r"
    if group.date is not None:
        raise ValueError("historic mode has no dated groups")
    body = f"{group.label} {group.value}".encode("ascii")
    return b"\n" + body + b" " + bytes([compute_checksum(body)]) + b"\r"


def encode_frame(mode: Mode, groups: list[Group]) -> bytes:
    """STX, the groups, ETX: a whole frame, e.g. for a simulated meter."""
    return bytes([STX]) + b"".join(encode_group(mode, g) for g in groups) + bytes([ETX])


@dataclass
class TicParser:
    """Feed bytes, get frames. ``mode`` is the mode of the last frame (None before any).

    ``strip_parity``: TIC is 7-bit (7E1); if a port was opened with 8 data bits, the top
    bit carries parity and is cleared here. Files and 7E1 ports give 7-bit data already.
    """

    strip_parity: bool = True
    stats: TicStats = field(default_factory=TicStats)
    mode: Mode | None = None
    _state: _State = _State.IDLE
    _buf: bytearray = field(default_factory=bytearray)
    _overlong: bool = False
    _groups: list[Group] = field(default_factory=list)
    _dropped: list[str] = field(default_factory=list)
    _frame_mode: Mode | None = None
    _tail_bytes: int = 0      # bytes seen while idle since the last frame boundary

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Consume a chunk of any size; return the frames it completed, in order."""
        out: list[Frame] = []
        for b in bytes(data):
            if self.strip_parity:
                b &= 0x7F
            if b == STX:
                self._on_stx()
            elif b == EOT:
                self._on_eot()
            elif b == ETX:
                self._on_etx(out)
            elif self._state is _State.IDLE:
                self.stats.garbage_bytes += 1
                self._tail_bytes += 1
            elif self._state is _State.SKIP:
                continue
            elif b == LF:
                self._on_lf()
            elif b == CR:
                self._on_cr()
            else:
                self._on_data(b)
        return out

    def finish(self) -> None:
        """End of input: a frame still open is partial."""
        if self._state is not _State.IDLE and self._state is not _State.SKIP:
            self.stats.partial_frames += 1
        self._reset(_State.IDLE)

    # --- control bytes -------------------------------------------------------------

    def _on_stx(self) -> None:
        # DESIGN §10: resynchronise on STX; an unfinished frame before it is partial.
        if self._state is _State.FRAME or self._state is _State.GROUP:
            self.stats.partial_frames += 1
        self._reset(_State.FRAME)

    def _on_eot(self) -> None:
        # DESIGN §10: EOT interrupts a frame; its groups are discarded.
        if self._state is _State.FRAME or self._state is _State.GROUP:
            self.stats.interrupted_frames += 1
        elif self._state is _State.IDLE:
            self.stats.garbage_bytes += 1
        self._reset(_State.IDLE)

    def _on_etx(self, out: list[Frame]) -> None:
        if self._state is _State.IDLE:
            # The end of a frame whose start we missed (e.g. a port opened mid-frame).
            if self._tail_bytes:
                self.stats.partial_frames += 1
            else:
                self.stats.garbage_bytes += 1
        elif self._state is _State.GROUP:
            self._drop("malformed", _guess_label(bytes(self._buf)))
        if self._state is _State.FRAME or self._state is _State.GROUP:
            self._emit(out)
        self._reset(_State.IDLE)

    def _on_lf(self) -> None:
        if self._state is _State.GROUP:   # previous group never got its CR
            self._drop("malformed", _guess_label(bytes(self._buf)))
        if len(self._groups) + len(self._dropped) >= MAX_GROUPS_PER_FRAME:
            self.stats.partial_frames += 1
            self.stats.oversize_frames += 1
            self._reset(_State.SKIP)
            return
        self._buf.clear()
        self._overlong = False
        self._state = _State.GROUP

    def _on_cr(self) -> None:
        if self._state is _State.FRAME:   # CR without LF: a stray byte between groups
            self.stats.garbage_bytes += 1
            return
        self._state = _State.FRAME
        if self._overlong:
            self._drop("malformed", _guess_label(bytes(self._buf)))
            return
        self._add_group(parse_group(bytes(self._buf)))

    def _on_data(self, b: int) -> None:
        if self._state is _State.FRAME:
            self.stats.garbage_bytes += 1
        elif len(self._buf) < MAX_GROUP_BYTES:
            self._buf.append(b)
        else:
            self._overlong = True

    # --- groups and frames -----------------------------------------------------------

    def _add_group(self, result: _GroupResult) -> None:
        if result.group is None:
            self._drop(result.error or "malformed", result.label_guess)
        elif self._frame_mode is not None and result.mode is not self._frame_mode:
            self.stats.mixed_mode_groups += 1
            self._dropped.append(result.label_guess)
        else:
            # The separator of the first valid group fixes the frame's mode.
            self._frame_mode = result.mode
            self._groups.append(result.group)

    def _drop(self, error: str, label: str) -> None:
        if error == "checksum":
            self.stats.checksum += 1
        else:
            self.stats.malformed_groups += 1
        self._dropped.append(label)

    def _emit(self, out: list[Frame]) -> None:
        if not self._groups or self._frame_mode is None:
            self.stats.empty_frames += 1
            return
        frame = Frame(self._frame_mode, tuple(self._groups), tuple(self._dropped))
        self.stats.frames += 1
        self.stats.groups += len(frame.groups)
        self.mode = frame.mode
        out.append(frame)

    def _reset(self, state: _State) -> None:
        self._state = state
        self._buf.clear()
        self._overlong = False
        self._groups = []
        self._dropped = []
        self._frame_mode = None
        self._tail_bytes = 0
