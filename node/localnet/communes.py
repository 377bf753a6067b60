"""Two communes on this machine, linked, with a relayer process (docs/communes.md).

Used by ``voisinage localnet up --communes 2``, the e2e manifest two-communes.toml
(node/e2e/communes.py) and ``voisinage bench relay``. Each commune is a whole network
of its own (its genesis, so its chain id; its ports); each registrar links the other
commune (CreateClient, trusting its genesis validators); household-0 of each is given
hours by a time-bank Service from household-1, so that it has something to send; the
relayer is ``voisinage relay --a URL --b URL``, a process that can be killed. Their books
are read packet by packet, each chain at one height (``read_books``, tokens/books_ibc.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from node.home.homedir import KEY_FILE, load_home
from node.home.keyfile import load_key
from node.localnet.cluster import API_TOKEN, Cluster, NodeProc, build_network, open_client
from node.localnet.errors import LocalnetError
from node.localnet.meters import MeterFleet
from node.localnet.ports import find_listen_port_block
from tokens.books_ibc import ChainRead, compute_books, get_client_latest, is_read_together
from tokens.txs import CreateClient, SendToCommune, Service, Tx
from wire import Keypair, sign_message

NAMES = ("A", "B")
FUNDING_MIN = 600               # minutes of hour household-0 of each commune is given (the credit limit)
COMMIT_WAIT_S = 60.0
BOOK_CLASS = "hour"              # what the communes send each other
READ_TOGETHER_TRIES = 20


@dataclass
class Commune:
    name: str
    home: Path
    nodes: list[NodeProc]
    cluster: Cluster | None = None
    chain_id: bytes = b""
    nonces: dict[bytes, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def key(self, name: str) -> Keypair:
        return load_key(self.home / name / KEY_FILE)

    def next_nonce(self, key: Keypair) -> int:
        self.nonces[key.public] = self.nonces.get(key.public, 0) + 1
        return self.nonces[key.public]


def build_communes(home: Path, validators: int, households: int, speed: int,
                   http_base: int | None = None, params: dict | None = None) -> list[Commune]:
    """Write two networks under ``home``/A and ``home``/B on port blocks that do not clash;
    ``params``: genesis parameters of both (e.g. ``{"max_idle_s": 1}``, a block every second)."""
    if households < 2:
        raise LocalnetError("two communes need at least 2 households each (one gives the other hours)")
    per = validators + households + 1
    p2p = find_listen_port_block(4 * per)
    http = http_base or p2p + 2 * per
    communes = []
    for i, name in enumerate(NAMES):
        nodes = build_network(home / name, validators, households, speed, None, name=f"Commune {name}",
                              http_base=http + i * per, p2p_base=p2p + i * per, params=params)
        communes.append(Commune(name, home / name, nodes, chain_id=load_home(nodes[0].home).genesis.chain_id))
    return communes


async def post_tx(client: httpx.AsyncClient, url: str, tx: Tx) -> str | None:
    """POST one tx; None if taken, else the node's reason (or that it did not answer)."""
    try:
        resp = await client.post(f"{url}/tx", content=tx.encode(), headers={"content-type": "application/msgpack"},
                                 timeout=10)
    except httpx.HTTPError as exc:
        return f"unreachable: {type(exc).__name__}"
    if resp.status_code in (200, 202):
        return None
    try:
        return str(resp.json().get("error"))
    except ValueError:
        return resp.text[:200]


async def get_json(client: httpx.AsyncClient, url: str, path: str) -> Any:
    try:
        resp = await client.get(f"{url}{path}", timeout=10)
        return resp.json() if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


async def wait_until(predicate, what: str, timeout: float = COMMIT_WAIT_S) -> None:
    with trio.move_on_after(timeout):
        while not await predicate():
            await trio.sleep(0.3)
        return
    raise LocalnetError(f"timed out waiting for {what}")


