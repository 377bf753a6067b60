"""``voisinage e2e``: fault injection on real node processes (run, table, soak, cleanup)."""

from __future__ import annotations

import json
import signal
from functools import partial
from pathlib import Path

import trio
import typer

from node.errors import UserError

e2e_app = typer.Typer(help="End-to-end fault injection on real node processes.", no_args_is_help=True)


async def _until_signal(fn):
    """Run ``fn`` and turn SIGTERM into cancellation, so namespaces and nodes are cleaned up."""
    result = []

    async def watch(scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                scope.cancel()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch, nursery.cancel_scope)
        result.append(await fn())
        nursery.cancel_scope.cancel()
    if not result:
        raise UserError("stopped by SIGTERM; nodes stopped and namespaces removed")
    return result[0]


def _unwrap(group: BaseExceptionGroup) -> BaseException:
    while isinstance(group, BaseExceptionGroup) and len(group.exceptions) == 1:
        group = group.exceptions[0]
    return group


def _run_trio(fn):
    try:
        return trio.run(partial(_until_signal, fn))
    except BaseExceptionGroup as group:
        inner = _unwrap(group)
        if isinstance(inner, UserError):
            raise inner from None
        raise


@e2e_app.command("run")
def e2e_run(
    manifest: Path = typer.Argument(..., help="A TOML manifest (see e2e/manifests/)."),
    report: Path = typer.Option(None, "--report", help="Write the JSON report here."),
    workdir: Path = typer.Option(None, "--workdir", help="Empty directory for the homes (default: a new temp dir)."),
) -> None:
    """Setup → start → load → perturb → wait → check → stop; exit 0 only if every check held."""
    from node.e2e.manifest import load_manifest
    from node.e2e.runner import run_manifest, write_report

    from node.e2e.communes import read_communes_manifest, run_communes_manifest

    communes = read_communes_manifest(manifest)
    if communes is not None:
        result = _run_trio(partial(run_communes_manifest, communes, workdir, partial(typer.echo, err=True)))
        result.setdefault("height", result.get("heights"))
    else:
        result = _run_trio(partial(run_manifest, load_manifest(manifest), workdir, partial(typer.echo, err=True)))
    if report is not None:
        write_report(result, report)
    typer.echo(json.dumps({k: result.get(k) for k in ("manifest", "passed", "height", "problems")}))
    raise typer.Exit(0 if result["passed"] else 1)


@e2e_app.command("table")
def e2e_table(
    manifests: list[Path] = typer.Argument(..., help="Manifests, one table row each."),
    out: Path = typer.Option(Path("docs/reliability.md"), "--out", help="The markdown table to write."),
    reports: Path = typer.Option(Path("e2e/reports"), "--reports", help="Folder of the JSON reports."),
    no_run: bool = typer.Option(False, "--no-run", help="Rebuild from existing reports, run nothing."),
) -> None:
    """Run every manifest (unless --no-run) and write docs/reliability.md from the reports."""
    from node.e2e.manifest import load_manifest
    from node.e2e.runner import run_manifest, write_report
    from node.e2e.table import render_table, report_path

    loaded = [load_manifest(p) for p in manifests]
    results = []
    for m in loaded:
        path = report_path(reports, m.path)
        if no_run:
            if not path.exists():
                raise UserError(f"no report {path} for {m.path}; run without --no-run first")
            results.append(json.loads(path.read_text()))
            continue
        typer.echo(f"== {m.name}", err=True)
        result = _run_trio(partial(run_manifest, m, None, partial(typer.echo, err=True)))
        write_report(result, path)
        results.append(result)
    args = " ".join(str(p) for p in manifests) + f" --out {out}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_table(results, args, str(reports)))
    typer.echo(f"wrote {out}: {sum(r.get('passed', False) for r in results)} of {len(results)} scenarios passed")


@e2e_app.command("soak")
def e2e_soak(
    minutes: float = typer.Option(30, "--minutes", min=0.5, help="How long to hold the load."),
    validators: int = typer.Option(4, "--validators", min=1, max=31),
    households: int = typer.Option(8, "--households", min=1, max=100),
    readings_per_s: float = typer.Option(1.0, "--readings-per-s", min=0.01, max=50, help="Per household."),
    netns: bool = typer.Option(False, "--netns", help="One network namespace per node (root only)."),
    report: Path = typer.Option(None, "--report", help="Write the JSON report here."),
) -> None:
    """Steady load for --minutes; report RSS growth per node (not run in CI)."""
    from node.e2e.soak import run_soak

    result = _run_trio(partial(run_soak, minutes, validators, households, netns, readings_per_s,
                               say=partial(typer.echo, err=True)))
    text = json.dumps(result, indent=2, sort_keys=True)
    if report is not None:
        report.write_text(text + "\n")
    typer.echo(text)
    raise typer.Exit(0 if result["passed"] else 1)


@e2e_app.command("cleanup")
def e2e_cleanup() -> None:
    """Remove namespaces and links left by e2e runs whose runner died (root only)."""
    from node.localnet.netns import cleanup_stale, require_root

    require_root("e2e cleanup")
    removed = cleanup_stale()
    typer.echo(f"removed {len(removed)}: {' '.join(removed)}" if removed else "nothing to remove")


def register(app: typer.Typer) -> None:
    app.add_typer(e2e_app, name="e2e")
