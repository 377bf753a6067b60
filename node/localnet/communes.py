"""Two communes on this machine, linked, with a relayer process (docs/communes.md).

Used by ``voisinage localnet up --communes 2``, the e2e manifest two-communes.toml
(node/e2e/communes.py) and ``voisinage bench relay``. Each commune is a whole network
of its own (its genesis, so its chain id; its ports); each registrar links the other
commune (CreateClient, trusting its genesis validators); household-0 of each is given
hours by a time-bank Service from household-1, so that it has something to send; the
relayer is ``voisinage relay --a URL --b URL``, a process that can be killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from node.home.homedir import KEY_FILE, load_home
from node.home.keyfile import load_key
from node.localnet.cluster import API_TOKEN, Cluster, NodeProc, build_network
from node.localnet.errors import LocalnetError
from node.localnet.meters import MeterFleet
from node.localnet.ports import find_port_block
from tokens.ibc import key_receipt
from tokens.kv import decode_value
from tokens.txs import CreateClient, SendToCommune, Service, Tx
from wire import Keypair, sign_message

NAMES = ("A", "B")
FUNDING_MIN = 600               # minutes of hour household-0 of each commune is given (the credit limit)
COMMIT_WAIT_S = 60.0


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
    p2p = find_port_block(4 * per, 20_000, 60_000, scatter=True)
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


async def read_books(client: httpx.AsyncClient, communes: list[Commune]) -> dict[str, Any]:
    """Both chains' escrow, vouchers, packets in flight (and which of them the destination
    already minted), per direction, for the conservation check."""
    views = {c.name: await get_json(client, c.url, "/ibc") for c in communes}
    books: dict[str, Any] = {}
    for src, dst in ((communes[0], communes[1]), (communes[1], communes[0])):
        channel = next((ch for ch in views[src.name]["channels"] if ch["dest"] == dst.chain_id.hex()), None)
        escrow = (channel or {}).get("escrow", {}).get("hour", 0)
        vouchers = sum(v["supply"] for v in views[dst.name]["vouchers"]
                       if v["origin"] == src.chain_id.hex() and v["class"] == "hour")
        packets = (await get_json(client, src.url, f"/ibc/packets/{dst.chain_id.hex()}?limit=1000"))["packets"]
        minted = 0
        for p in packets:
            proof = await get_json(client, dst.url, f"/proofs/{key_receipt(src.chain_id, p['seq']).hex()}")
            if proof is not None and proof.get("value") is not None and decode_value(bytes.fromhex(proof["value"]))[0]:
                minted += p["amount"]      # minted there, its acknowledgement on the way back
        in_flight = sum(p["amount"] for p in packets)
        transfers = (await get_json(client, src.url, "/ibc/transfers?limit=500"))["outgoing"]
        books[f"{src.name}->{dst.name}"] = {
            "escrow": escrow, "vouchers": vouchers, "in_flight": in_flight, "in_flight_packets": len(packets),
            "minted_not_acked": minted,
            "conserved": escrow == vouchers + in_flight - minted,
            "statuses": {s: sum(1 for t in transfers if t["status"] == s) for s in {t["status"] for t in transfers}},
        }
    return books


async def run_two_communes(home: Path, validators: int, households: int, speed: int, http_base: int | None,
                           duration: float | None, say=print) -> int:
    """``localnet up --communes 2``: both networks, linked and funded, the relayer, meter
    load on both; until Ctrl-C / SIGTERM or ``duration``; prints both chains' books."""
    communes = build_communes(home, validators, households, speed, http_base)
    relayer = Relayer(communes, home / "relayer.log")
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as stop_signals:
        async with httpx.AsyncClient(headers={"authorization": f"Bearer {API_TOKEN}"}) as client:
            for c in communes:
                c.cluster = Cluster(c.nodes, None, client)
            try:
                for c in communes:
                    await c.cluster.start_all()
                    say(f"commune {c.name} (chain {c.chain_id.hex()[:16]}…): dashboard {c.nodes[-1].url}/")
                await link_and_fund(client, communes)
                await relayer.start()
                say(f"relayer: voisinage relay --a {communes[0].url} --b {communes[1].url} (log {relayer.log})")
                fleets = [MeterFleet(load_home(c.nodes[0].home).genesis,
                                     [n for n in c.nodes if n.role == "household"]) for c in communes]
                async with trio.open_nursery() as nursery:
                    for fleet in fleets:
                        nursery.start_soon(fleet.run, client)
                    with trio.move_on_after(duration if duration is not None else float("inf")):
                        async for signum in stop_signals:
                            say(f"{signal.Signals(signum).name}: stopping both communes")
                            break
                    nursery.cancel_scope.cancel()
                say(json.dumps(await read_books(client, communes)))
            finally:
                with trio.CancelScope(shield=True):
                    await relayer.stop()
                    for c in communes:
                        await c.cluster.stop_all()
    return 0
