"""The two-communes e2e scenario (e2e/manifests/two-communes.toml, docs/communes.md).

Two communes under meter load send each other hours while the relayer is killed and
restarted and the destination commune is down until after the timeout of the packets
sent meanwhile. Checks, after the load: no packet lost (each one sent is delivered or
refunded, none left in flight), some timed out and were refunded, and per direction,
exactly, Σ escrowed on the source = Σ vouchers on the destination + Σ in flight (read
once with the relayer stopped, packets still moving, and once drained).
"""

from __future__ import annotations

import tempfile
import time
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import trio

from node.e2e.errors import E2EError
from node.localnet.cluster import Cluster, open_client
from node.localnet.communes import (
    Commune, Relayer, build_communes, chain_time_s, get_json, link_and_fund, post_tx, read_books, sign_send,
)
from node.localnet.errors import LocalnetError
from node.localnet.meters import MeterFleet
from node.home.homedir import load_home


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
                  events: list[str], say: Callable[[str], None]) -> None:
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
            async with trio.open_nursery() as nursery:
                for node in b.nodes:
                    nursery.start_soon(b.cluster.stop, node)
            await trio.sleep(m.dest_down_s)
            for node in b.nodes:
                await b.cluster.start(node)
            for node in b.nodes:
                await b.cluster.wait_ready(node)
            events.append(f"commune B down for {m.dest_down_s:.0f} s")


async def drain(client, communes: list[Commune], timeout: float) -> bool:
    with trio.move_on_after(timeout):
        while True:
            books = await read_books(client, communes)
            if all(v["in_flight_packets"] == 0 for v in books.values()):
                return True
            await trio.sleep(1.0)
    return False


async def read_still_books(client, communes: list[Commune]) -> dict[str, Any]:
    """The books once two reads in a row agree: txs the relayer posted before it stopped
    may still commit, and the two chains are read one after the other."""
    books = await read_books(client, communes)
    for _ in range(20):
        await trio.sleep(1.0)
        again = await read_books(client, communes)
        if again == books:
            break
        books = again
    return books


def judge(report: dict[str, Any]) -> list[str]:
    problems = []
    for direction, mid in report["books_relayer_stopped"].items():
        if not mid["conserved"]:
            problems.append(f"{direction}: escrow {mid['escrow']} != vouchers {mid['vouchers']} + in flight "
                            f"{mid['in_flight']} - minted not yet acknowledged {mid['minted_not_acked']}")
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
    if not report["books_drained"]["A->B"]["statuses"].get("timed-out"):
        problems.append("no packet sent while B was down timed out")
    return problems


async def run_communes_manifest(m: CommunesManifest, workdir: Path | None = None,
                                say: Callable[[str], None] = print) -> dict[str, Any]:
    home = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="voisinage-e2e-communes-"))
    report: dict[str, Any] = {"manifest": m.name, "description": m.description, "home": str(home)}
    communes = build_communes(home, m.validators, m.households, m.speed)
    relayer = Relayer(communes, home / "relayer.log")
    started = time.monotonic()
    async with open_client() as client:
        for c in communes:
            c.cluster = Cluster(c.nodes, None, client)
        try:
            for c in communes:
                await c.cluster.start_all()
            say(f"two communes up: A {communes[0].url} B {communes[1].url}")
            await link_and_fund(client, communes)
            await relayer.start()
            sent = {c.name: Sent() for c in communes}
            events: list[str] = []
            dest_down = trio.Event()
            fleets = [MeterFleet(load_home(c.nodes[0].home).genesis, [n for n in c.nodes if n.role == "household"])
                      for c in communes]
            async with trio.open_nursery() as nursery:
                for fleet in fleets:
                    nursery.start_soon(fleet.run, client)
                nursery.start_soon(perturb, communes, relayer, m, dest_down, events, say)
                await send_load(client, communes, m, dest_down, sent, trio.current_time() + m.duration)
                nursery.cancel_scope.cancel()
            say("load over: checking the books with the relayer stopped")
            await relayer.stop()
            await trio.sleep(3.0)
            report["books_relayer_stopped"] = await read_still_books(client, communes)
            await relayer.start()
            report["drained"] = await drain(client, communes, m.drain_timeout_s)
            report["books_drained"] = await read_books(client, communes)
            report["sent"] = {k: vars(v) for k, v in sent.items()}
            report["events"] = events
            report["relayer_starts"] = relayer.starts
            report["heights"] = {c.name: (await get_json(client, c.url, "/status") or {}).get("height")
                                 for c in communes}
        except LocalnetError as exc:
            raise E2EError(f"two communes: {exc}") from None
        finally:
            with trio.CancelScope(shield=True):
                await relayer.stop()
                for c in communes:
                    await c.cluster.stop_all()
    report["duration_s"] = round(time.monotonic() - started, 1)
    report["problems"] = judge(report)
    report["passed"] = not report["problems"]
    return report
