"""``voisinage bench``: measured figures for the parts with a performance goal."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import trio
import typer

from node.bench.tally import run_tally_bench

bench_app = typer.Typer(help="Benchmarks, each with a baseline measured in the same run.", no_args_is_help=True)


@bench_app.command("tally")
def bench_tally(
    voters: int = typer.Option(100_000, "--voters", min=1, max=10_000_000, help="Households."),
    categories: int = typer.Option(10, "--categories", min=1, max=32, help="Allocation categories."),
    chain: int = typer.Option(10_000, "--chain", min=1, help="Length of the longest delegation chains."),
    seed: int = typer.Option(1, "--seed", help="Seed of the generated workload."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Delegation resolution + independent markets allocation (goal: < 1 s for 100 000 voters)."""
    report = run_tally_bench(voters, categories, chain, seed)
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"{report['voters']} voters, {report['categories']} categories, "
               f"{report['direct_voters']} direct, delegation chains up to {report['longest_chain']}")
    typer.echo(f"resolve   {report['resolve_s']:.3f} s")
    typer.echo(f"allocate  {report['allocate_s']:.3f} s")
    typer.echo(f"total     {report['total_s']:.3f} s (goal < {report['goal_s']:g} s: "
               f"{'met' if report['within_goal'] else 'MISSED'})")
    typer.echo(f"baseline  {report['baseline_s']:.3f} s ({report['baseline']}); ratio {report['ratio']}")
    typer.echo(f"allocate with every voter direct: {report['allocate_all_direct_s']:.3f} s")


