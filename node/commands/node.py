"""``voisinage node``: run a node, audit a home."""

from __future__ import annotations

import gc
import logging
from functools import partial
from pathlib import Path

import trio
import typer

from node.errors import UserError

node_app = typer.Typer(help="Run a validator or household node.", no_args_is_help=True)


@node_app.command("run")
def node_run(
    home: Path = typer.Option(..., "--home", help="The node's home directory (from `genesis new`)."),
    listen: str = typer.Option(None, "--listen", help="libp2p multiaddr to listen on (default: from the home)."),
    peer: list[str] = typer.Option([], "--peer", help="Extra peer multiaddr to dial (repeatable)."),
    http: str = typer.Option(None, "--http", help="HOST:PORT of the HTTP API (default: from the home)."),
    log_level: str = typer.Option("info", "--log-level", envvar="VOISINAGE_LOG_LEVEL",
                                  help="debug, info, warning or error."),
    sign_journal: bool = typer.Option(False, "--sign-journal",
                                      help="Validator audit: append every signed (height, round, step, "
                                           "hash) to HOME/sign_journal.log."),
    api_token: str = typer.Option(None, "--api-token", envvar="VOISINAGE_API_TOKEN",
                                  help="Accept POST /tx from non-loopback clients bearing this token."),
    relay_txs: bool = typer.Option(None, "--relay-txs/--no-relay-txs",
                                   help="Receive, check and relay everybody's txs (default: validators "
                                        "only; a household node gossips just its own)."),
    check_all_signatures: bool = typer.Option(False, "--check-all-signatures",
                                              help="Household node: check the signature of every tx in every "
                                                   "block too, not only the commit of the validators that "
                                                   "checked them (validators always do)."),
    byzantine: str = typer.Option(None, "--byzantine", hidden=True,
                                  help="TEST ONLY (e2e suite): misbehave; 'double-sign' equivocates every vote, 'lie-proofs' "
                                      "forges the entries it serves household nodes."),
    pruning: str = typer.Option("default", "--pruning",
                                help="archive: keep every block and state tree version (full `node verify`, "
                                     "proofs at any height); default: the state tree of the last --keep-states "
                                     "heights, and on a household node the block bodies of the last "
                                     "--keep-days (headers and commits always)."),
    keep_states: int = typer.Option(None, "--keep-states", show_default="100 on a validator, 10 on a household node",
                                    help="With --pruning default: state tree versions kept (proofs below "
                                         "answer 'pruned')."),
    keep_days: int = typer.Option(7, "--keep-days", help="With --pruning default, household node: block bodies "
                                                         "of the last this many days of chain time are kept."),
    keep_blocks: int = typer.Option(0, "--keep-blocks", help="With --pruning default, household node: keep the "
                                                             "bodies of the last this many heights instead "
                                                             "(0: by --keep-days)."),
    archive_keep_days: int = typer.Option(730, "--archive-keep-days",   # pruning.DEFAULT_ARCHIVE_KEEP_DAYS
                                          help="Drop archived interval history (half-hourly load curves: "
                                               "personal data) older than this many days of chain time, and "
                                               "on a validator with --pruning default the block bodies (their "
                                               "readings) too, keeping headers and commits (0: keep it all)."),
    state_sync: bool = typer.Option(True, "--state-sync/--no-state-sync",
                                    help="On an empty home, install a peer's verified state snapshot, then "
                                         "block-sync from it (default); without, replay every block."),
    snapshot_interval: int = typer.Option(None, "--snapshot-interval", show_default=False,
                                          help="Validator: heights between state snapshots served to joining "
                                               "nodes (0: take none; default: 1000)."),
    snapshot_keep: int = typer.Option(None, "--snapshot-keep", show_default=False,
                                      help="Complete snapshots served, kept below the newest one (default: 3)."),
    light: bool = typer.Option(False, "--light",
                               help="Household node: follow the chain by verified headers and keep only this "
                                    "household's entries and the public ones, proven by the validators; no block "
                                    "and nobody else's data is downloaded (docs/privacy.md). A home started light "
                                    "stays light."),
    check_workers: int = typer.Option(0, "--check-workers", min=0, max=64,
                                      help="Check arriving txs' signatures and sealed envelopes in this many "
                                           "worker processes (0: on one worker thread per core). Processes "
                                           "share no GIL with the node: the checks scale over cores "
                                           "(docs/performance.md \"Sealed payloads\")."),
    cut_overdue_s: int = typer.Option(86_400, "--cut-overdue-s", min=1,
                                      help="Validator: seconds an erasure may wait for its cut of the commune data "
                                           "key before GET /status and voisinage_cut_overdue say it is overdue "
                                           "(docs/privacy.md \"The cut is forced\")."),
    reset_sign_state_at_height: int = typer.Option(
        None, "--reset-sign-state-at-height", min=1,
        help="Validator whose sign_state.bin is lost or stale (restored from a backup): write a new record "
             "that never signs below this height. Give a height no validator has reached yet (the network's "
             "height + 2); a wrong one risks a double sign."),
) -> None:
    """Run a node: a validator if its key is in genesis, otherwise a household full node
    (or, with --light, a household node that holds only its own data)."""
    from node.e2e.byzantine import BEHAVIOURS, make_answer_rewrite, make_effects_rewrite
    from node.store.pruning import PruningError, parse_pruning

    if byzantine is not None and byzantine not in BEHAVIOURS:
        raise UserError(f"--byzantine must be one of: {', '.join(BEHAVIOURS)}")
    try:
        kept = parse_pruning(pruning, keep_states, keep_blocks, keep_days, archive_keep_days)
    except PruningError as exc:
        raise UserError(str(exc)) from None
    check_snapshot_options(snapshot_interval, snapshot_keep)
    _run(home, listen=listen, peers=list(peer), http=http, log_level=log_level, api_token=api_token,
         sign_journal=sign_journal, relay_txs=relay_txs, check_all_signatures=check_all_signatures,
         rewrite_effects=None if byzantine is None else make_effects_rewrite(byzantine), pruning=kept,
         rewrite_answers=None if byzantine is None else make_answer_rewrite(byzantine),
         state_sync=state_sync, snapshot_interval=snapshot_interval, snapshot_keep=snapshot_keep,
         reset_sign_state_at=reset_sign_state_at_height, light=light, check_workers=check_workers,
         cut_overdue_s=cut_overdue_s)


