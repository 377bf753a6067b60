"""Official half-hourly load curves from the grid operator (issue 18, docs/reconciliation.md).

Two shapes are read:

- the Enedis Data Connect JSON (``consumption_load_curve`` / ``production_load_curve``):
  ``usage_point[].meter_reading`` with ``usage_point_id``, ``start`` and ``end`` (local
  dates, end excluded), ``reading_type`` {``unit``: W or Wh, ``interval_length``: 1800}
  and ``interval_reading[{rank, value}]``, rank 1 being the half hour after local
  midnight of ``start``. The direction is the file's (``--production-file``), or a
  reading's ``reading_type.flow_direction`` (CONS or PROD, a field we reconstructed).
- the customer area's CSV export (reconstructed, docs/reconciliation.md): blocks of a
  header line ``Identifiant PRM;Type de donnees;Date de debut;Date de fin;Grandeur
  physique;Grandeur metier;Etape metier;Unite;Pas en minutes``, its values line, then
  ``Horodate;Valeur`` and one line per half hour, the timestamp (ISO 8601 with offset)
  marking the END of the half hour; blocks are separated by a blank line.

Values in W are the half hour's mean power: Wh = W / 2, rounded down. A curve with a
problem (wrong PRM, a gap, a duplicated rank, another unit or step) refuses its whole
delivery point with one line; the others are kept.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.clock import compute_local_day_start
from node.consent.dataconnect import DATE_FORMAT, DIRECTIONS, HALF_S
from node.errors import UserError

MAX_FILE_BYTES = 64 * 1024 * 1024
CSV_HEADER = ["Identifiant PRM", "Type de donnees", "Date de debut", "Date de fin", "Grandeur physique",
              "Grandeur metier", "Etape metier", "Unite", "Pas en minutes"]


class CurveError(ValueError):
    def __init__(self, prm: str, message: str) -> None:
        super().__init__(f"{prm}: {message}")
        self.prm = prm


@dataclass
class Curves:
    """Per PRM and direction ("import"/"export"): {interval start: Wh}; and refused PRMs."""

    values: dict[tuple[str, str], dict[int, int]]
    refused: dict[str, str]

    def add(self, prm: str, direction: str, points: dict[int, int]) -> None:
        if prm in self.refused:
            return
        target = self.values.setdefault((prm, direction), {})
        overlap = target.keys() & points.keys()
        if overlap:
            self.refuse(prm, f"{direction} curve given twice for the half hour at {min(overlap)}")
            return
        target.update(points)

    def refuse(self, prm: str, message: str) -> None:
        self.refused.setdefault(prm, message)
        for key in [k for k in self.values if k[0] == prm]:
            del self.values[key]

    def split_days(self) -> dict[tuple[str, int], dict[str, list[int]]]:
        """(PRM, local day start) → {"import": [...], "export": [...]} by half hour."""
        days: dict[tuple[str, int], dict[str, list[int]]] = defaultdict(dict)
        for (prm, direction), points in sorted(self.values.items()):
            by_day: dict[int, dict[int, int]] = defaultdict(dict)
            for start, wh in points.items():
                by_day[get_local_day_start(start)][start] = wh
            for day, pts in by_day.items():
                days[(prm, day)][direction] = [pts[t] for t in sorted(pts)]
        for (prm, day), curves in days.items():
            lengths = {len(v) for v in curves.values()}
            if len(lengths) != 1:
                self.refuse(prm, f"import and export curves of the day at {day} differ in length")
        return {k: v for k, v in sorted(days.items()) if k[0] not in self.refused}


def get_local_day_start(t: int) -> int:
    """Unix time of the French local midnight that starts the day holding ``t``."""
    day = dt.datetime.fromtimestamp(t + 12 * 3600, dt.timezone.utc).date()
    start = compute_local_day_start(day)
    return start if start <= t else compute_local_day_start(day - dt.timedelta(days=1))


def read_official_file(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise UserError(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None


def parse_files(json_or_csv: list[Path], production: list[Path]) -> Curves:
    curves = Curves({}, {})
    for path, forced in [(p, None) for p in json_or_csv] + [(p, "export") for p in production]:
        text = read_official_file(path)
        if text.lstrip().startswith("{"):
            parse_data_connect(text, curves, forced, path)
        else:
            parse_customer_csv(text, curves, forced, path)
    return curves


def check_prm(value: Any) -> str:
    prm = str(value) if isinstance(value, (str, int)) else ""
    if not re.fullmatch(r"\d{14}", prm):
        raise CurveError(prm or "?", f"wrong PRM {value!r}: expected 14 digits")
    return prm


def compute_wh(prm: str, unit: str, raw: Any, where: str) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise CurveError(prm, f"{where}: value {raw!r} is not a whole number") from None
    if value < 0:
        raise CurveError(prm, f"{where}: negative value {value}")
    return value // 2 if unit == "W" else value


def check_unit(prm: str, unit: Any) -> str:
    if unit not in ("W", "Wh"):
        raise CurveError(prm, f"unit {unit!r}: only W (mean power) or Wh is read")
    return unit


def parse_local_date(prm: str, text: Any, fmt: str) -> dt.date:
    try:
        return dt.datetime.strptime(str(text), fmt).date()
    except ValueError:
        raise CurveError(prm, f"bad date {text!r}") from None


def parse_period(prm: str, start: Any, end: Any, fmt: str) -> tuple[int, int]:
    """Unix times of the local midnights that start the first day and end the last."""
    first, last = (compute_local_day_start(parse_local_date(prm, text, fmt)) for text in (start, end))
    if last <= first:
        raise CurveError(prm, f"end {end!r} is not after start {start!r}")
    return first, last


def parse_data_connect(text: str, curves: Curves, forced: str | None, path: Path) -> None:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    points = doc.get("usage_point") if isinstance(doc, dict) else None
    if not isinstance(points, list):
        raise UserError(f"{path}: expected {{\"usage_point\": [{{\"meter_reading\": ...}}]}}")
    for n, item in enumerate(points):
        reading = item.get("meter_reading") if isinstance(item, dict) else None
        raw_prm = reading.get("usage_point_id") if isinstance(reading, dict) else None
        try:
            prm = check_prm(raw_prm)
            direction, found = parse_meter_reading(prm, reading, forced)
        except CurveError as exc:
            curves.refuse(exc.prm if exc.prm != "?" else f"usage_point[{n}]", str(exc).split(": ", 1)[1])
            continue
        curves.add(prm, direction, found)


def parse_meter_reading(prm: str, reading: dict, forced: str | None) -> tuple[str, dict[int, int]]:
    rtype = reading.get("reading_type")
    if not isinstance(rtype, dict):
        raise CurveError(prm, "no reading_type")
    unit = check_unit(prm, rtype.get("unit"))
    if str(rtype.get("interval_length")) != str(HALF_S):
        raise CurveError(prm, f"interval_length {rtype.get('interval_length')!r}: only 1800 s is read")
    direction = forced or DIRECTIONS.get(rtype.get("flow_direction", "CONS"))
    if direction is None:
        raise CurveError(prm, f"flow_direction {rtype.get('flow_direction')!r}: expected CONS or PROD")
    first, end = parse_period(prm, reading.get("start"), reading.get("end"), DATE_FORMAT)
    expected = (end - first) // HALF_S
    readings = reading.get("interval_reading")
    if not isinstance(readings, list):
        raise CurveError(prm, "no interval_reading list")
    by_rank: dict[int, int] = {}
    for r in readings:
        try:
            rank = int(str(r.get("rank")))
        except (AttributeError, ValueError):
            raise CurveError(prm, f"interval_reading without a whole rank: {r!r}") from None
        if rank in by_rank:
            raise CurveError(prm, f"duplicated rank {rank}")
        if not 1 <= rank <= expected:
            raise CurveError(prm, f"rank {rank} outside 1..{expected} for {reading.get('start')} to {reading.get('end')}")
        by_rank[rank] = compute_wh(prm, unit, r.get("value"), f"rank {rank}")
    missing = [k for k in range(1, expected + 1) if k not in by_rank]
    if missing:
        raise CurveError(prm, f"gap: {len(missing)} half hours missing, from rank {missing[0]}")
    return direction, {first + (rank - 1) * HALF_S: wh for rank, wh in by_rank.items()}


def parse_customer_csv(text: str, curves: Curves, forced: str | None, path: Path) -> None:
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    blocks: list[list[list[str]]] = [[]]
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if [c.strip() for c in row] == CSV_HEADER and blocks[-1]:
            blocks.append([])
        blocks[-1].append([c.strip() for c in row])
    if not blocks[0] or blocks[0][0] != CSV_HEADER:
        raise UserError(f"{path}: neither Data Connect JSON nor the customer area's CSV "
                        f"(first line must be {';'.join(CSV_HEADER)})")
    for n, block in enumerate(blocks):
        prm = block[1][0] if len(block) > 1 and block[1] else f"block {n + 1}"
        try:
            prm = check_prm(prm)
            direction, found = parse_csv_block(prm, block, forced)
        except CurveError as exc:
            curves.refuse(exc.prm, str(exc).split(": ", 1)[1])
            continue
        curves.add(prm, direction, found)


def parse_csv_block(prm: str, block: list[list[str]], forced: str | None) -> tuple[str, dict[int, int]]:
    meta = dict(zip(CSV_HEADER, block[1]))
    unit = check_unit(prm, meta.get("Unite"))
    if meta.get("Pas en minutes") != "30":
        raise CurveError(prm, f"step of {meta.get('Pas en minutes')!r} minutes: only 30 is read")
    direction = forced or DIRECTIONS.get(meta.get("Grandeur metier", ""))
    if direction is None:
        raise CurveError(prm, f"Grandeur metier {meta.get('Grandeur metier')!r}: expected Consommation or Production")
    first, end = parse_period(prm, meta.get("Date de debut"), meta.get("Date de fin"), "%d/%m/%Y")
    if len(block) < 3 or block[2][:2] != ["Horodate", "Valeur"]:
        raise CurveError(prm, "no Horodate;Valeur line")
    found: dict[int, int] = {}
    for row in block[3:]:
        if len(row) < 2:
            raise CurveError(prm, f"line {';'.join(row)!r}: expected Horodate;Valeur")
        try:
            stamp = dt.datetime.fromisoformat(row[0])
        except ValueError:
            raise CurveError(prm, f"bad Horodate {row[0]!r}") from None
        if stamp.tzinfo is None:
            raise CurveError(prm, f"Horodate {row[0]!r} has no UTC offset")
        start = int(stamp.timestamp()) - HALF_S
        if start % HALF_S or not first <= start < end:
            raise CurveError(prm, f"Horodate {row[0]} is not a half-hour end inside the period")
        if start in found:
            raise CurveError(prm, f"duplicated Horodate {row[0]}")
        found[start] = compute_wh(prm, unit, row[1], row[0])
    missing = [t for t in range(first, end, HALF_S) if t not in found]
    if missing:
        raise CurveError(prm, f"gap: {len(missing)} half hours missing, from the one starting at {missing[0]}")
    return direction, found