async def link_and_fund(client: httpx.AsyncClient, communes: list[Commune]) -> None:
    """Each registrar links the other commune; household-1 gives household-0 hours."""
    for here, there in ((communes[0], communes[1]), (communes[1], communes[0])):
        registrar = here.key("registrar")
        genesis = load_home(there.nodes[0].home).genesis
        link = CreateClient(signer=registrar.public, nonce=here.next_nonce(registrar), chain_id=there.chain_id,
                            name=genesis.name, validators=tuple(v.key for v in genesis.validators), from_height=1,
                            sig=bytes(64))
        giver, taker = here.key("household-1"), here.key("household-0")
        service = Service(signer=giver.public, nonce=here.next_nonce(giver), provider=taker.public,
                          minutes=FUNDING_MIN, memo="for transfers between communes", provider_sig=bytes(64),
                          sig=bytes(64))
        service = sign_message(sign_message(service, here.chain_id, taker, "provider_sig"), here.chain_id, giver)
        for tx in (sign_message(link, here.chain_id, registrar), service):
            reason = await post_tx(client, here.url, tx)
            if reason is not None:
                raise LocalnetError(f"commune {here.name} refused {tx.TAG}: {reason}")

    async def linked() -> bool:
        for here, there in ((communes[0], communes[1]), (communes[1], communes[0])):
            view = await get_json(client, here.url, "/ibc")
            account = await get_json(client, here.url, f"/accounts/{here.key('household-0').public.hex()}")
            if not view or not any(c["chain_id"] == there.chain_id.hex() for c in view["clients"]):
                return False
            if not account or account["balances"]["hour"] < FUNDING_MIN:
                return False
        return True
    await wait_until(linked, "both communes to link each other and fund their senders")


def sign_send(src: Commune, dst: Commune, amount: int, timeout_s: int, receiver: str = "household-1",
              sender_name: str = "household-0", denom: str = "hour") -> Tx:
    """``sender_name`` of ``src`` sends ``amount`` of ``denom`` (a class, or a voucher of
    ``dst`` going home) to ``receiver`` of ``dst``; ``timeout_s`` on ``dst``'s clock."""
    sender = src.key(sender_name)
    tx = SendToCommune(signer=sender.public, nonce=src.next_nonce(sender), dest=dst.chain_id,
                       receiver=dst.key(receiver).public, denom=denom, amount=amount, timeout_s=timeout_s,
                       sig=bytes(64))
    return sign_message(tx, src.chain_id, sender)


async def chain_time_s(client: httpx.AsyncClient, commune: Commune) -> int | None:
    doc = await get_json(client, commune.url, "/status")
    return None if doc is None else doc["time_ms"] // 1000


class Relayer:
    """``voisinage relay`` as a child process, logging to ``log``."""

    def __init__(self, communes: list[Commune], log: Path, interval_s: float = 0.5) -> None:
        self.cmd = [sys.executable, "-m", "node.cli", "relay", "--a", communes[0].url, "--b", communes[1].url,
                    "--interval", str(interval_s)]
        self.log, self.proc = log, None
        self.starts = 0

    async def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = await trio.lowlevel.open_process(self.cmd, stdout=out, stderr=subprocess.STDOUT,
                                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                                         env=dict(os.environ, VOISINAGE_API_TOKEN=API_TOKEN))
        self.starts += 1

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(10):
                await self.proc.wait()
            await self.kill()


async def read_chain(client: httpx.AsyncClient, commune: Commune, other: Commune) -> ChainRead:
    """``commune``'s entries of its books with ``other``, in one snapshot (GET /ibc/books)."""
    doc = await get_json(client, commune.url, f"/ibc/books/{other.chain_id.hex()}")
    if doc is None:
        raise LocalnetError(f"commune {commune.name} did not serve its books with {other.name}")
    return ChainRead.decode(doc["height"], other.chain_id,
                            {bytes.fromhex(k): bytes.fromhex(v) for k, v in doc["entries"].items()})


