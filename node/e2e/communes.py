"""The two-communes e2e scenario (e2e/manifests/two-communes.toml, docs/communes.md).

Two communes under meter load send each other hours while the relayer is killed and
restarted and the destination commune is down until after the timeout of the packets
sent meanwhile. Checks, after the load: no packet lost (each one sent is delivered or
refunded, none left in flight), some timed out and were refunded, and per direction,
exactly, Σ escrowed on the source = Σ vouchers on the destination + Σ in flight − Σ
minted and not yet acknowledged, packet by packet, each chain read at one height
(node/localnet/communes.py ``read_books``): once with the relayer stopped, packets still
in flight, and once drained. Once every node is stopped, each one's store is held to
the settlement invariant (checks.check_stores: Σ minted − Σ allocated = ΣE − M on every
settled interval); ``settlement_interval_s`` and ``settlement_grace_s`` (chain
seconds) let intervals settle within the run. Both communes run with payloads in clear:
transfers between communes are public, and ``localnet up --communes 2`` does not seal
either.
"""

from __future__ import annotations

import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import trio

from node.e2e import checks
from node.e2e.errors import E2EError
from node.e2e.runner import is_caught_up
from node.localnet.cluster import open_client
from node.localnet.communes import (
    Commune, Relayer, chain_time_s, get_json, open_communes, post_tx, read_books, read_in_flight, sign_send,
)
from node.localnet.errors import LocalnetError
from tokens.genesis import DEFAULT_PARAMS, GenesisError, check_params


@dataclass(frozen=True)
class CommunesManifest:
    name: str = "two-communes"
    description: str = ""
    validators: int = 2
    households: int = 2
    speed: int = 10
    duration: float = 70.0          # seconds of load
    send_every_s: float = 0.5       # each commune sends one transfer this often
    timeout_s: int = 3600           # chain seconds a normal transfer may take
    short_timeout_s: int = 120      # chain seconds, for what A sends while B is down
    relayer_kill_at: float = 10.0
    relayer_down_s: float = 8.0
    dest_down_at: float = 25.0
    dest_down_s: float = 30.0
    drain_timeout_s: float = 150.0
    converge_timeout_s: float = 90.0
    # Chain seconds; shorter than the genesis defaults so intervals settle within the run
    # (an interval settles a grace after its end, in the first block at or past it).
    settlement_interval_s: int = DEFAULT_PARAMS["settlement_interval_s"]
    settlement_grace_s: int = DEFAULT_PARAMS["settlement_grace_s"]

    @property
    def genesis_params(self) -> dict[str, Any]:
        return {"settlement_interval_s": self.settlement_interval_s, "settlement_grace_s": self.settlement_grace_s}


def parse_communes_manifest(doc: dict[str, Any], path: Path) -> CommunesManifest:
    """A manifest with ``communes = 2``: its other keys are CommunesManifest's fields."""
    known = {f.name: f.type for f in fields(CommunesManifest)}
    values = {}
    for key, value in doc.items():
        if key == "communes":
            if value != 2:
                raise E2EError(f"{path}: communes = {value!r}: only 2 is supported")
            continue
        if key not in known:
            raise E2EError(f"{path}: unknown key {key!r} for a two-communes manifest")
        expected = {"str": str, "int": int, "float": (int, float)}[known[key]]
        if isinstance(value, bool) or not isinstance(value, expected):
            raise E2EError(f"{path}: {key} must be a {known[key]}")
        if known[key] != "str" and value < 0:
            raise E2EError(f"{path}: {key} must not be negative")
        values[key] = value
    m = CommunesManifest(**values)
    try:
        check_params(m.genesis_params, dev=True)
    except GenesisError as exc:
        raise E2EError(f"{path}: {exc}") from None
    if m.households < 2 or m.validators < 1 or m.speed < 1 or m.send_every_s <= 0:
        raise E2EError(f"{path}: two communes need validators >= 1, households >= 2, speed >= 1, send_every_s > 0")
    return m


