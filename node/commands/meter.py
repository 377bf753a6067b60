"""``voisinage meter``: parse TIC captures, run the meter agent, simulate a commune's meters."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import httpx
import trio
import typer
from rich import box
from rich.console import Console
from rich.table import Table

from node.clock import compute_local_day_start, compute_paris_offset_s
from node.errors import UserError
from node.home.homedir import load_genesis_file
from node.home.keyfile import load_key
from node.sim.profiles import MeterSim, Weather, build_profiles, compute_commune_mix
from node.meter.agent import MeterAgent, NodeClient
from node.meter.reading import CaptureSummary, parse_capture
from node.meter.source import ByteSource, FileSource, SerialSource, SourceError, detect_mode
from node.meter.tic import Mode
from tokens.genesis import Genesis
from wire import Keypair

meter_app = typer.Typer(help="Linky meters: TIC captures, the signing agent, simulated households.",
                        no_args_is_help=True)

MAX_CAPTURE_BYTES = 64 * 1024 * 1024


def _read_capture(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_CAPTURE_BYTES:
            raise UserError(f"{path} is larger than {MAX_CAPTURE_BYTES // (1024 * 1024)} MiB")
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"capture not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None


def _print_summary_table(summary: CaptureSummary) -> None:
    console = Console()
    mode = summary.mode.value if summary.mode else "unknown (no frame)"
    console.print(f"mode: {mode}   frames: {summary.frames}   readings: {len(summary.readings)}")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    for name in ("#", "meter", "import Wh", "export Wh", "power VA"):
        table.add_column(name, no_wrap=True)
    table.add_column("time", no_wrap=True, min_width=25)
    for i, r in enumerate(summary.readings, 1):
        table.add_row(str(i), r.meter, str(r.import_wh), str(r.export_wh),
                      "-" if r.power_va is None else str(r.power_va), r.time or "-")
    console.print(table)
    errors = ", ".join(f"{k} {v}" for k, v in summary.as_json(all_errors=True)["errors"].items())
    console.print(f"errors: {errors}")


@meter_app.command("parse")
def meter_parse(
    file: Path = typer.Argument(..., help="TIC capture: raw bytes as read from the serial line."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    all_errors: bool = typer.Option(False, "--all-errors",
                                    help="With --json: add every parser counter to \"errors\"."),
) -> None:
    """Parse a TIC capture into readings, counting checksum, partial and interrupted frames."""
    summary = parse_capture(_read_capture(file))
    if as_json:
        typer.echo(json.dumps(summary.as_json(all_errors=all_errors)))
    else:
        _print_summary_table(summary)


def _open_source(device: str | None, file: Path | None, mode: str) -> ByteSource:
    if (device is None) == (file is None):
        raise UserError("give exactly one of --device or --file")
    if mode not in ("auto", "historic", "standard"):
        raise UserError(f"--mode must be auto, historic or standard, not {mode!r}")
    if file is not None and mode != "auto":
        raise UserError("--mode applies to --device only: a file's mode is read from its separators")
    try:
        if file is not None:
            return FileSource(file)   # the separator tells the mode; no line settings
        chosen = detect_mode(device, report=typer.echo) if mode == "auto" else Mode(mode)
        return SerialSource(device or "", chosen)
    except SourceError as exc:
        raise UserError(str(exc)) from None


async def _run_agent(source: ByteSource, key: Keypair, node: str, every: float | None, max_submissions: int) -> None:
    async with httpx.AsyncClient() as client:
        agent = MeterAgent(source, key, NodeClient(node, client), every, out=typer.echo,
                           max_submissions=max_submissions)
        await agent.run()


@meter_app.command("tic")
def meter_tic(
    device: str | None = typer.Option(None, "--device", help="Serial device of the TIC adapter."),
    file: Path | None = typer.Option(None, "--file", help="Capture file or FIFO, followed as it grows."),
    mode: str = typer.Option("auto", "--mode", help="auto, historic (1200 baud) or standard (9600 baud)."),
    node: str = typer.Option(..., "--node", help="Node HTTP API, e.g. http://127.0.0.1:8700"),
    key: Path = typer.Option(..., "--key", help="The household's key file."),
    every: float = typer.Option(None, "--every", min=0.1,
                                help="Seconds between submitted readings (default: one per settlement interval)."),
    max_submissions: int = typer.Option(0, "--max-submissions", min=0,
                                        help="Stop after this many accepted readings (0: run until stopped)."),
) -> None:
    """Read the meter, sign one cumulative reading per settlement interval (or every
    --every seconds) and POST it to the node; after an outage, a catch-up reading at once."""
    if not node.startswith(("http://", "https://")):
        raise UserError(f"--node must be an http:// or https:// URL, not {node!r}")
    keypair = load_key(key)   # fail before touching the device
    source = _open_source(device, file, mode)
    typer.echo(f"reading {device or file}; submitting to {node} "
               f"{'once per settlement interval' if every is None else f'every {every:g}s'} as {keypair.public.hex()}")
    try:
        trio.run(_run_agent, source, keypair, node, every, max_submissions)
    finally:
        source.close()


def compute_hourly_totals(households: int, day: dt.date, seed: int,
                          genesis: Genesis | None = None) -> dict[str, object]:
    """A simulated local day: per-hour commune import and export from cumulative meters.
    With ``genesis``, the sky is the commune's: its location and its clear-sky table,
    which production never exceeds; each hour then shows the table's cap (no margin)."""
    specs = compute_commune_mix(households, seed)
    weather = Weather(seed) if genesis is None else Weather.for_genesis(seed, genesis)
    profiles = build_profiles(specs, weather)
    start = compute_local_day_start(day)
    end = compute_local_day_start(day + dt.timedelta(days=1))
    sims = [MeterSim(p, start) for p in profiles]
    bounds = list(range(start, end, 3600)) + [end]
    indexes = [[sim.index_at(b) for b in bounds] for sim in sims]
    hours = []
    for h in range(len(bounds) - 1):
        imp = sum(ix[h + 1][0] - ix[h][0] for ix in indexes)
        exp = sum(ix[h + 1][1] - ix[h][1] for ix in indexes)
        tz = dt.timezone(dt.timedelta(seconds=compute_paris_offset_s(bounds[h])))
        local = dt.datetime.fromtimestamp(bounds[h], tz)
        hour = {"start": local.isoformat(), "import_wh": imp, "export_wh": exp}
        if weather.sky is not None:
            hour["clear_sky_cap_wh"] = sum(weather.sky.compute_export_cap_wh(s.peak_w, 10_000, bounds[h], bounds[h + 1])
                                           for s in specs)
        hours.append(hour)
    return {
        "day": day.isoformat(), "households": households, "seed": seed,
        "producers": sum(1 for s in specs if s.peak_w), "peak_w": sum(s.peak_w for s in specs),
        "hours": hours,
        "total_import_wh": sum(h["import_wh"] for h in hours),
        "total_export_wh": sum(h["export_wh"] for h in hours),
    }


