"""From a TIC frame to a meter reading, and from a capture to its summary (DESIGN §4, §10).

Mapping (DESIGN §4 "Transactions", §10):
- ``meter``: ADCO (historic) or ADSC (standard), 12 digits;
- ``import_wh``: EAST (standard); historic BASE, or the sum of the tariff indexes of the
  subscribed option (HCHC+HCHP, the six BBRH*, EJPHN+EJPHPM);
- ``export_wh``: EAIT (standard, producers only; 0 when absent), 0 in historic mode;
- ``power_va``: PAPP (historic) or SINSTS (standard), else None;
- ``time``: the standard DATE group as ISO 8601 with its offset, else None.

A frame gives no reading when any group that the indexes or the meter id depend on was
dropped: a partial sum of tariff indexes would understate consumption, and cumulative
indexes make it free to wait for the next frame.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass

from node.meter.tic import Frame, Group, Mode, TicParser, TicStats, encode_frame

METER_RE = re.compile(r"[0-9]{12}")
INDEX_RE = re.compile(r"[0-9]{1,12}")

HC_LABELS = ("HCHC", "HCHP")
EJP_LABELS = ("EJPHN", "EJPHPM")
BBR_LABELS = ("BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR")
TARIFF_FAMILIES = {"HC": HC_LABELS, "EJP": EJP_LABELS, "BBR": BBR_LABELS}

# Groups whose loss makes a frame unusable: meter id, tariff option and every energy index.
CRITICAL_LABELS = frozenset({"ADCO", "ADSC", "OPTARIF", "BASE", "EAST", "EAIT",
                             *HC_LABELS, *EJP_LABELS, *BBR_LABELS})

# Standard DATE season flag (Enedis-NOI-CPT_54E §6.2.1.1): E/e summer (CEST), H/h winter
# (CET); lower case means the meter clock is degraded, the offset still holds.
SEASON_OFFSETS = {"E": 2, "e": 2, "H": 1, "h": 1}


@dataclass(frozen=True)
class Reading:
    meter: str
    import_wh: int
    export_wh: int
    power_va: int | None
    time: str | None

    def as_dict(self) -> dict[str, object]:
        return {"meter": self.meter, "import_wh": self.import_wh, "export_wh": self.export_wh,
                "power_va": self.power_va, "time": self.time}


def _index(frame: Frame, label: str) -> int | None:
    group = frame.get(label)
    if group is None or INDEX_RE.fullmatch(group.value.strip()) is None:
        return None
    return int(group.value.strip())


def _sum_indexes(frame: Frame, labels: tuple[str, ...]) -> int | None:
    values = [_index(frame, label) for label in labels]
    if any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)


def compute_historic_import(frame: Frame) -> int | None:
    """Historic import: BASE, or the sum of every index of the subscribed tariff option."""
    option = frame.get("OPTARIF")
    if option is not None:
        name = option.value.strip()
        for prefix, labels in sorted(TARIFF_FAMILIES.items()):
            if name.startswith(prefix):
                return _sum_indexes(frame, labels)
        return _index(frame, "BASE") if name == "BASE" else None
    # No OPTARIF group: trust BASE, or one complete family of tariff indexes.
    if frame.get("BASE") is not None:
        return _index(frame, "BASE")
    for _, labels in sorted(TARIFF_FAMILIES.items()):
        if all(frame.get(label) is not None for label in labels):
            return _sum_indexes(frame, labels)
    return None


def compute_frame_time(frame: Frame) -> str | None:
    """Standard DATE group: season flag + YYMMDDhhmmss, local time, as ISO 8601 with offset."""
    group = frame.get("DATE")
    if group is None or group.date is None:
        return None
    stamp = group.date.strip()
    if len(stamp) != 13 or stamp[0] not in SEASON_OFFSETS or not stamp[1:].isdigit():
        return None
    # YY is 20YY: strptime's %y would read 69..99 as 19xx.
    year, month, day, hour, minute, second = (int(stamp[i:i + 2]) for i in range(1, 13, 2))
    try:
        local = dt.datetime(2000 + year, month, day, hour, minute, second)
    except ValueError:
        return None
    tz = dt.timezone(dt.timedelta(hours=SEASON_OFFSETS[stamp[0]]))
    return local.replace(tzinfo=tz).isoformat()


def is_frame_usable(frame: Frame) -> bool:
    """A frame whose id, tariff option or energy group was dropped gives no reading."""
    for label in frame.dropped:
        if label in CRITICAL_LABELS or label.startswith(("BBRH", "EJPH", "EASF", "EASD")):
            return False
        if not re.fullmatch(r"[A-Z0-9+\-]{1,16}", label):   # too damaged to tell what it was
            return False
    return True


def compute_reading(frame: Frame) -> Reading | None:
    """Map one frame to a cumulative reading, or None when it cannot be trusted."""
    if not is_frame_usable(frame):
        return None
    if frame.mode is Mode.STANDARD:
        meter_group, import_wh = frame.get("ADSC"), _index(frame, "EAST")
        export_wh = _index(frame, "EAIT") if frame.get("EAIT") is not None else 0
        power_va = _index(frame, "SINSTS")
    else:
        meter_group, import_wh = frame.get("ADCO"), compute_historic_import(frame)
        export_wh, power_va = 0, _index(frame, "PAPP")
    if meter_group is None or METER_RE.fullmatch(meter_group.value.strip()) is None:
        return None
    if import_wh is None or export_wh is None:
        return None
    return Reading(meter_group.value.strip(), import_wh, export_wh, power_va, compute_frame_time(frame))


def encode_standard_frame(reading: Reading) -> bytes:
    """A standard-mode frame that maps back to ``reading`` (for simulated meters and tests)."""
    groups = [Group("ADSC", reading.meter), Group("VTIC", "02")]
    if reading.time is not None:
        when = dt.datetime.fromisoformat(reading.time)
        offset = when.utcoffset()
        season = {dt.timedelta(hours=2): "E", dt.timedelta(hours=1): "H"}.get(offset or dt.timedelta(0))
        if season is None:
            raise ValueError("TIC dates are CET (+01:00) or CEST (+02:00)")
        groups.append(Group("DATE", "", season + when.strftime("%y%m%d%H%M%S")))
    groups += [Group("EAST", f"{reading.import_wh:09d}"), Group("EAIT", f"{reading.export_wh:09d}")]
    if reading.power_va is not None:
        groups.append(Group("SINSTS", f"{reading.power_va:05d}"))
    return encode_frame(Mode.STANDARD, groups)


@dataclass(frozen=True)
class CaptureSummary:
    mode: Mode | None
    frames: int
    readings: tuple[Reading, ...]
    stats: TicStats

    def as_json(self, all_errors: bool = False) -> dict[str, object]:
        """The document ``meter parse --json`` prints; ``all_errors`` adds every parser counter."""
        errors: dict[str, int] = {"checksum": self.stats.checksum,
                                  "partial_frames": self.stats.partial_frames,
                                  "interrupted_frames": self.stats.interrupted_frames}
        if all_errors:
            extra = self.stats.as_dict()
            for key in ("frames", "groups"):
                extra.pop(key)
            errors.update(extra)
        return {"mode": self.mode.value if self.mode else None, "frames": self.frames,
                "readings": [r.as_dict() for r in self.readings], "errors": errors}


def summarise_frames(frames: list[Frame], stats: TicStats) -> CaptureSummary:
    """The capture's mode is the mode of most of its frames (the first one on a tie)."""
    modes = Counter(frame.mode for frame in frames)
    mode = max(modes, key=lambda m: (modes[m], -[f.mode for f in frames].index(m))) if modes else None
    readings = tuple(r for r in (compute_reading(f) for f in frames) if r is not None)
    return CaptureSummary(mode, len(frames), readings, stats)


def parse_capture(data: bytes, chunk_sizes: list[int] | None = None) -> CaptureSummary:
    """Parse a whole capture; ``chunk_sizes`` cuts it into reads (cycled), as a port would."""
    parser = TicParser()
    frames: list[Frame] = []
    if not chunk_sizes:
        frames.extend(parser.feed(data))
    else:
        pos, i = 0, 0
        while pos < len(data):
            size = max(1, chunk_sizes[i % len(chunk_sizes)])
            frames.extend(parser.feed(data[pos:pos + size]))
            pos, i = pos + size, i + 1
    parser.finish()
    return summarise_frames(frames, parser.stats)