def read_communes_manifest(path: Path) -> CommunesManifest | None:
    """The two-communes manifest at ``path``, or None if it is another kind of manifest."""
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None         # load_manifest reports it
    return parse_communes_manifest(doc, path) if "communes" in doc else None


@dataclass
class Sent:
    accepted: int = 0
    refused: int = 0
    unreachable: int = 0
    short: int = 0


async def send_load(client, communes: list[Commune], m: CommunesManifest, dest_down: trio.Event,
                    sent: dict[str, Sent], stop_at: float) -> None:
    """Each commune sends the other ``amount`` hours every ``send_every_s``; while the
    destination is down, A's transfers carry the short timeout."""
    a, b = communes
    amount = 1
    while trio.current_time() < stop_at:
        amount = amount % 4 + 1
        for src, dst in ((a, b), (b, a)):
            now = await chain_time_s(client, src)
            if now is None:
                sent[src.name].unreachable += 1
                continue
            short = src is a and dest_down.is_set()
            tx = sign_send(src, dst, amount, now + (m.short_timeout_s if short else m.timeout_s))
            reason = await post_tx(client, src.url, tx)
            if reason is None:
                sent[src.name].accepted += 1
                sent[src.name].short += short
            elif reason.startswith("unreachable"):
                sent[src.name].unreachable += 1
            else:
                sent[src.name].refused += 1
        await trio.sleep(m.send_every_s)


async def perturb(communes: list[Commune], relayer: Relayer, m: CommunesManifest, dest_down: trio.Event,
                  events: list[str], say: Callable[[str], None], done: trio.Event) -> None:
    """The relayer killed and restarted, commune B stopped and restarted; ``done`` once B
    answers again (the load waits for it: a slow stop must not leave B down)."""
    start = trio.current_time()
    steps = sorted([(m.relayer_kill_at, "relayer"), (m.dest_down_at, "dest")])
    for at, what in steps:
        await trio.sleep_until(start + at)
        if what == "relayer":
            say("perturb: SIGKILL the relayer")
            await relayer.kill()
            events.append(f"relayer killed at {at:.0f} s")
            await trio.sleep(m.relayer_down_s)
            await relayer.start()
            events.append(f"relayer restarted after {m.relayer_down_s:.0f} s")
        else:
            b = communes[1]
            say(f"perturb: stop every node of commune B for {m.dest_down_s:.0f} s")
            dest_down.set()
            stopping = trio.current_time()
            async with trio.open_nursery() as nursery:
                for node in b.nodes:
                    nursery.start_soon(b.cluster.stop, node)
            stopped = trio.current_time()
            await trio.sleep(m.dest_down_s)
            for node in b.nodes:
                await b.cluster.start(node)
            for node in b.nodes:
                await b.cluster.wait_ready(node)
            events.append(f"commune B down for {m.dest_down_s:.0f} s (its nodes took {stopped - stopping:.1f} s "
                          f"to stop, answered again at {trio.current_time() - start:.0f} s)")
    done.set()


async def drain(client, communes: list[Commune], timeout: float) -> bool:
    with trio.move_on_after(timeout):
        while await read_in_flight(client, communes) != 0:
            await trio.sleep(1.0)
        return True
    return False


async def wait_converged(client, communes: list[Commune], timeout: float) -> dict[str, float | None]:
    """Before the stores are checked, per commune: until every node holds the chain's
    height and the chain has settled an interval (its due time makes a block with no
    tx: docs/cadence.md). A node stopped while still catching up, or a commune whose
    only interval waited for its due block, would hold the invariant of nothing.
    Seconds it took, per commune, or None if it did not within ``timeout``."""
    out: dict[str, float | None] = {}
    start = trio.current_time()
    for commune in communes:
        out[commune.name] = None
        with trio.move_on_after(max(0.0, timeout - (trio.current_time() - start))):
            while True:
                heights = await commune.cluster.heights()
                aggregates = await get_json(client, commune.url, "/aggregates") or {}
                if is_caught_up(commune.cluster, heights) and aggregates.get("intervals"):
                    out[commune.name] = round(trio.current_time() - start, 1)
                    break
                await trio.sleep(0.5)
    return out