def check_snapshot_options(interval: int | None, keep: int | None) -> None:
    if interval is not None and interval < 0:
        raise UserError(f"--snapshot-interval must be 0 (no snapshots) or more, not {interval}")
    if keep is not None and keep < 1:
        raise UserError(f"--snapshot-keep must be 1 or more, not {keep}")


def _run(home: Path, *, log_level: str, **options) -> None:
    """Configure logging and the collector, then run the node until a signal stops it."""
    from node.service.runner import run_node

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("libp2p", "multiaddr", "hypercorn", "voisinage.http"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The ~130 000 objects of the loaded libraries never die: moved out of the
    # collector's sight, so a full collection does not pause the node for tens of
    # milliseconds that could hold a proposal (docs/performance.md).
    gc.freeze()
    trio.run(partial(run_node, home, **options))


@node_app.command("join")
def node_join(
    genesis: Path = typer.Option(..., "--genesis", help="The commune's genesis.json (from the mairie)."),
    peer: list[str] = typer.Option(..., "--peer", help="A running node's multiaddr with /p2p/ (repeatable)."),
    home: Path = typer.Option(..., "--home", help="This node's home directory (created if empty)."),
    key: Path = typer.Option(None, "--key", help="This node's key file: a household's (from `keys new`), or an "
                                                 "auditor's appointed by a passed proposal (a full node that "
                                                 "opens sealed payloads); default: a new key in the home."),
    listen: str = typer.Option("/ip4/0.0.0.0/tcp/26656", "--listen", help="libp2p multiaddr to listen on."),
    http: str = typer.Option("127.0.0.1:8700", "--http", help="HOST:PORT of the HTTP API."),
    name: str = typer.Option(None, "--name", help="This node's name in logs (default: the home's folder name)."),
    log_level: str = typer.Option("info", "--log-level", envvar="VOISINAGE_LOG_LEVEL",
                                  help="debug, info, warning or error."),
    api_token: str = typer.Option(None, "--api-token", envvar="VOISINAGE_API_TOKEN",
                                  help="Accept POST /tx from non-loopback clients bearing this token."),
    state_sync: bool = typer.Option(True, "--state-sync/--no-state-sync",
                                    help="Install a peer's verified state snapshot, then block-sync from it "
                                         "(default); without, replay every block from genesis."),
    light: bool = typer.Option(None, "--light/--full", show_default="light on a commune that seals payloads",
                               help="Household node: follow verified headers and only this household's proven "
                                    "entries (docs/privacy.md); --full: a full node, which on a commune that "
                                    "seals payloads only an auditor's or validator's key can run."),
) -> None:
    """Join a running commune without regenerating its genesis: create the home, then run.

    The node checks the header chain from genesis through validator-set changes, installs
    a peer's snapshot checked against it (falling back to every block when no peer has
    one), then syncs the blocks since and checks each commit; a household
    registered by the registrar (``registrar register``) then submits its readings
    here. On a commune that seals payloads it joins light: it follows the verified
    headers and its own proven entries, and publishes its data key once registered.
    Run again with the same --home to restart it."""
    from node.home.homedir import create_home, home_key

    joined, created = create_home(home, genesis, key_file=key, listen=listen, http=http, name=name)
    public = home_key(joined).public.hex()
    typer.echo(f"{'created' if created else 'reusing'} {home} for {joined.genesis.name}; this node's key: {public}",
               err=True)
    light = joined.genesis.seals_payloads if light is None else light
    _run(joined.path, listen=None, peers=list(peer), http=None, log_level=log_level, api_token=api_token,
         state_sync=state_sync, light=light)


@node_app.command("verify")
def node_verify(
    home: Path = typer.Option(..., "--home", help="The home to audit (its node must be stopped)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    key: Path = typer.Option(None, "--key", help="On a chain that seals payloads: open them with this key file "
                                                 "(an auditor's appointed by a passed proposal, or a validator's) "
                                                 "and the receive keys beside it (receive_keys/) rather than the "
                                                 "home's key."),
) -> None:
    """Replay the home's chain from genesis; exit 1 at the first mismatch (DESIGN §8 "Audit")."""
    import json
    from dataclasses import asdict

    from node.home.keyfile import load_key
    from node.service.verify import make_progress, verify_home

    from node.home.receivekeys import RECEIVE_DIR, load_receive_keys

    opener = None if key is None else load_key(key)
    receive = None if key is None else load_receive_keys(key.parent / RECEIVE_DIR)
    update, done = make_progress()
    try:
        report = verify_home(home, update, opener, receive)
    finally:
        done()
    typer.echo(json.dumps(asdict(report)) if as_json else report.summary())


@node_app.command("backup")
def node_backup(
    home: Path = typer.Option(..., "--home", help="The home to back up (its node may be running)."),
    out: Path = typer.Option(..., "--out", help="The backup file to write (mode 0600: it holds the key)."),
    node: str = typer.Option(None, "--node", help="The running node's HTTP API (default: from the home)."),
    api_token: str = typer.Option(None, "--api-token", envvar="VOISINAGE_API_TOKEN",
                                  help="Bearer token, when the node's API is remote."),
) -> None:
    """Write a consistent backup of a home: its database and, on a household's box, its
    consent database (from the running node's snapshots if it runs), and its genesis,
    config and key; never the double-sign record."""
    from node.commands.backup import backup_home

    info, size, how = backup_home(home, out, node, api_token)
    typer.echo(f"backup of {home} ({how} node) at height {info.height}: {info.entries} entries, "
               f"{info.consent_entries} consent entries, {size} bytes, written to {out}")


@node_app.command("restore")
def node_restore(
    in_file: Path = typer.Option(..., "--in", help="A file from `node backup`."),
    home: Path = typer.Option(..., "--home", help="The home to restore into (empty, or give --force)."),
    force: bool = typer.Option(False, "--force", help="Replace the database and files of a non-empty home "
                                                      "(its double-sign record is kept)."),
) -> None:
    """Restore a home from a backup; the whole file is checked before anything is written."""
    from node.commands.backup import restore_home

    info = restore_home(in_file, home, force)
    typer.echo(f"restored {home} at height {info.height} ({info.entries} entries, {info.consent_entries} consent "
               f"entries). A validator starts only "
               f"with its own sign_state.bin, or with `node run --reset-sign-state-at-height H`")


def register(app: typer.Typer) -> None:
    app.add_typer(node_app, name="node")