@bench_app.command("consensus")
def bench_consensus(
    seconds: float = typer.Option(3.0, "--seconds", min=0.1, max=600.0,
                                  help="Rough wall time to spend per validator count."),
    validators: list[int] = typer.Option([4, 7, 10, 31], "--validators", min=1, max=100,
                                         help="Validator counts to measure (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Heights per second of the pure consensus engine for n = 4, 7, 10, 31, no faults (goal n=4: >= 100)."""
    from node.bench.consensus import run_bench

    rows = run_bench(sizes=tuple(validators), seconds_hint=seconds)
    if as_json:
        typer.echo(json.dumps({"goal_n4_heights_per_s": 100, "results": rows}))
        return
    for row in rows:
        typer.echo(f"n={row['validators']:<3} {row['heights_per_s']:>8.1f} heights/s over {row['heights']} heights; "
                   f"Ed25519-only baseline {row['crypto_baseline_heights_per_s']:.1f} heights/s, "
                   f"ratio {row['ratio_to_baseline']}")
    for row in rows:
        if row["validators"] == 4:
            typer.echo(f"goal n=4 >= 100 heights/s: {'met' if row['heights_per_s'] >= 100 else 'MISSED'}")


@bench_app.command("localnet")
def bench_localnet(
    validators: int = typer.Option(4, "--validators", min=1, max=31, help="Validator processes."),
    households: int = typer.Option(8, "--households", min=1, max=64, help="Household node processes."),
    steps: str = typer.Option("100,250,500,1000,1500", "--steps", help="Offered readings/s, comma-separated."),
    step_s: float = typer.Option(15.0, "--step-seconds", min=2, max=600, help="Duration of each step."),
    home: Path = typer.Option(None, "--home", help="Keep the network (and its logs) in this new directory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """End-to-end committed signed readings/s on this machine, against raw py-libp2p gossip."""
    from node.errors import UserError
    from node.bench.localnet import bench_localnet as run

    try:
        rates = [int(x) for x in steps.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"bad --steps {steps!r}: expected integers like 100,500,1000") from None
    if not rates or min(rates) <= 0:
        raise UserError("--steps needs at least one positive rate")
    say = (lambda line: None) if as_json else typer.echo
    report = trio.run(partial(run, validators=validators, households=households, steps=rates,
                              step_s=step_s, say=say, home=home))
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"raw py-libp2p gossip: {report['raw_gossip_msgs_per_s']} msgs/s; readings per gossip message: "
               f"{report['readings_per_gossip_msg']}")
    typer.echo(f"max committed {report['max_committed_per_s']} readings/s "
               f"(x{report['ratio_to_raw_gossip']} raw gossip); sustained with p99 <= 3 s: "
               f"{report['sustained_per_s']}/s; nodes agree: {report['agree']}")


@bench_app.command("apply")
def bench_apply(
    n: int = typer.Option(20_000, "--n", min=1, max=1_000_000, help="Signed txs (readings and transfers)."),
    verify_threads: int = typer.Option(1, "--verify-threads", min=1, max=16,
                                       help="Signature-check threads in the pipelined run."),
    verify_workers: int = typer.Option(0, "--verify-workers", min=0, max=16,
                                       help="Sealed part: run it once more with the checks in this many "
                                            "check processes, as `node run --check-workers` (0: not)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Signature checks + apply_block + LevelDB persist vs raw Ed25519 verify (goal ratio >= 0.5);
    sealed: verify + open + apply + persist vs raw verify + open (goal >= 0.6), the checks by the
    node's own code, on this thread and then on its pool of worker threads."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from node.errors import UserError
    from node.bench.apply import BenchFailed, run_apply_bench

    progress = Progress(TextColumn("{task.description:<32}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=Console(stderr=True), disable=as_json)
    with progress:
        signing = progress.add_task("signing txs", total=n)
        runs = [progress.add_task("sequential verify+apply+persist", total=n),
                progress.add_task("pipelined verify+apply+persist", total=n),
                progress.add_task("sealed verify+open+apply+persist", total=n)]

        def on_block(txs: int) -> None:
            task = next((t for t in runs if not progress.tasks[t].finished), runs[-1])
            progress.advance(task, txs)

        try:
            report = run_apply_bench(n, verify_threads=verify_threads, verify_workers=verify_workers,
                                     on_signed=lambda done: progress.update(signing, completed=done),
                                     on_block=on_block)
        except BenchFailed as exc:
            raise UserError(f"bench apply failed: {exc}") from None
    if as_json:
        typer.echo(json.dumps(report))
        return
    piped = report["pipelined"]
    typer.echo(f"{report['n']} txs in {report['blocks']} blocks, {report['households']} households")
    typer.echo(f"sequential  {report['txs_per_s']:>9.1f} txs/s  raw verify {report['raw_verify_per_s']:.1f}/s  "
               f"ratio {report['ratio']:.3f} (CPU time: {report['cpu_ratio']:.3f})  "
               f"block p99 {report['block_apply_p99_s']:.3f} s")
    typer.echo(f"  phases    verify {report['phases_s']['verify']:.3f} s, apply {report['phases_s']['apply']:.3f} s, "
               f"persist {report['phases_s']['persist']:.3f} s")
    typer.echo(f"pipelined   {piped['txs_per_s']:>9.1f} txs/s  raw verify {piped['raw_verify_per_s']:.1f}/s  "
               f"ratio {piped['ratio']:.3f}  block p99 {piped['block_apply_p99_s']:.3f} s  "
               f"({piped['verify_threads']} check thread(s))")
    typer.echo(f"goal ratio >= 0.5: {'met' if report['ratio'] >= 0.5 else 'MISSED'}; "
               f"stretch >= 0.8: {'met' if report['ratio'] >= 0.8 else 'not met'} "
               f"(pipelined: {'met' if piped['ratio'] >= 0.8 else 'not met'})")
    sealed, par = report["sealed"], report["sealed"]["parallel"]
    typer.echo(f"sealed      {sealed['txs_per_s']:>9.1f} txs/s  "
               f"raw verify+open {sealed['raw_verify_open_per_s']:.1f}/s  "
               f"ratio {sealed['ratio']:.3f} (CPU time: {sealed['cpu_ratio']:.3f})  "
               f"block p99 {sealed['block_apply_p99_s']:.3f} s; goal >= 0.6: "
               f"{'met' if sealed['ratio'] >= 0.6 else 'MISSED'}")
    sp = sealed["pooled"]
    typer.echo(f"  pooled    {sp['txs_per_s']:>9.1f} txs/s  raw verify+open {sp['raw_verify_open_per_s']:.1f}/s  "
               f"ratio {sp['ratio']:.3f}, x{sp['vs_sequential']:.2f} the sequential run "
               f"(the node's pool, {sp['threads']} worker threads)")
    typer.echo(f"  the node's checks on {sp['threads']} threads: x{sp['check_speedup']:.2f} "
               f"({sp['check_pool_per_s']:.0f}/s against {sp['check_one_thread_per_s']:.0f}/s on one thread)")
    procs = sealed.get("processes")
    if procs is not None:
        typer.echo(f"  processes {procs['txs_per_s']:>9.1f} txs/s  raw verify+open {procs['raw_verify_open_per_s']:.1f}/s  "
                   f"ratio {procs['ratio']:.3f}, x{procs['vs_sequential']:.2f} the sequential run "
                   f"(the node's {procs['workers']} check processes); goal >= 0.6: "
                   f"{'met' if procs['ratio'] >= 0.6 else 'MISSED'}")
        typer.echo(f"  the node's checks in {procs['workers']} processes: x{procs['check_speedup']:.2f} "
                   f"({procs['check_pool_per_s']:.0f}/s against {procs['check_one_thread_per_s']:.0f}/s on one thread)")
    typer.echo(f"  raw verify+open on {par['workers']} cores: threads x{par['threads_speedup']:.2f} "
               f"({par['threads_per_s']:.0f}/s), processes x{par['processes_speedup']:.2f} "
               f"({par['processes_per_s']:.0f}/s), against {par['one_thread_per_s']:.0f}/s on one thread")


@bench_app.command("cadence")
def bench_cadence(
    households: int = typer.Option(10, "--households", min=2, max=200, help="Households of the commune."),
    days: int = typer.Option(2, "--days", min=1, max=30, help="Simulated days."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Blocks and block bytes per simulated day: an empty block every 10 s and a reading a
    minute (before) against blocks only when something is due and a reading per
    settlement interval (after), for an idle commune and an active one (docs/cadence.md)."""
    from node.bench.cadence import BEFORE_IDLE_S, run_cadence_bench
    from node.bench.storage import BenchFailed
    from node.errors import UserError

    try:
        report = run_cadence_bench(households, days)
    except BenchFailed as exc:
        raise UserError(f"bench cadence failed: {exc}") from None
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"{households} households, {days} simulated days, {report['seconds']} s; "
               f"before: a block every {BEFORE_IDLE_S} s and a reading a minute")
    for name in ("idle", "active"):
        row = report[name]
        for when in ("before", "after"):
            r = row[when]
            typer.echo(f"{name:<6} {when:<6} {r['blocks_per_day']:9.1f} blocks/day ({r['empty_blocks_per_day']:.1f} empty), "
                       f"{r['txs_per_day']:9.1f} txs/day, {r['block_bytes_per_day'] / 1e6:8.3f} MB/day")
        typer.echo(f"{name:<6} ratio  after/before: blocks {row['blocks_ratio']:.5f}, bytes {row['bytes_ratio']:.5f}")


@bench_app.command("storage")
def bench_storage(
    households: int = typer.Option(450, "--households", min=2, max=2000, help="Households of the commune."),
    days: int = typer.Option(4, "--days", min=1, max=400, help="Simulated days."),
    idle_s: int = typer.Option(10, "--idle-s", min=1, max=1800,
                               help="Seconds between two blocks (an empty one unless readings are due)."),
    keep_states: int = typer.Option(None, "--keep-states", min=2, show_default="as node run",
                                    help="State tree versions a pruned store keeps."),
    keep_blocks: int = typer.Option(0, "--keep-blocks", min=0,
                                    help="Block bodies a household node keeps (0: 7 days of chain time)."),
    out: Path = typer.Option(None, "--dir", help="Where the stores go (default: a temporary directory)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Disk bytes per simulated day: the store before (history in the state, nothing pruned)
    and after (history archived, --pruning default on a validator and a household node)."""
    import tempfile

    from node.bench.storage import BenchFailed, run_storage_bench
    from node.errors import UserError

    def on_day(name: str, day: int) -> None:
        if not as_json:
            typer.echo(f"  {name}: day {day} done", err=True)

    with tempfile.TemporaryDirectory(prefix="voisinage-storage-") as tmp:
        try:
            report = run_storage_bench(out or Path(tmp), households, days, idle_s, keep_states=keep_states,
                                       keep_blocks=keep_blocks, on_day=on_day)
        except BenchFailed as exc:
            raise UserError(f"bench storage failed: {exc}") from None
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"{report['households']} households, {report['days']} days, a block every {report['idle_s']} s "
               f"({report['blocks']} blocks), history_retention_s {report['history_retention_s']}, "
               f"{report['seconds']} s")
    base = report["before"]["last_day_live_growth_bytes"]
    for name in ("before", "validator", "household"):
        run = report[name]
        last = run["days"][-1]
        typer.echo(f"{name:<10} last day +{run['last_day_live_growth_bytes'] / 1e6:8.2f} MB live "
                   f"({run['last_day_live_growth_bytes'] / base:.2f} x before), "
                   f"+{run['last_day_growth_bytes'] / 1e6:.2f} MB on disk;  total {last['live_bytes'] / 1e6:.2f} MB "
                   f"live, {last['disk_bytes'] / 1e6:.2f} MB on disk;  "
                   f"state entries {last['state_entries']}  tree nodes {last['tree_nodes']}  "
                   f"archived {last['archived_entries']}")


@bench_app.command("year")
def bench_year(
    households: int = typer.Option(450, "--households", min=1, max=5000, help="Registered households."),
    days: int = typer.Option(365, "--days", min=1, max=3650, help="Simulated days (a year by default)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulated commune."),
    workdir: Path = typer.Option(None, "--workdir", help="Where to build the stores (default: the system's "
                                 "temporary directory); removed afterwards unless --keep."),
    keep: bool = typer.Option(False, "--keep", help="Keep the stores (their directory is in the report)."),
    resume: bool = typer.Option(False, "--resume", help="Build in --workdir and go on from where an earlier "
                                "run with the same --households/--days/--seed stopped (it keeps its stores)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A simulated year of a commune through the real ledger and store: disk, state, snapshot, join vs replay."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from node.bench.year import YearBenchFailed, format_year_report, run_year_bench
    from node.errors import UserError

    if workdir is not None and not workdir.is_dir():
        raise UserError(f"--workdir {workdir} is not a directory")
    if resume and workdir is None:
        raise UserError("--resume needs --workdir (where the stopped run's stores are)")
    progress = Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=Console(stderr=True), disable=as_json)
    tasks: dict[str, int] = {}

    def on_progress(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = progress.add_task(phase, total=total)
        progress.update(tasks[phase], completed=done)

    with progress:
        try:
            report = run_year_bench(households, days, seed, on_progress, workdir, keep, resume)
        except YearBenchFailed as exc:
            raise UserError(f"bench year failed: {exc}") from None
    typer.echo(json.dumps(report) if as_json else format_year_report(report))


@bench_app.command("relay")
def bench_relay(
    packets: int = typer.Option(1000, "--packets", min=1, max=100_000, help="Packets sent from commune A to B."),
    households: int = typer.Option(200, "--households", min=2, max=2000, help="Households of each commune."),
    validators: int = typer.Option(4, "--validators", min=1, max=31, help="Validators of each commune."),
    workdir: Path = typer.Option(None, "--workdir", help="Where to build the two stores (default: the system's "
                                 "temporary directory); removed afterwards."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Packets/s relayed between two communes, proof bytes, light-client update cost, against a local transfer."""
    from node.bench.relay import RelayBenchFailed, format_relay_report, run_relay_bench
    from node.errors import UserError

    if workdir is not None and not workdir.is_dir():
        raise UserError(f"--workdir {workdir} is not a directory")
    echo = (lambda phase: None) if as_json else (lambda phase: typer.echo(f"{phase}…", err=True))
    try:
        report = run_relay_bench(packets, households, validators, workdir, echo)
    except RelayBenchFailed as exc:
        raise UserError(f"bench relay failed: {exc}") from None
    typer.echo(json.dumps(report) if as_json else format_relay_report(report))


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")


@bench_app.command("statesync")
def bench_statesync(
    households: int = typer.Option(100, "--households", min=2, max=2000, help="Households of the commune."),
    days: int = typer.Option(1, "--days", min=1, max=400, help="Simulated days of chain."),
    idle_s: int = typer.Option(10, "--idle-s", min=1, max=1800,
                               help="Seconds between two blocks (an empty one unless readings are due)."),
    out: Path = typer.Option(None, "--dir", help="Where the stores go (default: a temporary directory)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Join by state sync (check, rebuild and install a snapshot) versus replay every block
    from genesis, into fresh stores, in the same run."""
    import tempfile

    from node.bench.statesync import run_statesync_bench
    from node.bench.storage import BenchFailed
    from node.errors import UserError

    with tempfile.TemporaryDirectory(prefix="voisinage-statesync-") as tmp:
        try:
            report = run_statesync_bench(out or Path(tmp), households, days, idle_s)
        except BenchFailed as exc:
            raise UserError(f"bench statesync failed: {exc}") from None
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"{report['households']} households, {report['days']} days, {report['blocks']} blocks: "
               f"snapshot of height {report['snapshot_height']}, {report['snapshot_entries']} entries, "
               f"{report['snapshot_bytes']} bytes in {report['snapshot_chunks']} chunks "
               f"(built in {report['snapshot_build_s']} s)")
    typer.echo(f"join {report['join_s']} s vs replay {report['replay_s']} s: {report['ratio']}x faster")