@meter_app.command("simulate")
def meter_simulate(
    households: int = typer.Option(10, "--households", min=1, max=10_000, help="Households in the commune."),
    day: str = typer.Option(..., "--day", help="Local day to simulate, YYYY-MM-DD."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the commune mix and weather."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    genesis_file: Path = typer.Option(None, "--genesis",
                                      help="A commune's genesis.json: simulate under its clear-sky table."),
) -> None:
    """Simulate a day of readings for a commune (30 % producers); print hourly import/export."""
    try:
        when = dt.date.fromisoformat(day)
    except ValueError:
        raise UserError(f"--day must be YYYY-MM-DD, not {day!r}") from None
    genesis = None if genesis_file is None else load_genesis_file(genesis_file)
    if genesis is not None and genesis.sky is None:
        raise UserError(f"{genesis_file} has no clear-sky table (made before issue 18): simulate without --genesis")
    doc = compute_hourly_totals(households, when, seed, genesis)
    if as_json:
        typer.echo(json.dumps(doc))
        return
    console = Console()
    console.print(f"{doc['day']}: {households} households, {doc['producers']} producers "
                  f"({doc['peak_w'] / 1000:g} kWc), seed {seed}")
    sky = genesis is not None
    table = Table("hour (local)", "import kWh", "export kWh", *(["clear-sky cap kWh"] if sky else []),
                  box=box.SIMPLE_HEAD)
    for h in doc["hours"]:
        table.add_row(str(h["start"])[11:16], f"{h['import_wh'] / 1000:.2f}", f"{h['export_wh'] / 1000:.2f}",
                      *([f"{h['clear_sky_cap_wh'] / 1000:.2f}"] if sky else []))
    table.add_row("total", f"{doc['total_import_wh'] / 1000:.2f}", f"{doc['total_export_wh'] / 1000:.2f}",
                  *([f"{sum(h['clear_sky_cap_wh'] for h in doc['hours']) / 1000:.2f}"] if sky else []))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(meter_app, name="meter")