BOOK_READS = {"books_relayer_stopped": "relayer stopped", "books_drained": "drained"}


def judge(report: dict[str, Any]) -> list[str]:
    problems = []
    for when, label in BOOK_READS.items():
        for direction, books in report[when].items():
            if not books["conserved"]:
                problems.append(f"{direction} ({label}, heights {books['heights']}): escrow {books['escrow']}, "
                                f"vouchers {books['vouchers']}, in flight {books['in_flight']}, minted not yet "
                                f"acknowledged {books['minted_not_acked']}")
                problems += [f"{direction} ({label}): {p}" for p in books["problems"]]
    for direction, end in report["books_drained"].items():
        if end["in_flight_packets"]:
            problems.append(f"{direction}: {end['in_flight_packets']} packets still in flight: lost")
        if end["escrow"] != end["vouchers"]:
            problems.append(f"{direction}: escrow {end['escrow']} != vouchers {end['vouchers']} once drained")
        committed = sum(end["statuses"].values())
        src = direction.split("->")[0]
        # A send taken into B's mempool just before B was stopped may never commit: the
        # sender's tx is lost with the mempool, not a packet (nothing was escrowed).
        slack = 2 if src == "B" else 0
        if not report["sent"][src]["accepted"] - slack <= committed <= report["sent"][src]["accepted"]:
            problems.append(f"{direction}: {report['sent'][src]['accepted']} sends accepted, {committed} committed")
    problems += [f"commune {name}: its nodes did not share a height with an interval settled"
                 for name, took in report["converged_s"].items() if took is None]
    for iv in report["intervals"]:
        problems += [f"{iv['node']}: {v}" for v in iv["violations"]]
    if not any(iv["settled"] for iv in report["intervals"]):
        problems.append("no settled interval on any node: the settlement invariant held of nothing")
    if not report["books_drained"]["A->B"]["statuses"].get("timed-out"):
        problems.append("no packet sent while B was down timed out")
    return problems


async def run_communes_manifest(m: CommunesManifest, workdir: Path | None = None,
                                say: Callable[[str], None] = print) -> dict[str, Any]:
    home = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="voisinage-e2e-communes-"))
    report: dict[str, Any] = {"manifest": m.name, "description": m.description, "home": str(home)}
    started = time.monotonic()
    try:
        async with open_client() as client, \
                open_communes(client, home, m.validators, m.households, m.speed, say=say,
                              params=m.genesis_params) as two:
            communes, relayer = two.communes, two.relayer
            sent = {c.name: Sent() for c in communes}
            events: list[str] = []
            dest_down, perturbed = trio.Event(), trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(two.run_meters, client)
                nursery.start_soon(perturb, communes, relayer, m, dest_down, events, say, perturbed)
                await send_load(client, communes, m, dest_down, sent, trio.current_time() + m.duration)
                await perturbed.wait()
                nursery.cancel_scope.cancel()
            say("load over: reading the books with the relayer stopped, packets still in flight")
            await relayer.stop()
            report["books_relayer_stopped"] = await read_books(client, communes)
            await relayer.start()
            report["drained"] = await drain(client, communes, m.drain_timeout_s)
            report["books_drained"] = await read_books(client, communes)
            report["converged_s"] = await wait_converged(client, communes, m.converge_timeout_s)
            report["sent"] = {k: vars(v) for k, v in sent.items()}
            report["events"] = events
            report["relayer_starts"] = relayer.starts
            report["heights"] = {c.name: (await get_json(client, c.url, "/status") or {}).get("height")
                                 for c in communes}
    except LocalnetError as exc:
        raise E2EError(f"two communes: {exc}") from None
    # Every node of both is stopped: the settlement invariant on each store.
    report["intervals"] = [dict(asdict(iv), node=f"{c.name}/{iv.node}")
                           for c in communes for iv in checks.check_stores(c.cluster)]
    report["duration_s"] = round(time.monotonic() - started, 1)
    report["problems"] = judge(report)
    report["passed"] = not report["problems"]
    return report