async def read_books(client: httpx.AsyncClient, communes: list[Commune]) -> dict[str, Any]:
    """Per direction, the books of hours sent, packet by packet (tokens/books_ibc.py), each
    chain read at one height, the two heights read together (a chain whose height the
    other's client has passed meanwhile is read again): escrow, vouchers, in flight,
    minted not yet acknowledged, whether they balance exactly, and any packet lost or
    counted twice."""
    a, b = communes
    reads: dict[str, ChainRead] = {}
    for _ in range(READ_TOGETHER_TRIES):
        for c, other in ((a, b), (b, a)):
            if c.name not in reads:
                reads[c.name] = await read_chain(client, c, other)
        if is_read_together(a.chain_id, b.chain_id, reads[a.name], reads[b.name]):
            return {f"{src.name}->{dst.name}": compute_books(src.chain_id, dst.chain_id, BOOK_CLASS, reads[src.name],
                                                             reads[dst.name], (src.name, dst.name)).as_dict()
                    for src, dst in ((a, b), (b, a))}
        for c, other in ((a, b), (b, a)):
            if get_client_latest(reads[other.name], c.chain_id) - 1 > reads[c.name].height:
                del reads[c.name]
        await trio.sleep(0.5)
    raise LocalnetError(f"could not read the two chains at heights each other's clients do not pass "
                        f"({READ_TOGETHER_TRIES} tries)")


async def read_in_flight(client: httpx.AsyncClient, communes: list[Commune]) -> int | None:
    """How many packets both chains hold in flight to each other (None: one did not answer)."""
    total = 0
    for src, dst in ((communes[0], communes[1]), (communes[1], communes[0])):
        view = await get_json(client, src.url, "/ibc")
        if view is None:
            return None
        total += sum(ch["in_flight_packets"] for ch in view["channels"] if ch["dest"] == dst.chain_id.hex())
    return total


@dataclass
class LinkedCommunes:
    """Two communes up, linked and funded, and the relayer between them."""

    communes: list[Commune]
    relayer: Relayer

    async def run_meters(self, client: httpx.AsyncClient) -> None:
        """Meter readings from every household of both communes, until cancelled."""
        async with trio.open_nursery() as nursery:
            for c in self.communes:
                fleet = MeterFleet(load_home(c.nodes[0].home).genesis, [n for n in c.nodes if n.role == "household"])
                nursery.start_soon(fleet.run, client)


@asynccontextmanager
async def open_communes(client: httpx.AsyncClient, home: Path, validators: int, households: int, speed: int,
                        http_base: int | None = None, say=print,
                        params: dict | None = None) -> AsyncIterator[LinkedCommunes]:
    """Both communes written under ``home`` and started, each linking the other and
    funding its sender, the relayer running; on the way out, however it is left, the
    relayer and every node are stopped. ``params``: genesis parameters of both."""
    communes = build_communes(home, validators, households, speed, http_base, params)
    relayer = Relayer(communes, home / "relayer.log")
    for c in communes:
        c.cluster = Cluster(c.nodes, None, client)
    try:
        for c in communes:
            await c.cluster.start_all()
            say(f"commune {c.name} (chain {c.chain_id.hex()[:16]}…): {c.url}, dashboard {c.nodes[-1].url}/")
        await link_and_fund(client, communes)
        await relayer.start()
        say(f"relayer: voisinage relay --a {communes[0].url} --b {communes[1].url} (log {relayer.log})")
        yield LinkedCommunes(communes, relayer)
    finally:
        with trio.CancelScope(shield=True):
            await relayer.stop()
            for c in communes:
                await c.cluster.stop_all()


async def run_two_communes(home: Path, validators: int, households: int, speed: int, http_base: int | None,
                           duration: float | None, say=print) -> int:
    """``localnet up --communes 2``: both networks, linked and funded, the relayer, meter
    load on both; until Ctrl-C / SIGTERM or ``duration``; prints both chains' books."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as stop_signals:
        async with open_client() as client, \
                open_communes(client, home, validators, households, speed, http_base, say) as two:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(two.run_meters, client)
                with trio.move_on_after(duration if duration is not None else float("inf")):
                    async for signum in stop_signals:
                        say(f"{signal.Signals(signum).name}: stopping both communes")
                        break
                nursery.cancel_scope.cancel()
            say(json.dumps(await read_books(client, two.communes)))
    return 0
